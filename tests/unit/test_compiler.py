"""Each mapping feature end-to-end through the SQL compiler, on small exports built in tmp_path."""
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from etl.compile.compiler import Compiler
from etl.compile.mapping import load_mapping
from etl.read.readers import read_source


def run(tmp_path: Path, mapping: str, files: dict[str, str | bytes], codes: dict[str, str] | None = None):
    """Write an export + mapping.yml in tmp_path and map it: (tables, findings, raw)."""
    for name, content in files.items():
        p = tmp_path / name
        p.write_bytes(content) if isinstance(content, bytes) else p.write_text(content, encoding="utf-8")
    for name, content in (codes or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content, encoding="utf-8")
    (tmp_path / "mapping.yml").write_text(mapping, encoding="utf-8")
    m = load_mapping(tmp_path / "mapping.yml")
    raw = {n: read_source(n, s, tmp_path) for n, s in m.sources.items()}
    mapper = Compiler(m, raw)
    tables = {n: mt.frame for n, mt in mapper.map_all().items()}
    return tables, mapper.findings, raw


def mapping(tables: str, sources: str = "  p: {path: p.csv, format: csv}", date_formats: str = "[iso]") -> str:
    return (f"site_id: center_x\ndate_formats: {date_formats}\nsources:\n{sources}\n"
            "identifiers: {source: p, local_id: id, columns: [id]}\n"
            f"tables:\n{tables}")


def rules(findings) -> list[tuple[str, str, str]]:
    return [(f.rule_id, f.column, f.value) for f in findings]


SEX = "source_value,target_value\nMale,M\nFemale,F\n1,M\n2,F\n"


def test_rename_constant_and_lineage(tmp_path):
    tables, findings, _ = run(tmp_path, mapping("""\
  patient:
    source: p
    columns:
      local_id: id
      prior_lines: lines
      ph_positive: {value: false}
      bm_blasts_pct: blasts
"""), {"p.csv": "id,lines,blasts\nP1,2,12.5\n\nP2,0,3\n"})
    pat = tables["patient"]
    assert findings == []
    assert list(pat["local_id"]) == ["P1", "P2"]
    assert list(pat["prior_lines"]) == [2, 0]
    assert list(pat["ph_positive"]) == [False, False]
    assert list(pat["bm_blasts_pct"]) == [12.5, 3.0]
    assert list(pat["_row_id"]) == [0, 1]
    assert list(pat["_source_row"]) == [2, 4]  # true line numbers: the blank line 3 counts
    assert list(pat["_source_rows"]) == [(("p.csv", 2),), (("p.csv", 4),)]
    assert pat["sex"].isna().all()  # not mapped: null, for pandera to judge


def test_code_list_known_and_unknown(tmp_path):
    tables, findings, _ = run(tmp_path, mapping("""\
  patient:
    source: p
    columns:
      local_id: id
      sex: {from: sex, codes: codes/sex.csv}
"""), {"p.csv": "id,sex\nP1,Male\nP2,2\nP3,Unknown\nP4,\n"}, {"codes/sex.csv": SEX})
    assert list(tables["patient"]["sex"]) == ["M", "F", None, None]
    assert rules(findings) == [("UNKNOWN_CODE", "sex", "Unknown")]
    assert findings[0].local_id == "P3" and findings[0].row_id == 2
    assert "codes/sex.csv" in findings[0].message


def test_dates_iso_excel_serial_and_mixed(tmp_path):
    tables, findings, _ = run(tmp_path, mapping("""\
  infusion:
    source: p
    columns:
      local_id: id
      infusion_date: {from: d, date: [excel_serial, ymd_slash]}
  response:
    source: p
    columns:
      local_id: id
      assessment_date: d2
""", date_formats="[dmy, iso]"), {"p.csv": "id,d,d2\nP1,44927,01/02/2023\nP2,2023/01/05,2023-02-03\n"
                                            "P3,5.1.2023,31/02/2023\n"})
    inf = tables["infusion"]["infusion_date"]
    assert inf[0] == pd.Timestamp("2023-01-01")  # Excel serial 44927 = 2023-01-01
    assert inf[1] == pd.Timestamp("2023-01-05")
    assert pd.isna(inf[2])
    resp = tables["response"]["assessment_date"]
    assert list(resp[:2]) == [pd.Timestamp("2023-02-01"), pd.Timestamp("2023-02-03")]  # site default: dmy, iso
    assert pd.isna(resp[2])
    assert rules(findings) == [("DATE_UNPARSEABLE", "infusion_date", "5.1.2023"),
                               ("DATE_UNPARSEABLE", "assessment_date", "31/02/2023")]
    assert "excel_serial or ymd_slash" in findings[0].message


