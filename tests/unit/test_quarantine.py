"""The load/quarantine split: cascade, exact copies, unmapped rows, reconciliation, masking."""
from pathlib import Path

import pandas as pd
import pytest

from etl.compile.mapping import load_mapping
from etl.read.readers import read_source
from etl.site import map_site
from etl.validate.phi import MASK
from etl.validate.quarantine import resolve

MAPPING = """\
site_id: center_x
sources:
  ev: {path: events.csv, format: csv}
identifiers: {source: ev, local_id: id, columns: [name, phone], name: name}
tables:
  patient:
    source: ev
    where: {event: [reg]}
    columns:
      local_id: id
      sex: {from: sex, codes: sex.csv}
      age_years: {value: 40}
      ph_positive: {value: false}
      disease_status: {value: relapsed}
      n_relapses: {value: 1}
      prior_lines: lines
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
      analyte: {value: il6}
      sample_date: date
      value: {from: value, unit: pg/mL}
"""

EVENTS = """\
id,event,date,value,sex,lines,name,phone
P1,reg,,,F,2,Alice Wong,13800138001
P1,inf,2023-01-01,1.0,,,,
P1,lab,2023-01-03,100,,,,
P1,lab,2023-01-04,-5,,,,
P1,lab,2023-01-03,100,,,,
P1,note,2023-01-05,,,,,
P2,reg,,,Bob Li,3,Bob Li,13800138002
P2,inf,2023-01-02,1.0,,,,
P2,lab,2023-01-03,50,,,,
P3,reg,,,M,13800138003,Cy Ho,13800138003
P3,inf,2023-01-02,1.0,,,,
"""


@pytest.fixture
def split(tmp_path: Path):
    (tmp_path / "events.csv").write_text(EVENTS, encoding="utf-8")
    (tmp_path / "sex.csv").write_text("source_value,target_value\nF,F\nM,M\n", encoding="utf-8")
    (tmp_path / "mapping.yml").write_text(MAPPING, encoding="utf-8")
    m = load_mapping(tmp_path / "mapping.yml")
    raw = {n: read_source(n, s, tmp_path) for n, s in m.sources.items()}
    tables, findings, idents = map_site(m, raw)
    return resolve("center_x", tables, findings, raw, idents)


def rows_of(q: pd.DataFrame, rule: str) -> list[int]:
    return sorted(q.loc[q["rule_id"] == rule, "source_row"].astype(int))


def test_patient_level_error_cascades_to_all_the_patients_rows(split):
    q = split.quarantine
    # P2: unknown sex code on the patient row -> infusion and lab rows go with the patient
    assert rows_of(q, "UNKNOWN_CODE") == [8]
    assert rows_of(q, "CASCADE_PATIENT") == [9, 10, 12]  # P2 infusion + lab; P3 infusion (its row 11 is bad)
    cascade = q[q["source_row"] == 9].iloc[0]
    assert cascade["target_table"] == "infusion"
    assert "UNKNOWN_CODE in patient (events.csv row 8)" in cascade["message"]
    assert set(split.loaded["patient"]["local_id"]) == {"P1"}
    assert set(split.loaded["infusion"]["local_id"]) == {"P1"}
    assert (split.patients_read, split.patients_quarantined) == (3, 2)


def test_row_level_error_quarantines_only_that_lab_row(split):
    q = split.quarantine
    assert rows_of(q, "NEGATIVE_LAB") == [5]
    lab = split.loaded["lab"]
    assert list(lab["_source_row"]) == [4]  # P1's other lab row (6 is an exact copy)
    assert "P1" in set(split.loaded["patient"]["local_id"])  # the patient stays


def test_exact_copy_quarantines_the_copy_only(split):
    q = split.quarantine
    assert rows_of(q, "DUPLICATE_EXACT") == [6]
    assert not (q["rule_id"].eq("CASCADE_PATIENT") & q["source_row"].isin([2, 3, 4])).any()


def test_source_row_no_table_uses_is_unmapped(split):
    q = split.quarantine
    un = q[q["rule_id"] == "UNMAPPED_ROW"]
    assert list(un["source_row"]) == [7]
    assert un.iloc[0]["source_file"] == "events.csv" and un.iloc[0]["severity"] == "error"


def test_reconciliation_per_file(split):
    f = split.files.iloc[0]
    assert (f["source"], f["path"], f["rows_read"]) == ("ev", "events.csv", 11)
    # loaded: P1 reg, inf, lab(4); quarantined: 5 neg lab, 6 copy, 7 unmapped, 8..12 P2/P3
    assert (f["rows_loaded"], f["rows_quarantined"]) == (3, 8)
    assert f["rows_read"] == f["rows_loaded"] + f["rows_quarantined"]


