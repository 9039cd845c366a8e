"""Cross-field and cross-table rules (schemas/rules.py), each with a row that must not trip it."""
import pandas as pd
import pytest

from etl.compile.compiler import typed as _typed
from schemas.model import common_schema
from schemas.rules import cross_table_findings


def frame(table: str, *rows: dict) -> pd.DataFrame:
    full = [{"_row_id": i, "_source_file": "f.csv", "_source_row": i + 2, "_source_rows": (("f.csv", i + 2),),
             "site_id": "center_x", **r} for i, r in enumerate(rows)]
    return _typed(common_schema()[table], full)


def patient(lid, **kw):
    return {"local_id": lid, "sex": "F", "age_years": 40, "ph_positive": False, "disease_status": "relapsed",
            "n_relapses": 1, "prior_lines": 2, "bm_blasts_pct": 10.0, "ecog": 1, **kw}


def site(n=2, **override) -> dict[str, pd.DataFrame]:
    """A clean site of n patients (P1..Pn); `override` replaces whole tables (as lists of rows)."""
    ids = [f"P{i}" for i in range(1, n + 1)]
    rows = {
        "patient": [patient(i) for i in ids],
        "infusion": [{"local_id": i, "infusion_date": "2023-01-01", "product": "CD19_41BB",
                      "dose_1e6_per_kg": 1.0} for i in ids],
        "toxicity": [{"local_id": i, "tox_type": "CRS", "onset_date": "2023-01-03", "resolution_date": "2023-01-08",
                      "grade_astct": 1, "source_scale": "ASTCT2019", "source_grade": 1, "grade_method": "native"}
                     for i in ids],
        "toxicity_treatment": [{"local_id": i, "agent": "tocilizumab", "start_date": "2023-01-04",
                                "end_date": "2023-01-05"} for i in ids],
        "lab": [{"local_id": i, "analyte": "il6", "sample_date": "2023-01-03", "value": 100.0} for i in ids],
        "response": [{"local_id": i, "assessment_date": "2023-01-30", "response": "CR", "mrd_pct": 0.001,
                      "mrd_negative": True} for i in ids],
        "outcome": [{"local_id": i, "relapse_date": None, "death_date": None, "last_contact_date": "2023-06-01"}
                    for i in ids],
    }
    rows.update(override)
    return {t: frame(t, *r) for t, r in rows.items()}


def found(tables, names=None):
    return sorted((f.rule_id, f.table, f.row_id) for f in cross_table_findings(tables, names))


def test_clean_site_has_no_findings():
    assert found(site(3), pd.Series({"P1": "Ann Lee", "P2": "Bo Chen", "P3": "Cy Test-Smith"})) == [
        ("TEST_RECORD", "patient", 2)]  # only the name with the word 'test'


def test_duplicate_exact_flags_the_copy_only():
    lab = [{"local_id": "P1", "analyte": "il6", "sample_date": "2023-01-03", "value": 100.0}] * 2 + [
        {"local_id": "P2", "analyte": "il6", "sample_date": "2023-01-03", "value": 100.0}]
    res = cross_table_findings(site(lab=lab))
    assert [(f.rule_id, f.row_id, f.local_id) for f in res] == [("DUPLICATE_EXACT", 1, "P1")]
    assert "exact copy of source row 2" in res[0].message


def test_duplicate_conflict_flags_every_row_of_the_key():
    lab = [{"local_id": "P1", "analyte": "il6", "sample_date": "2023-01-03", "value": 100.0},
           {"local_id": "P1", "analyte": "il6", "sample_date": "2023-01-03", "value": 250.0},
           {"local_id": "P1", "analyte": "il6", "sample_date": "2023-01-04", "value": 250.0},  # other key
           {"local_id": "P2", "analyte": "il6", "sample_date": "2023-01-03", "value": 100.0}]
    res = cross_table_findings(site(lab=lab))
    assert [(f.rule_id, f.row_id, f.column) for f in res] == [("DUPLICATE_CONFLICT", 0, "value"),
                                                             ("DUPLICATE_CONFLICT", 1, "value")]
    assert "source rows 2, 3" in res[0].message


def test_duplicates_ignore_null_keys():
    lab = [{"local_id": "P1", "analyte": "il6", "sample_date": None, "value": 1.0}] * 2 + [
        {"local_id": "P2", "analyte": "il6", "sample_date": "2023-01-03", "value": 1.0}]
    assert found(site(lab=lab)) == []


def test_orphan_row():
    lab = [{"local_id": "P1", "analyte": "il6", "sample_date": "2023-01-03", "value": 1.0},
           {"local_id": "P2", "analyte": "il6", "sample_date": "2023-01-03", "value": 1.0},
           {"local_id": "P9", "analyte": "il6", "sample_date": "2023-01-03", "value": 1.0}]
    res = cross_table_findings(site(lab=lab))
    assert [(f.rule_id, f.table, f.row_id, f.value) for f in res] == [("ORPHAN_ROW", "lab", 2, "P9")]