def test_strftime_pattern(tmp_path):
    tables, findings, _ = run(tmp_path, mapping("""\
  infusion:
    source: p
    columns:
      local_id: id
      infusion_date: {from: d, date: "%d.%m.%Y"}
"""), {"p.csv": "id,d\nP1,05.01.2023\n"})
    assert tables["infusion"]["infusion_date"][0] == pd.Timestamp("2023-01-05") and findings == []


def test_relative_to(tmp_path):
    tables, findings, _ = run(tmp_path, mapping("""\
  outcome:
    source: p
    columns:
      local_id: id
      last_contact_date: {from: last, relative_to: inf}
      death_date: {from: death, relative_to: inf}
"""), {"p.csv": "id,inf,last,death\nP1,2023-01-01,30,\nP2,2023-01-01,x,\nP3,,10,\n"})
    o = tables["outcome"]
    assert o["last_contact_date"][0] == pd.Timestamp("2023-01-31")
    assert pd.isna(o["death_date"][0])  # empty: null, no finding
    assert rules(findings) == [("DATE_UNPARSEABLE", "last_contact_date", "x"),
                               ("DATE_UNPARSEABLE", "last_contact_date", "10")]


def test_decimal_comma_and_delimiter(tmp_path):
    tables, findings, _ = run(tmp_path, mapping("""\
  patient:
    source: p
    columns:
      local_id: id
      bm_blasts_pct: blasts
      prior_lines: lines
""", sources='  p: {path: p.csv, format: csv, delimiter: ";", decimal: ","}'),
        {"p.csv": "id;blasts;lines\nP1;12,5;2\nP2;1.234,5;3,0\nP3;abc;2,5\n"})
    pat = tables["patient"]
    assert pat["bm_blasts_pct"][0] == 12.5
    assert pat["bm_blasts_pct"][1] == 1234.5  # thousands point + decimal comma
    assert list(pat["prior_lines"][:2]) == [2, 3]
    assert rules(findings) == [("TYPE_MISMATCH", "bm_blasts_pct", "abc"), ("TYPE_MISMATCH", "prior_lines", "2,5")]


LAB = """\
  lab:
    source: p
    columns:
      local_id: id
      analyte: {value: il6}
      sample_date: d
      value: {from: v, %s}
"""


def test_unit_conversion_ng_to_pg(tmp_path):
    tables, findings, _ = run(tmp_path, mapping(LAB % "unit: ng/mL"), {"p.csv": "id,d,v\nP1,2023-01-01,1.5\n"})
    lab = tables["lab"]
    assert lab["value"][0] == 1500.0
    assert (lab["source_value"][0], lab["source_unit"][0]) == ("1.5", "ng/mL")
    assert findings == []


def test_unit_from_per_row(tmp_path):
    tables, findings, _ = run(tmp_path, mapping(LAB % "unit_from: u"),
                              {"p.csv": "id,d,v,u\nP1,2023-01-01,2,ng/mL\nP2,2023-01-01,7,pg/mL\n"
                                        "P3,2023-01-01,7,mmol/L\n"})
    assert list(tables["lab"]["value"][:2]) == [2000.0, 7.0]
    assert pd.isna(tables["lab"]["value"][2])
    assert rules(findings) == [("TYPE_MISMATCH", "source_unit", "mmol/L")]


def test_per_kg_derive(tmp_path):
    tables, findings, _ = run(tmp_path, mapping("""\
  infusion:
    source: p
    columns:
      local_id: id
      dose_1e6_per_kg: {derive: per_kg, args: {total: cells, weight_kg: kg}, unit: 10^8 cells}
"""), {"p.csv": "id,cells,kg\nP1,1.5,50\nP2,,50\nP3,2,0\nP4,lots,50\n"})
    dose = tables["infusion"]["dose_1e6_per_kg"]
    assert dose[0] == 3.0  # 1.5e8 cells / 50 kg = 3e6/kg
    assert pd.isna(dose[1]) and pd.isna(dose[2]) and pd.isna(dose[3])
    assert [f.rule_id for f in findings] == ["TYPE_MISMATCH", "TYPE_MISMATCH"]
    assert "positive body weight" in findings[0].message


