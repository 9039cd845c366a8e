"""Issue 13 items 3 and 4: what a site says in YAML alone, and what its reports say back.

Each test builds a small export + mapping.yml in tmp_path and runs the real site path
(`etl.site.map_site`: compile, harmonize, pandera, cross-table and site rules)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from markupsafe import escape

from etl.compile.mapping import load_mapping, quarantine_threshold
from etl.errors import ConfigError
from etl.read.readers import read_source
from etl.site import map_site
from etl.validate.unmapped import unmapped_columns, unmapped_text
from etl.validate.where import location
from schemas.catalog import catalog

HEAD = """\
site_id: center_x
date_formats: [iso]
sources:
  p: {path: p.csv, format: csv}
identifiers: {source: p, local_id: id, columns: [id]}
"""
PATIENT = """\
  patient:
    source: p
    columns: {local_id: id, sex: {value: F}, age_years: {value: 40}, ph_positive: {value: false},
              disease_status: {value: relapsed}, n_relapses: {value: 1}, prior_lines: {value: 2},
              bm_blasts_pct: {value: 10}}
  infusion:
    source: p
    columns: {local_id: id, infusion_date: inf, product: {value: CD19_41BB}, dose_1e6_per_kg: {value: 1}}
"""
TOX = """\
  toxicity:
    source: p
    columns:
      local_id: id
      tox_type: {value: ICANS}
      source_scale: {from: scale}
      source_grade: grade
      onset_date: {from: onset%s}
"""


def site(tmp_path: Path, body: str, csv_text: str, extra: str = "", codes: dict[str, str] | None = None):
    (tmp_path / "p.csv").write_text(csv_text, encoding="utf-8")
    for name, text in (codes or {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "mapping.yml").write_text(HEAD + extra + "tables:\n" + body, encoding="utf-8")
    m = load_mapping(tmp_path / "mapping.yml")
    raw = {n: read_source(n, s, tmp_path) for n, s in m.sources.items()}
    tables, findings, _ = map_site(m, raw)
    return m, raw, tables, findings


def of(findings, table: str | None = None) -> list[tuple]:
    return sorted((f.rule_id, f.column, f.value) for f in findings if table is None or f.table == table)


CSV = "id,inf,scale,grade,onset\nP1,2021-01-01,ASTCT2019,2,2021-01-05\nP2,2021-01-01,ASTCT2019,1,2022-02-05\n"


# -- the catalog --------------------------------------------------------------------------
def test_every_rule_has_a_how_to_fix_line():
    missing = [r for r, c in catalog().items() if len(c.how_to_fix) < 10]
    assert not missing, f"schemas/checks.csv rules without how_to_fix: {missing}"


def test_new_rules_are_in_the_catalog_with_their_severity():
    c = catalog()
    assert c["DATE_UNKNOWN_DECLARED"].severity == "warning"
    assert c["ONSET_WINDOW"].severity == "warning" and c["ONSET_WINDOW"].limit == 90
    assert c["SITE_LIMIT"].severity == "warning"


# -- onset window -------------------------------------------------------------------------
def test_default_onset_window_warns_past_90_days(tmp_path):
    """The issue's ICANS 400 days after infusion, which loaded without a word."""
    _, _, _, findings = site(tmp_path, PATIENT + TOX % "", CSV)
    late = [f for f in findings if f.rule_id == "ONSET_WINDOW"]
    assert [(f.value, f.severity) for f in late] == [("2022-02-05", "warning")]
    assert "400 days after infusion 2021-01-01: beyond the 90-day onset window" in late[0].message


def test_site_tightens_the_onset_window_for_icans(tmp_path):
    text = CSV.replace("2021-01-05", "2021-02-15")   # P1: 45 days
    rules = "rules:\n  - {rule: ONSET_WINDOW, limit: 30, where: {tox_type: [ICANS]}}\n"
    _, _, _, findings = site(tmp_path, PATIENT + TOX % "", text, rules)
    late = sorted((f.value, f.message.split(": ")[-1]) for f in findings if f.rule_id == "ONSET_WINDOW")
    assert late == [("2021-02-15", "beyond the 30-day onset window"),
                    ("2022-02-05", "beyond the 30-day onset window")]   # one finding per row: the tightest


