"""Issue 15 item 6: no silent data change. Each change is a catalog rule with a message
naming the column; a site that shrinks is not published without --allow-shrink."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import openpyxl
import pandas as pd
import pytest

from etl.compile.mapping import load_mapping
from etl.pipeline import shrink_reason
from etl.read.readers import read_source
from etl.site import map_site
from etl.validate.quarantine import resolve
from schemas.catalog import catalog
from schemas.id_text import problem
from schemas.limits import limit_findings, sql_limit_checks
from schemas.model import common_schema
from warehouse.sitecache import SiteOutput

MAPPING = """\
site_id: center_x
sources:
  ev: {path: events.FILE, format: FORMAT}
identifiers: {source: ev, local_id: id, columns: [name], name: name}
tables:
  patient:
    source: ev
    where: {event: [reg]}
    columns:
      local_id: id
      sex: {value: F}
      age_years: {value: 40}
      ph_positive: {value: false}
      disease_status: {value: relapsed}
      n_relapses: {value: 1}
      prior_lines: {value: 2}
      bm_blasts_pct: {value: 10}
  infusion:
    source: ev
    where: {event: [inf]}
    columns:
      local_id: id
      infusion_date: date
      product: {value: CD19_41BB}
      dose_1e6_per_kg: value
  lab:
    source: ev
    where: {event: [lab]}
    columns:
      local_id: id
      analyte: {value: ferritin}
      sample_date: date
      value: {from: value, unit: ng/mL}