def test_melt_with_skip(tmp_path):
    tables, findings, _ = run(tmp_path, mapping("""\
  toxicity:
    source: p
    columns:
      local_id: id
      source_scale: {value: ASTCT2019}
    melt:
      - when: crs
        skip: [0]
        columns: {tox_type: {value: CRS}, source_grade: crs, onset_date: crs_on}
      - when: icans
        skip: [0]
        columns: {tox_type: {value: ICANS}, source_grade: icans, onset_date: icans_on}
"""), {"p.csv": "id,crs,crs_on,icans,icans_on\nP1,2,2023-01-02,1,2023-01-05\nP2,0,,0,\nP3,0.0,,3,2023-02-01\nP4,,,,\n"})
    tox = tables["toxicity"]
    assert list(zip(tox["local_id"], tox["tox_type"], tox["source_grade"], strict=True)) == [
        ("P1", "CRS", 2), ("P1", "ICANS", 1), ("P3", "ICANS", 3)]
    assert list(tox["_row_id"]) == [0, 1, 2]
    assert list(tox["_source_row"]) == [2, 2, 4]
    assert list(tox["source_scale"]) == ["ASTCT2019"] * 3
    assert findings == []


def test_pivot_events_to_one_row(tmp_path):
    tables, findings, _ = run(tmp_path, mapping("""\
  outcome:
    source: p
    where: {event: [relapse, death, last]}
    pivot: {key: id, event_column: event}
    columns:
      local_id: id
      relapse_date: {from: d, when: relapse}
      death_date: {from: d, when: death}
      last_contact_date: {from: d, when: last}
"""), {"p.csv": "id,event,d\nP1,reg,2022-01-01\nP1,relapse,2023-01-01\nP2,last,2023-03-01\nP1,death,2023-02-01\n"})
    o = tables["outcome"].set_index("local_id")
    assert o.loc["P1", "relapse_date"] == pd.Timestamp("2023-01-01")
    assert o.loc["P1", "death_date"] == pd.Timestamp("2023-02-01")
    assert pd.isna(o.loc["P1", "last_contact_date"])
    assert o.loc["P1", "_source_rows"] == (("p.csv", 3), ("p.csv", 5))
    assert o.loc["P2", "last_contact_date"] == pd.Timestamp("2023-03-01")
    assert o.loc["P2", "_source_row"] == 4
    assert findings == []


def test_where_filter(tmp_path):
    tables, _, _ = run(tmp_path, mapping("""\
  infusion:
    source: p
    where: {event: [inf], n: [1]}
    columns:
      local_id: id
      infusion_date: d
"""), {"p.csv": "id,event,n,d\nP1,inf,1,2023-01-01\nP1,tox,1,2023-01-02\nP2,inf,1.0,2023-01-03\nP3,inf,2,2023-01-04\n"})
    inf = tables["infusion"]
    assert list(inf["local_id"]) == ["P1", "P2"]  # 1.0 matches 1
    assert list(inf["_source_row"]) == [2, 4]


def test_distinct_collapses_repeats_and_flags_conflicts(tmp_path):
    tables, findings, _ = run(tmp_path, mapping("""\
  patient:
    source: p
    distinct: true
    columns:
      local_id: id
      prior_lines: lines
"""), {"p.csv": "id,lines\nP1,2\nP1,2\nP2,1\nP2,3\nP3,0\n"})
    pat = tables["patient"]
    assert list(pat["local_id"]) == ["P1", "P2", "P3"]
    assert pat.set_index("local_id").loc["P1", "_source_rows"] == (("p.csv", 2), ("p.csv", 3))
    assert [(f.rule_id, f.column, f.local_id) for f in findings] == [("DUPLICATE_CONFLICT", "prior_lines", "P2")]
    assert "2 rows for one patient disagree" in findings[0].message


def test_gbk_encoding(tmp_path):
    text = "编号,性别\nP1,男\nP2,女\n"
    tables, findings, _ = run(tmp_path, mapping("""\
  patient:
    source: p
    columns:
      local_id: 编号
      sex: {from: 性别, codes: codes/sex.csv}
""", sources="  p: {path: p.csv, format: csv, encoding: gbk}").replace("columns: [id]", "columns: [编号]")
        .replace("local_id: id,", "local_id: 编号,"),
        {"p.csv": text.encode("gbk")}, {"codes/sex.csv": "source_value,target_value\n男,M\n女,F\n"})
    assert list(tables["patient"]["sex"]) == ["M", "F"] and findings == []