@pytest.mark.parametrize("rule, error", [
    ("{rule: ONSET_WINDOW, limit: 120}", "limit 120 days is wider than the catalog's 90"),
    ("{rule: NO_SUCH_RULE, limit: 3}", "'NO_SUCH_RULE' is not a catalog rule a site can set"),
    ("{rule: REQUIRED_MISSING}", "is not a catalog rule a site can set"),
    ("{rule: SITE_LIMIT, table: patient, column: sex, max: 3}", "needs `column:`, a numeric column of patient"),
    ("{rule: SITE_LIMIT, table: infusion, column: dose_1e6_per_kg}", "needs `min:` and/or `max:`"),
    ("{rule: ONSET_WINDOW, limit: 30, where: {grade: [3]}}", "where: ['grade'] not columns of table toxicity"),
    ("{rule: ONSET_WINDOW, limit: 30, colour: red}", "colour"),
])
def test_a_bad_site_rule_is_one_line_naming_file_and_key(tmp_path, rule, error):
    with pytest.raises(ConfigError) as exc:
        site(tmp_path, PATIENT, CSV, f"rules:\n  - {rule}\n")
    msg = str(exc.value)
    assert error in msg and "mapping.yml" in msg and "\n" not in msg and "Traceback" not in msg


def test_site_limit_flags_beyond_the_sites_own_limit(tmp_path):
    body = PATIENT.replace("dose_1e6_per_kg: {value: 1}", "dose_1e6_per_kg: dose")
    text = "id,inf,dose\nP1,2021-01-01,1.5\nP2,2021-01-01,4\n"
    _, _, _, findings = site(tmp_path, body, text, "rules:\n  - {rule: SITE_LIMIT, table: infusion, "
                                                   "column: dose_1e6_per_kg, max: 2}\n")
    hits = [f for f in findings if f.rule_id == "SITE_LIMIT"]
    assert [(f.value, f.severity, f.source_column) for f in hits] == [("4.0", "warning", "dose")]
    assert "outside the site's limit <= 2" in hits[0].message


# -- unknown dates ------------------------------------------------------------------------
def test_declared_unknown_date_is_a_warning_not_required_missing(tmp_path):
    text = CSV + "P3,2021-01-01,ASTCT2019,1,UNK\nP4,2021-01-01,ASTCT2019,1,\n"
    decl = ", unknown: {values: [unk], reason: onset not charted}"
    _, _, tables, findings = site(tmp_path, PATIENT + TOX % decl, text)
    tox = of(findings, "toxicity")
    assert ("DATE_UNKNOWN_DECLARED", "onset_date", "UNK") in tox
    assert ("REQUIRED_MISSING", "onset_date", "") in tox            # a blank cell was not declared
    assert not any(r == "DATE_UNPARSEABLE" for r, _, _ in tox)
    unk = next(f for f in findings if f.rule_id == "DATE_UNKNOWN_DECLARED")
    assert unk.severity == "warning" and "onset not charted" in unk.message
    assert tables["toxicity"]["onset_date"].isna().sum() == 2


def test_without_the_declaration_the_marker_is_unparseable(tmp_path):
    _, _, _, findings = site(tmp_path, PATIENT + TOX % "", CSV + "P3,2021-01-01,ASTCT2019,1,UNK\n")
    assert ("DATE_UNPARSEABLE", "onset_date", "UNK") in of(findings)


def test_unknown_only_on_dates_no_analysis_needs(tmp_path):
    body = PATIENT.replace("infusion_date: inf", "infusion_date: {from: inf, unknown: {reason: lost charts}}")
    with pytest.raises(ConfigError, match=r"`unknown:` is only for the required dates no analysis needs"):
        site(tmp_path, body, CSV)