@pytest.mark.parametrize("child, rule", [("infusion", "MISSING_INFUSION"), ("response", "MISSING_RESPONSE"),
                                         ("outcome", "MISSING_OUTCOME")])
def test_missing_child(child, rule):
    tables = site(2)
    tables[child] = tables[child][tables[child]["local_id"] == "P1"].reset_index(drop=True)
    assert (rule, "patient", 1) in found(tables)
    assert (rule, "patient", 0) not in found(tables)


def test_date_order_rules():
    out = [{"local_id": "P1", "death_date": "2022-12-31", "last_contact_date": "2022-12-31"},
           {"local_id": "P2", "death_date": "2023-01-01", "last_contact_date": "2023-01-01"}]  # same day: fine
    tox = [{"local_id": "P1", "tox_type": "CRS", "onset_date": "2022-12-30", "resolution_date": "2022-12-29",
            "grade_astct": 1, "source_scale": "ASTCT2019", "source_grade": 1, "grade_method": "native"},
           {"local_id": "P2", "tox_type": "CRS", "onset_date": "2023-01-02", "resolution_date": "2023-01-02",
            "grade_astct": 1, "source_scale": "ASTCT2019", "source_grade": 1, "grade_method": "native"}]
    tt = [{"local_id": "P1", "agent": "tocilizumab", "start_date": "2023-01-05", "end_date": "2023-01-04"},
          {"local_id": "P2", "agent": "tocilizumab", "start_date": "2023-01-05", "end_date": None}]
    resp = [{"local_id": "P1", "assessment_date": "2022-12-01", "response": "CR"},
            {"local_id": "P2", "assessment_date": "2023-01-30", "response": "CR"}]
    res = cross_table_findings(site(outcome=out, toxicity=tox, toxicity_treatment=tt, response=resp))
    got = sorted((f.rule_id, f.table, f.row_id) for f in res)
    assert got == [("CR_BEFORE_INFUSION", "response", 0), ("DEATH_BEFORE_INFUSION", "outcome", 0),
                   ("LAST_CONTACT_BEFORE_INFUSION", "outcome", 0), ("ONSET_BEFORE_INFUSION", "toxicity", 0),
                   ("RESOLUTION_BEFORE_ONSET", "toxicity", 0), ("TREATMENT_END_BEFORE_START", "toxicity_treatment", 0)]
    death = next(f for f in res if f.rule_id == "DEATH_BEFORE_INFUSION")
    assert death.message == "death 2022-12-31 is before infusion 2023-01-01"


def test_relapse_before_cr_and_relapse_without_cr():
    resp = [{"local_id": "P1", "assessment_date": "2023-01-30", "response": "CR"},
            {"local_id": "P2", "assessment_date": "2023-01-30", "response": "NR"},
            {"local_id": "P3", "assessment_date": "2023-01-30", "response": "CR"}]
    out = [{"local_id": "P1", "relapse_date": "2023-01-20", "last_contact_date": "2023-06-01"},
           {"local_id": "P2", "relapse_date": "2023-03-01", "last_contact_date": "2023-06-01"},
           {"local_id": "P3", "relapse_date": "2023-03-01", "last_contact_date": "2023-06-01"}]
    assert found(site(3, response=resp, outcome=out)) == [("RELAPSE_BEFORE_CR", "outcome", 0),
                                                          ("RELAPSE_WITHOUT_CR", "outcome", 1)]


def test_mrd_inconsistent_is_a_warning():
    resp = [{"local_id": "P1", "assessment_date": "2023-01-30", "response": "CR", "mrd_pct": 0.5,
             "mrd_negative": True},
            {"local_id": "P2", "assessment_date": "2023-01-30", "response": "CR", "mrd_pct": 0.5,
             "mrd_negative": False}]
    res = cross_table_findings(site(response=resp))
    assert [(f.rule_id, f.severity, f.row_id) for f in res] == [("MRD_INCONSISTENT", "warning", 0)]


def test_eligibility_warnings():
    pats = [patient("P1", age_years=70, ecog=2), patient("P2", age_years=69, ecog=None)]
    res = cross_table_findings(site(patient=pats))
    assert sorted((f.rule_id, f.severity, f.row_id) for f in res) == [
        ("ELIGIBILITY_AGE", "warning", 0), ("ELIGIBILITY_ECOG", "warning", 0)]


def test_test_record_by_name_or_id_never_echoes_the_name():
    pats = [patient("P1"), patient("TEST-01"), patient("P3"), patient("P4")]
    names = pd.Series({"P1": "Dummy Patient", "TEST-01": "Real Name", "P3": "测试", "P4": "Testa Rossi"})
    res = cross_table_findings(site(4, patient=pats, infusion=[], response=[], outcome=[]), names)
    rec = [f for f in res if f.rule_id == "TEST_RECORD"]
    assert [f.row_id for f in rec] == [0, 1, 2]
    assert all(f.value == "***" and "Dummy" not in f.message and "Real" not in f.message for f in rec)
