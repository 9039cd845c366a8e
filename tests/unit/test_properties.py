"""Property: random junk in an export means findings/quarantine out, never a crash or a lost row.

A small mapping that uses most features (code lists, dates in several formats, excel serials,
relative days, decimal numbers, units per row, per-kg derivation, melt with skip, where,
pivot, distinct) runs the per-site flow (read, map, harmonize, validate, resolve) on CSV
exports filled with random cells. The only exception allowed is InputError for a file that
cannot be read at all; for every file rows_read == rows_loaded + rows_quarantined.
"""
import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from etl.compile.mapping import load_mapping
from etl.errors import InputError
from etl.read.readers import read_source
from etl.site import map_site
from etl.validate.quarantine import resolve

MAPPING = """\
site_id: center_p
date_formats: [iso, dmy, excel_serial]
sources:
  ev: {path: export.csv, format: csv}
identifiers: {source: ev, local_id: id, columns: [name, dob], name: name, birth_date: dob}
tables:
  patient:
    source: ev
    where: {event: [reg]}
    distinct: true
    columns:
      local_id: id
      sex: {from: sex, codes: sex.csv}
      age_years: {derive: age_at_infusion}
      ph_positive: flag
      disease_status: {value: relapsed}
      n_relapses: n
      prior_lines: n
      bm_blasts_pct: num
      ecog: n
  infusion:
    source: ev
    where: {event: [reg]}
    columns:
      local_id: id
      infusion_date: {from: d, date: [excel_serial, iso]}
      product: {value: CD19_41BB}
      dose_1e6_per_kg: {derive: per_kg, args: {total: num, weight_kg: n}, unit: 10^6 cells}
  toxicity:
    source: ev
    where: {event: [reg]}
    columns:
      local_id: id
      source_scale: {value: ASTCT2019}
    melt:
      - when: n
        skip: [0]
        columns: {tox_type: {value: CRS}, source_grade: n, onset_date: {from: num, relative_to: d}}
  lab:
    source: ev
    where: {event: [lab]}
    columns:
      local_id: id
      analyte: {from: sex, codes: analyte.csv}
      sample_date: d
      value: {from: num, unit_from: unit}
  response:
    source: ev
    where: {event: [reg, lab]}
    columns:
      local_id: id
      assessment_date: d
      response: unit
      mrd_pct: num
      mrd_negative: flag
  outcome:
    source: ev
    where: {event: [death, last]}
    pivot: {key: id, event_column: event}
    columns:
      local_id: id
      death_date: {from: d, when: death}
      last_contact_date: {from: d, when: last}
"""
HEADER = ["id", "event", "sex", "flag", "n", "num", "d", "unit", "name", "dob"]

text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
number = st.one_of(st.integers(-10**20, 10**20).map(str), st.floats(allow_nan=True).map(str),
                   st.floats(-1e3, 1e3).map(lambda x: f"{x:.3f}".replace(".", ",")))
date_cell = st.one_of(st.dates().map(str), st.dates().map(lambda d: d.strftime("%d/%m/%Y")),
                      st.integers(-10, 3_000_000).map(str), st.sampled_from(["2023-02-30", "9999-12-31"]))
codes = st.sampled_from(["F", "M", "il6", "ferritin", "CR", "NR", "yes", "0", "1", "ng/mL", "pg/mL", "mmol/L",
                         "reg", "lab", "death", "last", "NA", "", " ", "TEST", "P1", "P2"])
cell = st.one_of(codes, text, number, date_cell)
ids = st.sampled_from(["P1", "P2", "P3", "test-9", "", "NA", "P1 "])
events = st.sampled_from(["reg", "reg", "lab", "death", "last", "other", ""])
row = st.tuples(ids, events, *[cell] * (len(HEADER) - 2)).map(list)


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("site_p")
    (d / "mapping.yml").write_text(MAPPING, encoding="utf-8")
    (d / "sex.csv").write_text("source_value,target_value\nF,F\nM,M\n", encoding="utf-8")
    (d / "analyte.csv").write_text("source_value,target_value\nil6,il6\nferritin,ferritin\n", encoding="utf-8")
    return d


_MAPPINGS: dict = {}


