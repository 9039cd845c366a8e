"""Field and row rules of the pandera models, on minimal typed frames."""
import pandas as pd
import pytest

from etl.compile.compiler import typed as _typed
from schemas.model import common_schema
from schemas.pandera_models import validate_table


def frame(table: str, *rows: dict) -> pd.DataFrame:
    """A typed table as the mapper makes it, with lineage."""
    full = [{"_row_id": i, "_source_file": "f.csv", "_source_row": i + 2, "_source_rows": (("f.csv", i + 2),),
             "site_id": "center_x", **r} for i, r in enumerate(rows)]
    return _typed(common_schema()[table], full)


PATIENT = dict(local_id="P1", sex="F", age_years=40, ph_positive=False, disease_status="relapsed",
               n_relapses=1, prior_lines=3, bm_blasts_pct=20.0, ecog=1)
TOX = dict(local_id="P1", tox_type="CRS", onset_date="2023-01-03", grade_astct=2, source_scale="ASTCT2019",
           source_grade=2, grade_method="native")
LAB = dict(local_id="P1", analyte="il6", sample_date="2023-01-03", value=120.0)


def found(table, *rows, reported=frozenset()):
    return [(f.rule_id, f.row_id, f.column) for f in validate_table(table, frame(table, *rows), set(reported))]


def test_valid_rows_pass():
    assert found("patient", PATIENT, {**PATIENT, "local_id": "P2", "ecog": None}) == []
    assert found("toxicity", TOX) == []
    assert found("lab", LAB, {**LAB, "value": 0.0}) == []


def test_required_missing():
    assert found("patient", PATIENT, {**PATIENT, "local_id": "P2", "sex": None}) == [
        ("REQUIRED_MISSING", 1, "sex")]


def test_unknown_code():
    res = validate_table("patient", frame("patient", PATIENT, {**PATIENT, "local_id": "P2", "sex": "X"}), set())
    assert [(f.rule_id, f.row_id, f.column, f.value, f.local_id) for f in res] == [
        ("UNKNOWN_CODE", 1, "sex", "X", "P2")]
    assert "not in code list sex" in res[0].message


@pytest.mark.parametrize("col, value", [("age_years", 101), ("age_years", -1), ("bm_blasts_pct", 100.5),
                                        ("ecog", 5)])
def test_out_of_range(col, value):
    res = validate_table("patient", frame("patient", PATIENT, {**PATIENT, "local_id": "P2", col: value}), set())
    assert [(f.rule_id, f.row_id, f.column) for f in res] == [("OUT_OF_RANGE", 1, col)]
    assert "outside" in res[0].message


def test_range_bounds_are_inclusive():
    assert found("patient", {**PATIENT, "age_years": 0, "bm_blasts_pct": 100.0, "ecog": 4}) == []


def test_negative_lab():
    res = validate_table("lab", frame("lab", LAB, {**LAB, "value": -3.0}), set())
    assert [(f.rule_id, f.row_id, f.column) for f in res] == [("NEGATIVE_LAB", 1, "value")]
    assert "negative" in res[0].message


def test_grade_out_of_scale():
    res = found("toxicity", TOX, {**TOX, "source_grade": 6})
    assert ("GRADE_OUT_OF_SCALE", 1, "source_grade") in res
    assert all(r[1] == 1 for r in res)


def test_already_reported_cell_is_not_reported_twice():
    bad = {**PATIENT, "local_id": "P2", "sex": None}
    assert found("patient", PATIENT, bad, reported={(1, "sex")}) == []
    assert found("patient", PATIENT, bad, reported={(0, "sex")}) == [("REQUIRED_MISSING", 1, "sex")]


def test_several_problems_in_one_row():
    res = found("patient", {**PATIENT, "sex": "Q", "age_years": None, "n_relapses": 11})
    assert sorted(res) == [("OUT_OF_RANGE", 0, "n_relapses"), ("REQUIRED_MISSING", 0, "age_years"),
                           ("UNKNOWN_CODE", 0, "sex")]


def test_row_ids_need_not_be_positions():
    f = frame("patient", PATIENT, {**PATIENT, "local_id": "P2", "sex": None})
    f["_row_id"] = [10, 20]
    assert [(x.rule_id, x.row_id) for x in validate_table("patient", f, set())] == [("REQUIRED_MISSING", 20)]


def test_empty_table_passes():
    assert found("lab") == []
