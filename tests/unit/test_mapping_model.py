"""mapping.yml as a typed model: every feature parses; mistakes name file, line and key."""
from pathlib import Path

import pytest

from etl.compile.mapping import load_mapping
from etl.errors import ConfigError

FULL = """\
site_id: center_x
date_formats: [dmy, iso]
sources:
  patients: {path: p.csv, format: csv, encoding: gbk, delimiter: ";", decimal: ",", header_row: 2}
  events: {path: e.xlsx, format: excel, sheet: Events}
  study: {path: s.sav, format: sav, value_labels: true}
identifiers:
  source: patients
  local_id: pid
  columns: [name, dob]
  name: name
  birth_date: dob
tables:
  patient:
    source: patients
    columns:
      local_id: pid
      sex: {from: sex, codes: codes/sex.csv}
      age_years: {derive: age_at_infusion}
      ph_positive: {value: true}
  infusion:
    source: study
    distinct: true
    columns:
      local_id: pid
      infusion_date: {from: infdate, date: [excel_serial, "%d.%m.%Y"]}
      dose_1e6_per_kg: {derive: per_kg, args: {total: cells, weight_kg: weight}, unit: 10^8 cells}
  toxicity:
    source: patients
    where: {kind: [CRS, ICANS]}
    columns:
      local_id: pid
    melt:
      - when: crs_grade
        skip: [0, "none"]
        columns:
          tox_type: {value: CRS}
          onset_date: {from: crs_day, relative_to: infdate}
  lab:
    source: events
    columns:
      local_id: pid
      value: {from: result, unit_from: unit}
  outcome:
    source: events
    pivot: {key: pid, event_column: event}
    columns:
      local_id: pid
      death_date: {from: event_date, when: death}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "mapping.yml"
    p.write_text(text, encoding="utf-8")
    return p


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_every_feature_parses(tmp_path):
    m = load_mapping(write(tmp_path, FULL))
    assert m.site_dir == tmp_path
    assert m.date_formats == ["dmy", "iso"]
    p = m.sources["patients"]
    assert (p.encoding, p.delimiter, p.decimal, p.header_row) == ("gbk", ";", ",", 2)
    assert m.sources["events"].sheet == "Events"
    assert m.sources["study"].value_labels is True
    assert m.identifiers.birth_date.from_ == "dob"  # shorthand expanded
    pat = m.tables["patient"].columns
    assert pat["local_id"].from_ == "pid"  # shorthand `target: column`
    assert pat["sex"].codes == "codes/sex.csv"
    assert pat["age_years"].derive == "age_at_infusion"
    assert pat["ph_positive"].value is True
    inf = m.tables["infusion"]
    assert inf.distinct is True
    assert inf.columns["infusion_date"].date == ["excel_serial", "%d.%m.%Y"]
    assert inf.columns["dose_1e6_per_kg"].args == {"total": "cells", "weight_kg": "weight"}
    tox = m.tables["toxicity"]
    assert tox.where == {"kind": ["CRS", "ICANS"]}
    assert tox.melt[0].skip == [0, "none"]
    assert tox.melt[0].columns["onset_date"].relative_to == "infdate"
    assert m.tables["lab"].columns["value"].unit_from == "unit"
    out = m.tables["outcome"]
    assert (out.pivot.key, out.pivot.event_column) == ("pid", "event")
    assert out.columns["death_date"].when == "death"


@pytest.mark.parametrize("site", ["center_a", "center_b", "center_c", "center_d"])
def test_demo_mappings_parse(site):
    m = load_mapping(Path(__file__).resolve().parents[2] / "sites" / site / "mapping.yml")
    assert m.site_id == site


def test_unknown_key_names_file_line_and_key(tmp_path):
    text = FULL.replace("      sex: {from: sex, codes: codes/sex.csv}",
                        "      sex: {from: sex, code: codes/sex.csv}")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_mapping(path)
    line = line_of(text, "code: codes/sex.csv")
    assert f"{path}:{line}: tables.patient.columns.sex.code: unknown key" in str(exc.value)


def test_unknown_source_key(tmp_path):
    text = FULL.replace("format: sav, value_labels: true", "format: sav, labels: true")
    with pytest.raises(ConfigError, match=r"mapping.yml:\d+: sources.study.labels: unknown key"):
        load_mapping(write(tmp_path, text))


def test_unknown_format_rejected(tmp_path):
    text = FULL.replace("format: sav,", "format: parquet,")
    with pytest.raises(ConfigError, match=r"sources.study.format"):
        load_mapping(write(tmp_path, text))


def test_unknown_target_column(tmp_path):
    text = FULL.replace("      ph_positive: {value: true}", "      ph_pos: {value: true}")
    with pytest.raises(ConfigError, match=r"tables.patient: unknown target columns \['ph_pos'\]"):
        load_mapping(write(tmp_path, text))


def test_unknown_target_column_in_melt_group(tmp_path):
    text = FULL.replace("          tox_type: {value: CRS}", "          tox_kind: {value: CRS}")
    with pytest.raises(ConfigError, match=r"unknown target columns \['tox_kind'\]"):
        load_mapping(write(tmp_path, text))


def test_unknown_table(tmp_path):
    text = FULL.replace("  lab:\n", "  labs:\n")
    with pytest.raises(ConfigError, match="tables.labs: not a common-schema table"):
        load_mapping(write(tmp_path, text))


def test_table_source_not_in_sources(tmp_path):
    text = FULL.replace("  lab:\n    source: events", "  lab:\n    source: labsheet")
    with pytest.raises(ConfigError, match="tables.lab.source: 'labsheet' is not in sources"):
        load_mapping(write(tmp_path, text))


def test_identifier_source_not_in_sources(tmp_path):
    text = FULL.replace("identifiers:\n  source: patients", "identifiers:\n  source: people")
    with pytest.raises(ConfigError, match="identifiers.source: 'people' is not in sources"):
        load_mapping(write(tmp_path, text))


def test_melt_and_pivot_together_rejected(tmp_path):
    text = FULL.replace("    pivot: {key: pid, event_column: event}",
                        "    pivot: {key: pid, event_column: event}\n"
                        "    melt:\n      - when: x\n        columns: {death_date: y}")
    with pytest.raises(ConfigError, match="either melt or pivot, not both"):
        load_mapping(write(tmp_path, text))


def test_pivot_column_without_when_rejected(tmp_path):
    text = FULL.replace("      death_date: {from: event_date, when: death}", "      death_date: event_date")
    with pytest.raises(ConfigError, match="pivot columns need `when:`"):
        load_mapping(write(tmp_path, text))


@pytest.mark.parametrize("spec", ["{from: sex, value: M}", "{from: sex, derive: per_kg}", "{codes: c.csv}"])
def test_spec_needs_exactly_one_origin(tmp_path, spec):
    text = FULL.replace("      sex: {from: sex, codes: codes/sex.csv}", f"      sex: {spec}")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_mapping(path)
    line = line_of(text, f"sex: {spec}")
    assert f"{path}:{line}: tables.patient.columns.sex" in str(exc.value)
    assert "exactly one of from, value or derive" in str(exc.value)


def test_header_row_must_be_positive(tmp_path):
    text = FULL.replace("header_row: 2", "header_row: 0")
    with pytest.raises(ConfigError, match="sources.patients.header_row"):
        load_mapping(write(tmp_path, text))


@pytest.mark.parametrize("where, text_old, text_new", [
    ("column", 'date: [excel_serial, "%d.%m.%Y"]', "date: [excel_serial, dd.mm.yyyy]"),
    ("site", "date_formats: [dmy, iso]", "date_formats: [dmy, isodate]"),
])
def test_unknown_date_format_rejected_at_load(tmp_path, where, text_old, text_new):
    """Regression: an unknown date format name (`date: dd.mm.yyyy`) passed the mapping model
    and crashed the mapper with a bare KeyError on the first date it parsed."""
    with pytest.raises(ConfigError, match="unknown date format"):
        load_mapping(write(tmp_path, FULL.replace(text_old, text_new)))