def test_excel_title_row_keeps_sheet_row_numbers(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Patients"
    ws.append(["CAR-T export 2023 (title row)"])
    ws.append(["id", "inf", "lines"])
    ws.append(["P1", date(2023, 1, 1), 2])
    ws.append([None, None, None])
    ws.append(["P2", 44930, 1.0])
    ws.append(["P3", "2023/01/09", "x"])
    wb.save(tmp_path / "p.xlsx")
    tables, findings, raw = run(tmp_path, mapping("""\
  infusion:
    source: p
    columns:
      local_id: id
      infusion_date: inf
  patient:
    source: p
    columns:
      local_id: id
      prior_lines: lines
""", sources="  p: {path: p.xlsx, format: excel, sheet: Patients, header_row: 2}",
        date_formats="[excel_serial, ymd_slash]"), {})
    inf = tables["infusion"]
    assert list(inf["_source_row"]) == [3, 5, 6]  # the sheet rows a person sees
    assert list(inf["_source_file"]) == ["p.xlsx [Patients]"] * 3
    assert list(inf["infusion_date"]) == [pd.Timestamp(x) for x in ("2023-01-01", "2023-01-04", "2023-01-09")]
    assert list(tables["patient"]["prior_lines"][:2]) == [2, 1]
    assert rules(findings) == [("TYPE_MISMATCH", "prior_lines", "x")]
    assert raw["p"].rows_read == 3


def test_spss_value_labels(tmp_path):
    pyreadstat = pytest.importorskip("pyreadstat")
    df = pd.DataFrame({"pid": ["D1", "D2", "D3"], "sex": [1.0, 2.0, 9.0], "resp": [1.0, 3.0, None]})
    pyreadstat.write_sav(df, str(tmp_path / "s.sav"),
                         variable_value_labels={"sex": {1.0: "Male", 2.0: "Female"},
                                                "resp": {1.0: "CR", 3.0: "NR"}})
    tables, findings, raw = run(tmp_path, mapping("""\
  patient:
    source: s
    columns:
      local_id: pid
      sex: {from: sex, codes: codes/sex.csv}
  response:
    source: s
    columns:
      local_id: pid
      response: resp
""", sources="  s: {path: s.sav, format: sav}").replace("source: p, local_id: id, columns: [id]",
                                                        "source: s, local_id: pid, columns: [pid]"),
        {}, {"codes/sex.csv": SEX})
    assert list(tables["patient"]["sex"]) == ["M", "F", None]  # numeric code through the site code list
    assert rules(findings) == [("UNKNOWN_CODE", "sex", "9")]
    # no code list, target has a code set: the SPSS value label is used
    assert list(tables["response"]["response"]) == ["CR", "NR", None]
    assert list(tables["patient"]["_source_row"]) == [1, 2, 3]  # SPSS case numbers
    assert raw["s"].value_labels["sex"] == {1.0: "Male", 2.0: "Female"}


def test_spss_value_labels_applied_by_reader(tmp_path):
    pyreadstat = pytest.importorskip("pyreadstat")
    df = pd.DataFrame({"pid": ["D1", "D2"], "sex": [1.0, 2.0]})
    pyreadstat.write_sav(df, str(tmp_path / "s.sav"), variable_value_labels={"sex": {1.0: "Male", 2.0: "Female"}})
    tables, findings, _ = run(tmp_path, mapping("""\
  patient:
    source: s
    columns:
      local_id: pid
      sex: {from: sex, codes: codes/sex.csv}
""", sources="  s: {path: s.sav, format: sav, value_labels: true}").replace(
        "source: p, local_id: id, columns: [id]", "source: s, local_id: pid, columns: [pid]"),
        {}, {"codes/sex.csv": SEX})
    assert list(tables["patient"]["sex"]) == ["M", "F"] and findings == []


def test_missing_source_column_is_config_error(tmp_path):
    from etl.errors import ConfigError
    with pytest.raises(ConfigError, match=r"has no column\(s\) \['lines'\]"):
        run(tmp_path, mapping("  patient:\n    source: p\n    columns: {local_id: id, prior_lines: lines}\n"),
            {"p.csv": "id\nP1\n"})


@pytest.mark.parametrize("value", ["9999-12-31", "0001-01-01", "2500-06-01"])
def test_out_of_range_date_is_a_finding_not_a_crash(tmp_path, value):
    """Regression: a date outside pandas' nanosecond range (e.g. the 9999-12-31 'no date'
    sentinel) parsed fine, then crashed the mapper with OutOfBoundsDatetime in _typed."""
    tables, findings, _ = run(tmp_path, mapping("""\
  infusion:
    source: p
    columns:
      local_id: id
      infusion_date: d
"""), {"p.csv": f"id,d\nP1,{value}\nP2,2023-01-01\n"})
    assert rules(findings) == [("DATE_UNPARSEABLE", "infusion_date", value)]
    assert pd.isna(tables["infusion"]["infusion_date"][0])
    assert tables["infusion"]["infusion_date"][1] == pd.Timestamp("2023-01-01")


@pytest.mark.parametrize("days", ["200000", "-300000", "99999999999"])
def test_out_of_range_relative_day_is_a_finding_not_a_crash(tmp_path, days):
    """Regression: a huge relative day crashed (OverflowError / OutOfBoundsDatetime)."""
    tables, findings, _ = run(tmp_path, mapping("""\
  outcome:
    source: p
    columns:
      local_id: id
      last_contact_date: {from: last, relative_to: inf}
"""), {"p.csv": f"id,inf,last\nP1,2023-01-01,{days}\nP2,9999-12-31,1\n"})
    assert [f.rule_id for f in findings] == ["DATE_UNPARSEABLE", "DATE_UNPARSEABLE"]
    assert tables["outcome"]["last_contact_date"].isna().all()


def test_huge_integer_is_a_finding_not_a_crash(tmp_path):
    """Regression: an integer beyond int64 (e.g. 1e30) crashed _typed with OverflowError."""
    tables, findings, _ = run(tmp_path, mapping("""\
  patient:
    source: p
    columns:
      local_id: id
      prior_lines: lines
"""), {"p.csv": "id,lines\nP1,1e30\nP2,2\n"})
    assert rules(findings) == [("TYPE_MISMATCH", "prior_lines", "1e30")]
    assert pd.isna(tables["patient"]["prior_lines"][0]) and tables["patient"]["prior_lines"][1] == 2


def test_unknown_derivation_and_missing_argument_are_config_errors(tmp_path):
    from etl.errors import ConfigError
    with pytest.raises(ConfigError, match="unknown derivation 'bmi'"):
        run(tmp_path, mapping("  patient:\n    source: p\n    columns: {local_id: id, age_years: {derive: bmi}}\n"),
            {"p.csv": "id\nP1\n"})
    with pytest.raises(ConfigError, match="derive per_kg needs argument 'weight_kg'"):
        run(tmp_path, mapping("  infusion:\n    source: p\n    columns:\n      local_id: id\n"
                              "      dose_1e6_per_kg: {derive: per_kg, args: {total: id}}\n"),
            {"p.csv": "id\nP1\n"})


def test_age_at_infusion_is_left_for_harmonize(tmp_path):
    tables, findings, _ = run(tmp_path, mapping(
        "  patient:\n    source: p\n    columns: {local_id: id, age_years: {derive: age_at_infusion}}\n"),
        {"p.csv": "id\nP1\n"})
    assert tables["patient"]["age_years"].isna().all() and findings == []


def test_missing_code_list_is_config_error(tmp_path):
    from etl.errors import ConfigError
    with pytest.raises(ConfigError, match="code list not found"):
        run(tmp_path, mapping("  patient:\n    source: p\n"
                              "    columns: {local_id: id, sex: {from: s, codes: nope.csv}}\n"),
            {"p.csv": "id,s\nP1,F\n"})


def test_melt_group_with_values_but_blank_when_is_flagged_not_dropped(tmp_path):
    """#15: a melt group whose `when:` column is blank but whose own columns hold values was
    dropped silently; now it yields its row, flagged MELT_WHEN_BLANK (so it is quarantined)."""
    tables, findings, _ = run(tmp_path, mapping("""\
  toxicity:
    source: p
    columns:
      local_id: id
      source_scale: {value: ASTCT2019}
    melt:
      - when: crs
        columns:
          tox_type: {value: CRS}
          source_grade: crs
          onset_date: crs_onset
"""), {"p.csv": "id,crs,crs_onset\nP1,2,2020-01-05\nP2,,2020-02-01\nP3,,\nP4,0,\n"})
    tox = tables["toxicity"]
    assert list(tox["local_id"]) == ["P1", "P2", "P4"]
    assert [(f.rule_id, f.column, f.local_id) for f in findings] == [("MELT_WHEN_BLANK", "crs", "P2")]
    assert "crs_onset" in findings[0].message


def test_ambiguous_thousands_point_in_decimal_comma_file(tmp_path):
    """#15: `6.543` in a decimal-comma file was read as 6.543; it may be 6543."""
    tables, findings, _ = run(tmp_path, mapping("""\
  patient:
    source: p
    columns:
      local_id: id
      bm_blasts_pct: blasts
""", sources='  p: {path: p.csv, format: csv, delimiter: ";", decimal: ","}'),
        {"p.csv": "id;blasts\nP1;6.543\nP2;6,543\nP3;1.234,5\nP4;12.5\n"})
    pat = tables["patient"]
    assert pd.isna(pat["bm_blasts_pct"][0])
    assert list(pat["bm_blasts_pct"][1:]) == [6.543, 1234.5, 12.5]
    assert rules(findings) == [("AMBIGUOUS_DECIMAL", "bm_blasts_pct", "6.543")]