# -- a local agent ------------------------------------------------------------------------
def test_local_agent_maps_to_a_class_code_and_keeps_its_name(tmp_path):
    body = PATIENT + """\
  toxicity_treatment:
    source: p
    columns: {local_id: id, agent: {from: drug, codes: codes/agent.csv}, start_date: inf}
"""
    codes = {"codes/agent.csv": "source_value,target_value\nAnakinra,other_anticytokine\nToci,tocilizumab\n"}
    text = "id,inf,drug\nP1,2021-01-01,Anakinra\nP2,2021-01-01,Toci\n"
    _, _, tables, findings = site(tmp_path, body, text, codes=codes)
    tt = tables["toxicity_treatment"]
    assert list(tt["agent"]) == ["other_anticytokine", "tocilizumab"]
    assert list(tt["agent_local"]) == ["Anakinra", None]
    assert of(findings, "toxicity_treatment") == []


# -- one finding for one bad cell --------------------------------------------------------
def test_grade_out_of_scale_is_one_finding(tmp_path):
    """center_d's source grade 7 on LEE2014 gave four findings: GRADE_OUT_OF_SCALE,
    OUT_OF_RANGE on source_grade and REQUIRED_MISSING on grade_astct and grade_method."""
    text = CSV.replace("ASTCT2019,2,2021-01-05", "LEE2014,7,2021-01-05")
    _, _, _, findings = site(tmp_path, PATIENT + TOX % "", text)
    p1 = [f.rule_id for f in findings if f.table == "toxicity" and f.row_id == 0]
    assert p1 == ["GRADE_OUT_OF_SCALE"]


def test_missing_infusion_date_is_not_also_a_missing_age(tmp_path):
    body = PATIENT.replace("age_years: {value: 40}", "age_years: {derive: age_at_infusion}")
    text = "id,inf,dob\nP1,2021-01-01,1980-01-01\nP2,,1980-01-01\n"
    head = HEAD.replace("columns: [id]}", "columns: [id, dob], birth_date: dob}")
    (tmp_path / "p.csv").write_text(text, encoding="utf-8")
    (tmp_path / "mapping.yml").write_text(head + "tables:\n" + body, encoding="utf-8")
    m = load_mapping(tmp_path / "mapping.yml")
    tables, findings, _ = map_site(m, {n: read_source(n, s, tmp_path) for n, s in m.sources.items()})
    assert of(findings) == [("REQUIRED_MISSING", "infusion_date", "")]
    assert list(tables["patient"]["age_years"])[0] == 41


# -- reports ------------------------------------------------------------------------------
def test_duplicate_conflict_shows_the_values_side_by_side(tmp_path):
    body = PATIENT.replace("sex: {value: F}", "sex: s")
    text = "id,inf,s\nP1,2021-01-01,F\nP1,2021-01-01,M\n"
    _, _, _, findings = site(tmp_path, body, text)
    conflict = [f for f in findings if f.rule_id == "DUPLICATE_CONFLICT" and f.table == "patient"]
    assert conflict and "sex 'F' (row 2) vs 'M' (row 3)" in conflict[0].message


def test_findings_name_the_export_column_per_melt_group(tmp_path):
    body = PATIENT + """\
  toxicity:
    source: p
    columns: {local_id: id, source_scale: {value: ASTCT2019}, onset_date: inf}
    melt:
      - when: crs
        columns: {tox_type: {value: CRS}, source_grade: crs}
      - when: icans
        columns: {tox_type: {value: ICANS}, source_grade: icans}
"""
    text = "id,inf,crs,icans\nP1,2021-01-01,2,x\n"
    _, _, _, findings = site(tmp_path, body, text)
    bad = [f for f in findings if f.rule_id == "TYPE_MISMATCH"]
    assert [(f.column, f.source_column) for f in bad] == [("source_grade", "icans")]


def test_location_names_column_sheet_and_row():
    rec = {"source_column": "Geschlecht", "column_name": "sex", "source_file": "export.xlsx [Patients]",
           "source_row": 12}
    assert location(rec) == "column Geschlecht (sex), file export.xlsx, sheet Patients, row 12"
    assert location({"column_name": "", "source_file": "a.csv", "source_row": 3}) == "file a.csv, row 3"


