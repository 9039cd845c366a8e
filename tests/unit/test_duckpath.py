"""The DuckDB path gives the same quarantine and the same loaded rows as the pandas path.

Each case runs one site twice: with the lab table on the pandas path (mapper + pandera +
cross-table rules + resolve) and forced onto the DuckDB path (threshold 0 for the lab
table), then compares the quarantine rows and the loaded lab rows exactly.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from etl.compile import duckpath, sqlcompile
from etl.config import load_config, pseudonym_key
from etl.site import run_site
from schemas.catalog import catalog
from warehouse import layout

ROOT = Path(__file__).resolve().parents[2]
QCOLS = ["site_id", "source_file", "source_row", "target_table", "rule_id", "severity", "column_name",
         "source_column", "value", "message"]


def _config(tmp: Path, sites: dict[str, Path]) -> Path:
    raw = yaml.safe_load((ROOT / "carpool.yml").read_text())
    raw["output_dir"] = str(tmp / "out")
    raw["sites"] = [{"id": k, "mapping": str(v)} for k, v in sites.items()]
    path = tmp / "carpool.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return path


def _both(cfg_path: Path, site_id: str, tmp: Path):
    cfg = load_config(cfg_path)
    key, _ = pseudonym_key(cfg)
    site = cfg.site(site_id)
    pandas_run = run_site(cfg, site, key, sql=set())
    sql_run = run_site(cfg, site, key, work_dir=tmp / "work", sql={"lab"})
    return pandas_run, sql_run


def _assert_same(a, b) -> None:
    assert isinstance(b.tables["lab"], Path), "the lab table did not take the DuckDB path"
    qa = a.quarantine[QCOLS].astype(str).sort_values(QCOLS).reset_index(drop=True)
    qb = b.quarantine[QCOLS].astype(str).sort_values(QCOLS).reset_index(drop=True)
    pd.testing.assert_frame_equal(qa, qb)
    fa = a.files.sort_values("path").reset_index(drop=True)
    fb = b.files[fa.columns].sort_values("path").reset_index(drop=True)
    pd.testing.assert_frame_equal(fa, fb, check_dtype=False)
    la = a.tables["lab"].sort_values("source_row").reset_index(drop=True)
    lb = pd.read_parquet(b.tables["lab"]).sort_values("source_row").reset_index(drop=True)
    lb["sample_date"] = pd.to_datetime(lb["sample_date"]).astype(la["sample_date"].dtype)
    # the DuckDB path writes the warehouse's layout (site_id is the partition's name): the site cache moves it
    assert layout.conforms(b.tables["lab"], layout.file_columns(layout.clinical_columns("lab")))
    pd.testing.assert_frame_equal(la.drop(columns=["site_id"]), lb[[c for c in la.columns if c != "site_id"]],
                                  check_dtype=False)
    for name in a.tables:
        if name != "lab":
            pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    assert (a.patients_read, a.patients_quarantined) == (b.patients_read, b.patients_quarantined)


def test_center_c_lab_sql_equals_pandera(tmp_path):
    """center_c: GBK, semicolons, decimal commas, a lab table sharing the event file; planted NEGATIVE_LAB."""
    a, b = _both(_config(tmp_path, {"center_c": ROOT / "sites/center_c/mapping.yml"}), "center_c", tmp_path)
    _assert_same(a, b)
    assert "NEGATIVE_LAB" in set(b.quarantine["rule_id"])


LABS = """\
pid;analyte;result;unit;drawn
A0001;IL-6;3,5;pg/mL;01/02/2017
A0001;IL-6;3,5;pg/mL;01/02/2017
A0001;IL-6;4,0;pg/mL;01/02/2017
A0001;ferritin;1,2;ug/L;02/02/2017
A0001;ferritin;-1;ng/mL;03/02/2017
A0001;IL-6;abc;pg/mL;04/02/2017
A0001;IL-6;1,5;mmHg;05/02/2017
A0001;CRP;1;mg/L;05/02/2017
A0001;IL-6;2;pg/mL;31/02/2017
A0001;IL-6;;pg/mL;06/02/2017
A0001;IL-6;1.234,5;ng/mL;07/02/2017
NOBODY;IL-6;1;pg/mL;06/02/2017
A9901;IL-6;1;pg/mL;06/02/2017
A9901;IL-6;1;pg/mL;06/02/2017
;IL-6;1;pg/mL;06/02/2017
A0001;IL-6;5;NA;08/02/2017
"""


def _lab_site(tmp: Path, text: str) -> Path:
    """center_a plus a dedicated long lab CSV (its own source and mapping entry)."""
    site = tmp / "center_a"
    shutil.copytree(ROOT / "sites/center_a", site)
    (site / "export/labs.csv").write_text(text, encoding="utf-8")
    (site / "codes/analyte.csv").write_text("source_value,target_value\nIL-6,il6\nferritin,ferritin\n")
    m = yaml.safe_load((site / "mapping.yml").read_text())
    m["sources"]["labs"] = {"path": "export/labs.csv", "format": "csv", "delimiter": ";", "decimal": ","}
    m["tables"]["lab"] = {"source": "labs", "columns": {
        "local_id": "pid", "analyte": {"from": "analyte", "codes": "codes/analyte.csv"},
        "value": {"from": "result", "unit_from": "unit"}, "sample_date": {"from": "drawn", "date": "dmy"}}}
    (site / "mapping.yml").write_text(yaml.safe_dump(m, allow_unicode=True))
    return _config(tmp, {"center_a": site / "mapping.yml"})


def test_dedicated_lab_file_with_every_defect(tmp_path):
    """Unknown codes, bad numbers/dates/units, duplicates (exact and conflicting), orphans,
    a missing local id, a cascaded patient (A9901 is a planted defect of center_a)."""
    a, b = _both(_lab_site(tmp_path, LABS), "center_a", tmp_path)
    _assert_same(a, b)
    rules = set(b.quarantine.loc[b.quarantine["target_table"] == "lab", "rule_id"])
    assert {"UNKNOWN_CODE", "TYPE_MISMATCH", "DATE_UNPARSEABLE", "NEGATIVE_LAB", "DUPLICATE_CONFLICT",
            "ORPHAN_ROW", "REQUIRED_MISSING", "CASCADE_PATIENT"} <= rules
    labs = b.files[b.files["source"] == "labs"].iloc[0]
    assert labs["rows_read"] == labs["rows_loaded"] + labs["rows_quarantined"] == 16


def test_rows_of_spaces_and_cells_led_by_spaces(tmp_path):
    """A record whose cells hold only spaces is blank (skipped, later rows keep their
    numbers), Unicode spaces included; a record whose first cells are spaces but a later one
    is not is read; a cell of spaces around a missing marker is missing. Both paths agree."""
    text = (LABS.replace("A0001;IL-6;abc", " ; ;  ;\u00a0; \u3000\nA0001;IL-6;abc")
            .replace("A0001;CRP;1;mg/L", "  ;  ;1;mg/L;05/02/2017\nA0001; NA ;  N/A ;null;  .  \nA0001;CRP;1;mg/L"))
    a, b = _both(_lab_site(tmp_path, text), "center_a", tmp_path)
    _assert_same(a, b)
    labs = b.files[b.files["source"] == "labs"].iloc[0]
    assert labs["rows_read"] == 18   # 16 + the two records with a value; the spaces-only record is blank


@pytest.mark.parametrize("cell", ["", " ", "NA", " NA ", "N/A", "na", "NULL", "null", ".", " . ", "NULLS", "nul",
                                  "x", "  x  ", "NA\t", "\u00a0NA", "ñull", "12345", "1.0", None])
def test_missing_markers_in_sql_are_the_markers(cell):
    """sqlcompile.missing_to_null (a length test first, then the markers) is NULL exactly for
    a marker after trim, and the trimmed text otherwise: the length test changes nothing."""
    import duckdb

    markers = " OR ".join(f"trim($c) = {sqlcompile.lit(m)}" for m in sqlcompile.MISSING)
    got, defined = duckdb.execute(f"SELECT {sqlcompile.missing_to_null('$c')}, "
                                  f"CASE WHEN {markers} THEN NULL ELSE trim($c) END", {"c": cell}).fetchall()[0]
    assert got == defined


def test_blank_lines_fall_back_to_the_pandas_path(tmp_path):
    """Row numbers are CSV lines; with blank lines inside, the SQL path hands the table back."""
    text = LABS.replace("A0001;IL-6;abc", "\nA0001;IL-6;abc")
    cfg = load_config(_lab_site(tmp_path, text))
    key, _ = pseudonym_key(cfg)
    result = run_site(cfg, cfg.site("center_a"), key, work_dir=tmp_path / "work", sql={"lab"})
    assert isinstance(result.tables["lab"], pd.DataFrame)


def test_field_rules_come_from_the_catalog():
    """Every field rule the DuckDB path can emit comes from the pandera model, named by catalog rule ids."""
    from schemas.model import common_schema
    from schemas.pandera_models import table_model

    model = table_model("lab")
    rules = {c.name for col in model.columns.values() for c in col.checks}
    rules |= {"REQUIRED_MISSING" for c in common_schema()["lab"].columns if c.required}
    assert rules == {"REQUIRED_MISSING", "UNKNOWN_CODE", "NEGATIVE_LAB"}
    assert all(r in catalog() for r in rules)
    limits = {c.rule_id for c in sqlcompile.limit_checks(common_schema()["lab"])}
    # DATE_BEFORE_MIN on sample_date and the LAB_LIMIT_* physiological limits (issue 15), from schemas.limits
    assert limits == {"DATE_BEFORE_MIN", "LAB_LIMIT_IL6", "LAB_LIMIT_FERRITIN", "LAB_LIMIT_CAR_COPIES"}
    assert all(r in catalog() for r in limits)
    assert "negative" in sqlcompile.message("NEGATIVE_LAB")


@pytest.mark.parametrize("table", ["patient", "outcome", "toxicity"])
def test_tables_with_cross_table_rules_stay_on_pandas(table):
    from etl.compile.mapping import load_mapping

    mapping = load_mapping(ROOT / "sites/center_c/mapping.yml")
    assert duckpath.eligible(mapping, table) is not None
    assert duckpath.eligible(mapping, "lab") is None


def test_oversized_cells_and_confusable_ids_on_the_duckdb_path(tmp_path):
    """Issue 15's leftover: CELL_TOO_LONG and ID_CONFUSABLE ran only over pandas frames, so a
    lab file (DuckDB path) loaded a 40,000-character cell and a Cyrillic-lookalike patient id."""
    long = "A" * 40_000
    text = (LABS + f"{long};IL-6;1;pg/mL;09/02/2017\n"
            "А0001;IL-6;1;pg/mL;10/02/2017\nA0001\u202e;IL-6;1;pg/mL;10/02/2017\n")   # Cyrillic А; U+202E
    a, b = _both(_lab_site(tmp_path, text), "center_a", tmp_path)
    _assert_same(a, b)
    q = b.quarantine[b.quarantine["target_table"] == "lab"]
    assert list(q.loc[q["rule_id"] == "CELL_TOO_LONG", "source_row"]) == [18]
    assert sorted(q.loc[q["rule_id"] == "ID_CONFUSABLE", "source_row"]) == [19, 20]
    assert long not in q.to_csv() and "40,000" in q.to_csv()