"""
HEADER = ["id", "event", "date", "value", "name", "note"]
ROWS = [
    ["P1", "reg", None, None, "Ann Lee", None],        # 2
    ["P1", "inf", "2023-01-01", 1.0, None, None],      # 3
    ["P1", "lab", "2023-01-03", 100, None, None],      # 4
    ["P2", "reg", None, None, "Bo Wu", None],          # 5
    ["P2", "inf", "2023-01-02", 1.0, None, None],      # 6
    ["P3", "reg", None, None, "Cy Ho", None],          # 7
    ["P3", "inf", "2023-01-02", 1.0, None, None],      # 8
]


def site(tmp_path: Path, fmt: str, rows=ROWS, cutoff: date | None = date(2023, 3, 1)):
    ext = {"excel": "xlsx", "csv": "csv"}[fmt]
    (tmp_path / "mapping.yml").write_text(MAPPING.replace("FILE", ext).replace("FORMAT", fmt), encoding="utf-8")
    if fmt == "csv":
        pd.DataFrame(rows, columns=HEADER).to_csv(tmp_path / "events.csv", index=False)
    m = load_mapping(tmp_path / "mapping.yml")
    raw = {n: read_source(n, s, tmp_path) for n, s in m.sources.items()}
    tables, findings, idents = map_site(m, raw, cutoff=cutoff)
    return resolve("center_x", tables, findings, raw, idents)


def workbook(path: Path, edit) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(HEADER)
    for r in ROWS:
        ws.append(r)
    edit(ws)
    wb.save(path)


# ---------------------------------------------------------------- Excel error cells, uncached formulas

def test_excel_error_cell_is_a_finding_not_an_empty_date(tmp_path):
    """A `#VALUE!` infusion date used to read as empty."""
    def edit(ws):
        ws["C6"] = "#VALUE!"           # P2's infusion date (sheet row 6)
        ws["F3"] = "#N/A"              # a note column no mapping reads: changes nothing
    workbook(tmp_path / "events.xlsx", edit)
    split = site(tmp_path, "excel")
    q = split.quarantine
    err = q[q["rule_id"] == "EXCEL_ERROR_CELL"]
    assert list(err["source_row"]) == [6] and err.iloc[0]["value"] == "#VALUE!"
    assert "'date'" in err.iloc[0]["message"] and "Excel error #VALUE!" in err.iloc[0]["message"]
    assert err.iloc[0]["source_file"] == "events.xlsx"
    assert "P2" not in set(split.loaded["patient"]["local_id"])   # the patient goes, on_error: patient
    assert "P1" in set(split.loaded["patient"]["local_id"])


def test_formula_without_a_cached_value_is_a_finding(tmp_path):
    def edit(ws):
        ws["D4"] = "=A1*2"             # P1's lab value: a formula no program calculated
    workbook(tmp_path / "events.xlsx", edit)
    q = site(tmp_path, "excel").quarantine
    f = q[q["rule_id"] == "EXCEL_UNCACHED_FORMULA"]
    assert list(f["source_row"]) == [4] and f.iloc[0]["value"] == "=A1*2"
    assert "no saved result" in f.iloc[0]["message"]


def test_a_clean_workbook_has_no_cell_findings(tmp_path):
    workbook(tmp_path / "events.xlsx", lambda ws: None)
    q = site(tmp_path, "excel").quarantine
    assert not q["rule_id"].str.startswith("EXCEL_").any()


# ---------------------------------------------------------------- dates and physiological limits

def test_dates_before_1900_and_after_the_cutoff_are_findings(tmp_path):
    """An infusion in 1800 gave OS = 2,678 months."""
    rows = [r[:] for r in ROWS]
    rows[2][2] = "1800-01-01"          # P1 lab date (row 4)
    rows[4][2] = "2031-05-05"          # P2 infusion (row 6)
    q = site(tmp_path, "csv", rows).quarantine
    assert list(q.loc[q["rule_id"] == "DATE_BEFORE_MIN", "source_row"]) == [4]
    after = q[q["rule_id"] == "INFUSION_AFTER_CUTOFF"].iloc[0]
    assert after["source_row"] == 6 and after["column_name"] == "infusion_date" and after["severity"] == "error"
    assert after["message"].startswith("infusion_date = 2031-05-05 is after the study cut-off 2023-03-01")


def test_follow_up_after_the_cutoff_is_a_warning_and_loads(tmp_path):
    """Exports are taken after the cut-off: a lab (or last contact) after it is normal and
    censored by the analysis; it is recorded, not silently kept, and not quarantined."""
    rows = [r[:] for r in ROWS]
    rows[2][2] = "2023-06-01"          # P1 lab after the cut-off
    split = site(tmp_path, "csv", rows)
    w = split.quarantine[split.quarantine["rule_id"] == "DATE_AFTER_CUTOFF"]
    assert list(w["severity"]) == ["warning"] and list(w["source_row"]) == [4]
    assert len(split.loaded["lab"]) == 1


def test_a_value_beyond_its_physiological_limit_is_a_finding(tmp_path):
    """Ferritin 1e308 used to load."""
    rows = [r[:] for r in ROWS]
    rows[2][3] = "1e308"
    q = site(tmp_path, "csv", rows).quarantine
    f = q[q["rule_id"] == "LAB_LIMIT_FERRITIN"]
    assert list(f["source_row"]) == [4] and "1,000,000 ng/mL" in f.iloc[0]["message"]


def test_limits_are_catalog_data_and_both_engines_agree():
    lab = pd.DataFrame({"_row_id": [1, 2, 3, 4, 5], "local_id": ["a"] * 5,
                        "analyte": ["ferritin", "il6", "il6", "car_copies", "ferritin"],
                        "sample_date": pd.to_datetime(["2020-01-01", "1899-12-30", "2020-01-01", "2024-01-01",
                                                       "2020-01-01"]),
                        "value": [2e6, 5.0, 5e5, 2e7, 9e5]})
    py = {(f.rule_id, f.row_id) for f in limit_findings({"lab": lab}, date(2023, 3, 1))}
    assert py == {("LAB_LIMIT_FERRITIN", 1), ("DATE_BEFORE_MIN", 2), ("DATE_AFTER_CUTOFF", 4),
                  ("LAB_LIMIT_CAR_COPIES", 4)}
    con = duckdb.connect()
    con.register("lab", lab)
    sql = set()
    for rule, _col, failing, _shown, _exp in sql_limit_checks(common_schema()["lab"], date(2023, 3, 1)):
        sql |= {(rule, r) for (r,) in con.execute(f"SELECT _row_id FROM lab WHERE {failing}").fetchall()}
    assert sql == py
    assert catalog()["LAB_LIMIT_FERRITIN"].limit == 1e6 and catalog()["LAB_LIMIT_FERRITIN"].scope == ("analyte",
                                                                                                      "ferritin")


# ---------------------------------------------------------------- confusable and bidi ids

@pytest.mark.parametrize("text,bad", [
    ("A0001", False), ("ПАЦ-1", False), ("患者001", False), ("P 1", False),
    ("\u0410" + "0001", True),          # Cyrillic capital A
    ("A\u202e01", True),                # right-to-left override
    ("A\u200b1", True),                 # zero-width space
    ("P\u0430t1", True),                # Latin with a Cyrillic a inside
])
def test_confusable_and_bidi_ids(text, bad):
    assert (problem(text) is not None) == bad


def test_a_cyrillic_lookalike_id_is_quarantined_not_a_second_patient(tmp_path):
    rows = [r[:] for r in ROWS] + [["\u0410" + "1", "reg", None, None, "Di Xu", None],
                                   ["\u0410" + "1", "inf", "2023-01-02", 1.0, None, None]]
    split = site(tmp_path, "csv", rows)
    q = split.quarantine
    f = q[q["rule_id"] == "ID_CONFUSABLE"]
    assert set(f["source_row"]) == {9, 10}
    assert "CYRILLIC CAPITAL LETTER A" in f.iloc[0]["message"]
    assert len(split.loaded["patient"]) == 3


# ---------------------------------------------------------------- a site that shrinks

def output(read: int, bad: int) -> SiteOutput:
    return SiteOutput("center_a", "h", {}, pd.DataFrame(), pd.DataFrame(), read, bad, 0)


def test_shrink_beyond_the_share_is_refused_with_the_reason():
    """A header-only export for a 34-patient center published 0 patients with exit 0."""
    why = shrink_reason({"patients_read": 36, "patients_quarantined": 2}, output(0, 0), 20)
    assert why and "from 34 to 0" in why and "--allow-shrink" in why and "max_shrink_pct" in why
    assert shrink_reason({"patients_read": 36, "patients_quarantined": 2}, output(30, 0), 20) is None  # -12%
    assert shrink_reason(None, output(0, 0), 20) is None                 # no last good run
    assert shrink_reason({"patients_read": 10, "patients_quarantined": 0}, output(12, 0), 0) is None