def test_unmapped_columns_listed_unless_ignored_with_a_reason(tmp_path):
    m, raw, _, _ = site(tmp_path, PATIENT, "id,inf,weight,remark\nP1,2021-01-01,70,x\n")
    assert unmapped_columns(m, raw, tmp_path) == {"p.csv": ["weight", "remark"]}
    assert "2 unmapped source columns (p.csv: weight, remark)" in unmapped_text("center_x", {"p.csv": ["weight",
                                                                                                     "remark"]})
    ignored = HEAD.replace("{path: p.csv, format: csv}", "{path: p.csv, format: csv, ignore: {weight: not in the "
                                                          "common schema, remark: free text}}")
    (tmp_path / "mapping.yml").write_text(ignored + "tables:\n" + PATIENT, encoding="utf-8")
    m = load_mapping(tmp_path / "mapping.yml")
    assert unmapped_columns(m, raw, tmp_path) == {}
    # a DuckDB-path source is not read into pandas: its header line is read instead
    assert unmapped_columns(m, {}, tmp_path) == {}


def test_ignore_needs_a_reason(tmp_path):
    bad = HEAD.replace("{path: p.csv, format: csv}", "{path: p.csv, format: csv, ignore: {weight: ''}}")
    (tmp_path / "p.csv").write_text(CSV, encoding="utf-8")
    (tmp_path / "mapping.yml").write_text(bad + "tables:\n" + PATIENT, encoding="utf-8")
    with pytest.raises(ConfigError, match="give a reason for each ignored column"):
        load_mapping(tmp_path / "mapping.yml")


def test_site_quarantine_threshold_overrides_the_config(tmp_path):
    cfg = SimpleNamespace(quality=SimpleNamespace(max_quarantined_pct=25.0))
    m, *_ = site(tmp_path, PATIENT, CSV, "quality: {max_quarantined_pct: 40, reason: pilot center}\n")
    assert quarantine_threshold(cfg, m)[0] == 40
    m, *_ = site(tmp_path, PATIENT, CSV)
    assert quarantine_threshold(cfg, m) == (25.0, "quality.max_quarantined_pct")
    with pytest.raises(ConfigError, match="max_quarantined_pct"):
        site(tmp_path, PATIENT, CSV, "quality: {max_quarantined_pct: 140, reason: pilot center}\n")


def test_report_and_quarantine_csv_carry_where_and_how_to_fix(tmp_path):
    from etl.validate.validation_report import write_validation_report

    q = pd.DataFrame([{"site_id": "x", "source_file": "p.csv", "source_row": 3, "target_table": "patient",
                       "rule_id": "UNKNOWN_CODE", "severity": "error", "column_name": "sex",
                       "source_column": "Geschlecht", "value": "9", "message": "sex = '9' is not in code list"}])
    result = SimpleNamespace(quarantine=q, site_id="x", patients_read=1, patients_quarantined=1, warnings=0,
                             files=pd.DataFrame(), unmapped={"p.csv": ["remark"]})
    html = write_validation_report(tmp_path, result, Path("carpool.yml"), "run-1").read_text("utf-8")
    assert "column Geschlecht (sex), file p.csv, row 3" in html
    assert str(escape(catalog()["UNKNOWN_CODE"].how_to_fix)) in html and "remark" in html
    written = pd.read_csv(tmp_path / "quarantine.csv")
    assert written.loc[0, "how_to_fix"] == catalog()["UNKNOWN_CODE"].how_to_fix
    assert written.loc[0, "where"] == "column Geschlecht (sex), file p.csv, row 3"
    assert written.loc[0, "run_id"] == "run-1"


def test_the_unmapped_line_stays_short_for_a_wide_export():
    """A 2,000-column export: the one-line notice names 20 columns and counts the rest."""
    from etl.validate.unmapped import unmapped_text

    text = unmapped_text("center_x", {"wide.csv": [f"col_{i}" for i in range(2000)]})
    assert "2000 unmapped source columns" in text and "and 1980 more" in text
    assert len(text) < 1000
