"""The analysis plan (analysis/plan.py, analysis/plans/study.yml) and the runner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from patient_frames import grade_group

from analysis.plan import STUDY_PLAN, PlanError, load_plan, parse_plan
from analysis.runner import COLUMNS, run_plan


def synthetic_patients(n: int = 93, seed: int = 20230301) -> pd.DataFrame:
    """An `analysis_patient`-shaped frame of random (not calibrated) patients."""
    rng = np.random.default_rng(seed)
    crs_grade = rng.choice([0, 1, 2, 3, 4], n, p=[0.18, 0.35, 0.27, 0.15, 0.05])
    icans_grade = np.where(rng.random(n) < 0.17, rng.choice([1, 2, 3], n), 0)
    crs, icans = crs_grade > 0, icans_grade > 0
    severe = (crs_grade >= 3) | (icans_grade >= 3)
    tox = np.where(~crs & ~icans, "none", np.where(severe, "grade3plus", "other"))
    cr = rng.random(n) < 0.92
    disease = rng.choice(["primary_refractory", "relapsed"], n, p=[0.13, 0.87])
    os_months = rng.exponential(40, n).round(1) + 0.1
    lfs_months = np.minimum(os_months, rng.exponential(25, n).round(1) + 0.1)
    car = np.where(rng.random(n) < 0.26, rng.lognormal(10, 1.5, n), np.nan)
    df = pd.DataFrame({
        "study_id": [f"P{i:03d}" for i in range(n)],
        "site_id": rng.choice(["center_a", "center_b", "center_c", "center_d"], n),
        "sex": rng.choice(["M", "F"], n),
        "age_years": rng.integers(2, 71, n),
        "ph_positive": rng.random(n) < 0.2,
        "disease_status": disease,
        "n_relapses": np.where(disease == "relapsed", rng.integers(1, 5, n), 0),
        "prior_lines": rng.integers(0, 14, n),
        "bm_blasts_pct": rng.uniform(0, 95, n).round(1),
        "dose_1e6_per_kg": rng.uniform(0.4, 4.3, n).round(1),
        "crs_any": crs, "crs_grade": crs_grade,
        "icans_any": icans, "icans_grade": icans_grade,
        "crs_icans_concurrent": crs & icans,
        "tox_group": tox,
        "crs_grade_group": grade_group(crs_grade), "icans_grade_group": grade_group(icans_grade),
        "steroids": rng.random(n) < 0.55,
        "tocilizumab": rng.random(n) < 0.48,
        "cr_d30": cr,
        "mrd_neg_cr": pd.Series(rng.random(n) < 0.8, dtype="boolean").where(cr, pd.NA),
        "peak_il6_pg_ml": rng.lognormal(5, 2, n),
        "peak_ferritin_ng_ml": rng.lognormal(8, 1, n),
        "peak_car_copies": car,
        "os_months": os_months,
        "os_event": (rng.random(n) < 0.5).astype(int),
        "lfs_months": np.where(cr, lfs_months, np.nan),
        "lfs_event": pd.Series((rng.random(n) < 0.5).astype(int), dtype="Int64").where(cr, pd.NA),
    })
    # drawn last, so the columns above are what they were before lfs_cause existed
    cause = np.where(rng.random(n) < 0.7, "relapse", "nrm")
    df["lfs_cause"] = np.where(cr, np.where(df["lfs_event"].fillna(0) == 1, cause, "censored"),
                               None)
    return df


@pytest.fixture(scope="module")
def results():
    return run_plan(synthetic_patients(), load_plan())


def test_study_plan_loads_and_names_the_paper_analyses():
    plan = load_plan()
    assert plan.variables["tox_group"].reference == "none"
    assert plan.variables["bm_blasts_ge20"].derive.op == "ge"
    assert plan.response.tests == {"crs": "fisher", "tocilizumab": "fisher",
                                   "steroids": "fisher", "icans": "chi2",
                                   "concurrent": "chi2", "tox_group": "chi2"}
    assert plan.cox.terms == ["bm_blasts_ge20", "steroids", "tocilizumab", "tox_group"]
    assert plan.cox.screen.threshold == 0.1
    assert set(plan.survival.endpoints) == {"os", "lfs"}


def _bad_plan(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(STUDY_PLAN.read_text())
    edit(data)
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_unknown_key_is_rejected_with_file_key_and_line(tmp_path):
    path = _bad_plan(tmp_path, lambda d: d["survival"].update(timez=[12]))
    with pytest.raises(PlanError) as err:
        load_plan(path)
    msg = str(err.value)
    assert str(path) in msg and "survival.timez" in msg and "line" in msg


def test_unknown_operation_is_rejected(tmp_path):
    def edit(d):
        d["variables"]["bm_blasts_ge20"]["derive"]["op"] = "eval"
    with pytest.raises(PlanError, match="unknown op 'eval'"):
        load_plan(_bad_plan(tmp_path, edit))


def test_reference_to_undefined_variable_is_rejected():
    data = yaml.safe_load(STUDY_PLAN.read_text())
    data["cox"]["terms"].append("karnofsky")
    with pytest.raises(PlanError, match="cox.terms: unknown variable 'karnofsky'"):
        parse_plan(data, source="mine.yml")


def test_categorical_needs_reference():
    data = yaml.safe_load(STUDY_PLAN.read_text())
    del data["variables"]["tox_group"]["reference"]
    with pytest.raises(PlanError, match="variables.tox_group: a categorical variable"):
        parse_plan(data)


def test_a_user_plan_needs_no_code():
    """A minimal plan: OS by a derived age group, Cox on it."""
    plan = parse_plan({
        "name": "age",
        "variables": {"older": {"derive": {"column": "age_years", "op": "ge", "value": 40},
                                "kind": "binary"}},
        "survival": {"compare_by": ["older"],
                     "endpoints": {"os": {"duration": "os_months", "event": "os_event"}}},
        "cox": {"endpoints": ["os"], "terms": ["older"]},
    })
    res = run_plan(synthetic_patients(), plan)
    t = res.table
    assert set(t["analysis"]) == {"survival", "cox"}
    assert len(t.query("comparison == 'older' and statistic == 'p_value'")) == 1
    assert set(res.cox["os"].summary["term"]) == {"older"}


def test_runner_table_shape_and_vocabulary(results):
    t = results.table
    assert list(t.columns) == COLUMNS
    assert set(t["analysis"]) == {"table1", "response", "survival", "followup", "kinetics",
                                  "cox", "heterogeneity", "competing", "fine_gray"}
    assert set(t["comparison"]) <= {"crs", "icans", "crs_grade", "icans_grade", "concurrent", "tox_group",
                                    "tocilizumab", "steroids", "all", "screen",
                                    "cause:relapse", "cause:nrm"}
    assert set(t["statistic"]) <= {"p_value", "hr", "hr_lower", "hr_upper", "median", "lower",
                                   "upper", "n", "events", "count", "percent", "concordance",
                                   "ph_p_value",
                                   "chi2", "dof", "q", "i2", "tau2", "statistic", "cif",
                                   "shr", "shr_lower", "shr_upper"}
    assert not t.duplicated(subset=[c for c in COLUMNS if c != "value"]).any()
    assert t["value"].dtype == float


def test_runner_covers_every_planned_comparison(results):
    t, plan = results.table, results.plan
    p = t[(t["statistic"] == "p_value") & (t["term"] == "")]
    for comp in plan.table1.compare_by:
        t1 = p[(p["analysis"] == "table1") & (p["comparison"] == comp)]
        assert set(t1["endpoint"]) == set(plan.table1.variables)
    resp = p[p["analysis"] == "response"].set_index(["comparison", "endpoint"])["test"]
    assert len(resp) == len(plan.response.compare_by) * len(plan.response.endpoints)
    assert resp[("crs", "cr")] == "fisher" and resp[("tox_group", "mrd_neg_cr")] == "chi2"
    assert len(p[p["analysis"] == "survival"]) == len(plan.survival.compare_by) * len(plan.survival.endpoints)
    kin = p[p["analysis"] == "kinetics"].set_index("comparison")["test"]
    assert kin["tox_group"] == "kruskal_wallis" and kin["crs"] == "mann_whitney"


def test_runner_populations_and_counts(results):
    df = synthetic_patients()
    assert results.populations == {"all": 93, "cr": int(df["cr_d30"].sum()),
                                   "car_data": int(df["peak_car_copies"].notna().sum())}
    t = results.table
    n_cr = t.query("analysis == 'response' and comparison == 'crs' and endpoint == 'cr' "
                   "and statistic == 'count'")
    assert n_cr["value"].sum() == df["cr_d30"].sum()
    lfs = results.survival[("crs", "lfs")].km
    assert sum(c.n for c in lfs.curves.values()) == df["cr_d30"].sum()


def test_runner_cox_rows(results):
    t = results.table.query("analysis == 'cox' and comparison == 'all' and endpoint == 'os'")
    terms = set(t["term"])
    assert {"bm_blasts_ge20", "steroids", "tocilizumab", "tox_group:grade3plus",
            "tox_group:other", "tox_group", ""} == terms
    glob = t[(t["term"] == "tox_group")].set_index("test")["value"]
    assert set(glob.index) == {"cox_wald", "cox_lr", "cox_zph"}
    assert t.query("term == '' and statistic == 'n'")["value"].iloc[0] == 93
    screen = results.screen["os"]
    assert set(screen.summary["variable"]) == set(results.plan.cox.screen.candidates)


def test_runner_km_curves_are_plotting_ready(results):
    km = results.survival[("tox_group", "os")].km
    assert set(km.curves) == {"none", "grade3plus", "other"}
    curve = km.curves["none"]
    assert curve.timeline[0] == 0 and curve.survival[0] == 1
    assert len(curve.timeline) == len(curve.lower) == len(curve.at_risk)
    table = km.at_risk_table([0, 12, 24])
    assert table.loc["none", 0] == curve.n


def test_missing_column_is_named():
    df = synthetic_patients().drop(columns=["tox_group"])
    with pytest.raises(KeyError, match="tox_group"):
        run_plan(df, load_plan())


def test_runner_landmarks_at_plan_times(results):
    lm = results.landmarks
    assert list(lm.columns) == ["comparison", "endpoint", "group", "time", "survival", "lower",
                                "upper", "at_risk"]
    overall = lm.query("comparison == 'all' and endpoint == 'os'")
    assert overall["time"].tolist() == [12, 24, 36]
    assert overall["at_risk"].iloc[0] == (synthetic_patients()["os_months"] >= 12).sum()


def test_a_model_that_cannot_be_fitted_is_recorded_not_fatal():
    """No deaths at all: the OS Cox model has nothing to fit; the rest still runs."""
    df = synthetic_patients().assign(os_event=0)
    res = run_plan(df, load_plan())
    assert ("cox", "all", "os") in res.errors
    assert "os" not in res.cox and "lfs" in res.cox
    assert set(res.screen["os"].errors) == set(res.plan.cox.screen.candidates)
    assert not res.table.query("analysis == 'cox' and endpoint == 'os'").shape[0]


def test_separation_is_flagged_in_the_cox_result():
    """LFS events only in the reference group: infinite HRs, warned as R warns
    ("Loglik converged before variable 4; coefficient may be infinite."), naming the term."""
    df = synthetic_patients()
    df.loc[df["tox_group"] != "none", "lfs_event"] = 0
    res = run_plan(df, load_plan())
    assert any("(tox_group:grade3plus); coefficient may be infinite" in w
               for w in res.cox["lfs"].warnings)