def _mapping(site_dir: Path):
    if site_dir not in _MAPPINGS:
        _MAPPINGS[site_dir] = load_mapping(site_dir / "mapping.yml")
    return _MAPPINGS[site_dir]


def run_flow(site_dir: Path, rows: list[list[str]]):
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    (site_dir / "export.csv").write_bytes(buf.getvalue().encode("utf-8"))
    m = _mapping(site_dir)
    try:
        raw = {n: read_source(n, s, site_dir) for n, s in m.sources.items()}
    except InputError as exc:
        assert "\n" not in str(exc) and "export.csv" in str(exc)
        return None, None
    tables, findings, idents = map_site(m, raw)
    return raw, resolve("center_p", tables, findings, raw, idents)


def check_reconciles(raw, split, n_rows: int):
    files = split.files
    assert len(files) == 1
    f = files.iloc[0]
    assert f["rows_read"] == f["rows_loaded"] + f["rows_quarantined"]
    nonblank = raw["ev"].rows_read
    assert f["rows_read"] == nonblank <= n_rows
    q = split.quarantine
    assert q["rule_id"].notna().all() and q["message"].map(bool).all()
    assert set(q["severity"]) <= {"error", "warning"}
    # a source row no table used has its own UNMAPPED_ROW record
    used = {int(r) for t in split.loaded.values() for rows in t["_source_rows"] for _, r in rows}
    unmapped = set(q.loc[q["rule_id"] == "UNMAPPED_ROW", "source_row"].astype(int))
    assert not used & unmapped
    if f["rows_quarantined"]:
        assert (q["severity"] == "error").any()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(row, min_size=1, max_size=12))
@example(rows=[["P1", "reg", "F", "1", "2", "0001-01-01", "9999-12-31", "", "x", "0001-01-01"]])
@example(rows=[["P1", "reg", "F", "1", "2", "1e30", "44927", "", "x", "9999-12-31"],
               ["P1", "last", "F", "1", "2", "1", "200000", "", "x", ""]])
def test_junk_export_never_crashes_and_reconciles(site_dir, rows):
    raw, split = run_flow(site_dir, rows)
    if split is not None:
        check_reconciles(raw, split, len(rows))


def test_sentinel_birth_date_gives_an_age_finding(site_dir):
    """A birth date of 9999-12-31 or 0001-01-01 gives an implausible age: quarantined, no crash."""
    for dob in ("9999-12-31", "0001-01-01"):
        raw, split = run_flow(site_dir, [["P1", "reg", "F", "0", "1", "1", "2023-01-01", "CR", "Ann", dob],
                                         ["P1", "last", "", "", "", "", "2023-06-01", "", "", ""]])
        check_reconciles(raw, split, 2)
        q = split.quarantine
        assert ("OUT_OF_RANGE", "age_years") in set(zip(q["rule_id"], q["column_name"], strict=True))
        assert split.files.iloc[0]["rows_quarantined"] == 2


def test_clean_row_loads(site_dir):
    raw, split = run_flow(site_dir, [["P1", "reg", "F", "0", "1", "1", "2023-01-01", "CR", "Ann", "1980-01-01"],
                                     ["P1", "last", "", "", "", "", "2023-06-01", "", "", ""]])
    check_reconciles(raw, split, 2)
    assert split.quarantine.empty, split.quarantine["message"].tolist()
    assert split.loaded["patient"]["age_years"].tolist() == [43]
    assert split.files.iloc[0]["rows_loaded"] == 2


@settings(max_examples=50, deadline=None)
@given(data=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(lambda t: t.encode("utf-8", "replace"))),
       fmt=st.sampled_from(["csv", "excel", "sav"]), header_row=st.integers(1, 3))
def test_reader_junk_bytes_is_a_table_or_input_error(tmp_path_factory, data, fmt, header_row):
    from etl.compile.mapping import Source
    d = tmp_path_factory.mktemp("junk", numbered=True)
    (d / "f.dat").write_bytes(data)
    try:
        t = read_source("f", Source(path="f.dat", format=fmt, header_row=header_row), d)
    except InputError as exc:
        assert "\n" not in str(exc) and "f.dat" in str(exc)
        return
    assert list(t.frame["_source_row"]) == sorted(set(t.frame["_source_row"]))
    assert all(n > header_row for n in t.frame["_source_row"])