def test_identifier_values_are_masked_in_value_and_message(split):
    q = split.quarantine
    sex = q[q["rule_id"] == "UNKNOWN_CODE"].iloc[0]
    assert sex["value"] == MASK
    assert "Bob Li" not in sex["message"] and MASK in sex["message"]
    lines = q[(q["rule_id"] == "OUT_OF_RANGE") & (q["column_name"] == "prior_lines")].iloc[0]
    assert lines["value"] == MASK and "13800138003" not in lines["message"]
    text = q.to_csv()
    for ident in ("Bob Li", "Alice Wong", "13800138002", "13800138003"):
        assert ident not in text


def test_quarantine_shape(split):
    q = split.quarantine
    assert list(q.columns) == ["site_id", "local_id", "source_file", "source_row", "target_table", "rule_id",
                               "severity", "column_name", "source_column", "value", "message"]
    assert (q["site_id"] == "center_x").all()
    assert list(q["source_row"]) == sorted(q["source_row"])


def test_warning_is_recorded_and_row_loaded(tmp_path):
    (tmp_path / "events.csv").write_text(EVENTS, encoding="utf-8")
    (tmp_path / "sex.csv").write_text("source_value,target_value\nF,F\nM,M\n", encoding="utf-8")
    (tmp_path / "mapping.yml").write_text(MAPPING.replace("age_years: {value: 40}", "age_years: {value: 75}"),
                                          encoding="utf-8")
    m = load_mapping(tmp_path / "mapping.yml")
    raw = {n: read_source(n, s, tmp_path) for n, s in m.sources.items()}
    tables, findings, idents = map_site(m, raw)
    split = resolve("center_x", tables, findings, raw, idents)
    q = split.quarantine
    warn = q[q["rule_id"] == "ELIGIBILITY_AGE"]
    assert list(warn["severity"]) == ["warning"] * 3
    assert set(split.loaded["patient"]["local_id"]) == {"P1"}  # warned, loaded


def test_exact_copy_of_a_quarantined_patients_row_goes_with_the_patient(tmp_path):
    events = EVENTS + "P2,lab,2023-01-03,50,,,,\n"  # row 13: copy of P2's lab row 10
    (tmp_path / "events.csv").write_text(events, encoding="utf-8")
    (tmp_path / "sex.csv").write_text("source_value,target_value\nF,F\nM,M\n", encoding="utf-8")
    (tmp_path / "mapping.yml").write_text(MAPPING, encoding="utf-8")
    m = load_mapping(tmp_path / "mapping.yml")
    raw = {n: read_source(n, s, tmp_path) for n, s in m.sources.items()}
    tables, findings, idents = map_site(m, raw)
    split = resolve("center_x", tables, findings, raw, idents)
    q = split.quarantine
    assert rows_of(q, "DUPLICATE_EXACT") == [6]  # P1's copy only; P2's copy is cascaded
    assert 13 in rows_of(q, "CASCADE_PATIENT")
    f = split.files.iloc[0]
    assert (f["rows_read"], f["rows_loaded"], f["rows_quarantined"]) == (12, 3, 9)


def test_every_quarantined_source_row_is_named_in_the_quarantine(tmp_path):
    """Regression: a row pivoted from source rows 2 and 3 used to be recorded under row 2 only,
    so a person looking for row 3 found nothing although it was counted as quarantined."""
    (tmp_path / "events.csv").write_text("id,event,date\nP9,death,2023-01-01\nP9,last,2023-02-01\n",
                                         encoding="utf-8")
    (tmp_path / "mapping.yml").write_text("""\
site_id: center_x
sources:
  ev: {path: events.csv, format: csv}
identifiers: {source: ev, local_id: id, columns: [id]}
tables:
  patient:
    source: ev
    where: {event: [reg]}
    columns: {local_id: id}
  outcome:
    source: ev
    pivot: {key: id, event_column: event}
    columns:
      local_id: id
      death_date: {from: date, when: death}
      last_contact_date: {from: date, when: last}
""", encoding="utf-8")
    m = load_mapping(tmp_path / "mapping.yml")
    raw = {n: read_source(n, s, tmp_path) for n, s in m.sources.items()}
    tables, findings, idents = map_site(m, raw)
    split = resolve("center_x", tables, findings, raw, idents)
    assert split.files.iloc[0]["rows_quarantined"] == 2  # P9 is an orphan: both rows quarantined
    assert set(split.quarantine["source_row"]) == {2, 3}
