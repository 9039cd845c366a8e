"""Cumulative incidence, Gray's test and Fine–Gray against R cmprsk (tests/golden/competing.R).

R: `cuminc(time, status, group [, strata] [, rho])` on survival::mgus2 (status 1 = PCM,
2 = death, 0 censored) and on the twin's CR patients (lfs_months, lfs_cause: relapse vs
nrm, cencode "censored"); `crr(time, status, cov1, failcode, cencode)`. The CI is the
log(-log) band applied to cuminc's `var` (cuminc prints none). Tolerance 1e-6 relative
(the issue's bound for CIF, Gray and Fine–Gray); the implementation agrees to ~1e-13.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from golden_files import read as read_golden
from golden_files import read_twin as twin

from analysis.competing import cumulative_incidence
from analysis.finegray import fine_gray

TOL = 1e-6
MGUS = read_golden("data_mgus2.csv")
TWIN = twin().loc[lambda d: d["lfs_cause"].notna()].assign(
    bm_blasts_ge20=lambda d: d["bm_blasts_pct"] >= 20)
TWIN_CODES = dict(event="relapse", competing=["nrm"], censored="censored")
CURVES, TESTS, CRR = (read_golden(f) for f in ("cuminc_curves.csv", "cuminc_tests.csv",
                                               "crr.csv"))


def _fit(dataset: str, call: str):
    if dataset == "mgus2":
        group = call.split("|")[0]
        return cumulative_incidence(
            MGUS, "time", "status", group, event=1, competing=[2], censored=0,
            strata="agegroup" if "strata" in call else None, rho=1.0 if "rho=1" in call else 0.0)
    return cumulative_incidence(TWIN, "lfs_months", "lfs_cause",
                                None if call == "all" else call, **TWIN_CODES)


def _curve_key(dataset, call, curve):
    *group, cause = curve.split(" ")
    group = " ".join(group)
    if call == "all":  # cuminc names the single group "1"
        group = "all"
    elif call == "crs_any":
        group = {"1": "yes", "0": "no"}[group]
    return group, cause


@pytest.mark.parametrize(("dataset", "call"), sorted(set(zip(CURVES.dataset, CURVES.call, strict=True))))
def test_cif_estimate_variance_and_band_match_cuminc(dataset, call):
    res = _fit(dataset, call)
    gold = CURVES[(CURVES.dataset == dataset) & (CURVES.call == call)]
    for curve, g in gold.groupby("curve"):
        group, cause = _curve_key(dataset, call, curve)
        ours = res.at(g["time"].to_numpy())
        ours = ours[(ours.group == group) & (ours.cause == cause)]
        assert len(ours) == len(g), curve
        for col in ("estimate", "variance", "lower", "upper"):
            np.testing.assert_allclose(ours[col].to_numpy(), g[col].to_numpy(), rtol=TOL,
                                       atol=1e-12, equal_nan=True, err_msg=f"{curve} {col}")


@pytest.mark.parametrize(("dataset", "call"), sorted(set(zip(TESTS.dataset, TESTS.call, strict=True))))
def test_gray_test_matches_cuminc_tests(dataset, call):
    res = _fit(dataset, call).tests.set_index("cause")
    for row in TESTS[(TESTS.dataset == dataset) & (TESTS.call == call)].itertuples():
        ours = res.loc[str(row.cause)]
        assert ours["statistic"] == pytest.approx(row.statistic, rel=TOL)
        assert ours["p_value"] == pytest.approx(row.p_value, rel=TOL)
        assert ours["dof"] == row.dof and ours["test"] == "gray"


def _fine_gray(dataset: str, call: str):
    if dataset == "mgus2":
        ev = int(call[-1])
        return fine_gray(MGUS.assign(male=(MGUS.sex == "M").astype(float)), "time", "status",
                         ["age", "male"], event=ev, competing=[3 - ev], censored=0)
    ev = call.split("=")[1].split("|")[0]
    covs = (["crs_any"] if "crs_any" in call
            else ["bm_blasts_ge20", "steroids", "tocilizumab", "tox_group"])
    return fine_gray(TWIN, "lfs_months", "lfs_cause", covs, {"tox_group": "none"}, event=ev,
                     competing=[{"relapse": "nrm", "nrm": "relapse"}[ev]], censored="censored")


@pytest.mark.parametrize(("dataset", "call"), sorted(set(zip(CRR.dataset, CRR.call, strict=True))))
def test_fine_gray_matches_crr(dataset, call):
    res = _fine_gray(dataset, call)
    s = res.summary.set_index("term")
    gold = CRR[(CRR.dataset == dataset) & (CRR.call == call)]
    assert res.converged == bool(gold["converged"].iloc[0])
    assert res.log_pseudo_likelihood == pytest.approx(gold["loglik"].iloc[0], rel=TOL)
    for row in gold.itertuples():
        for col in ("coef", "se", "p_value"):
            assert s.loc[row.term, col] == pytest.approx(getattr(row, col), rel=TOL), (row.term, col)


def test_cif_is_deterministic_with_ties():
    df = pd.DataFrame({"t": [1, 1, 1, 2, 2, 3, 4, 4], "s": [1, 2, 0, 1, 1, 2, 0, 1]})
    a = cumulative_incidence(df, "t", "s").curves
    b = cumulative_incidence(df.iloc[::-1], "t", "s").curves
    pd.testing.assert_frame_equal(a, b)
    # at t=1: 8 at risk, one cause-1 event: F = 1/8
    assert a.loc[(a.cause == "1") & (a.time == 1), "estimate"].item() == pytest.approx(1 / 8)


def test_unknown_status_code_is_a_clear_error():
    df = pd.DataFrame({"t": [1.0, 2.0], "cause": ["relapse", "relpase"]})
    with pytest.raises(ValueError, match=r"column 'cause', row 1: status 'relpase' is none of"):
        cumulative_incidence(df, "t", "cause", event="relapse", competing=["nrm"],
                             censored="censored")


def test_empty_input_is_a_clear_error():
    with pytest.raises(ValueError, match="no rows"):
        cumulative_incidence(pd.DataFrame({"t": [], "s": []}), "t", "s")
    with pytest.raises(ValueError, match="no rows"):
        fine_gray(pd.DataFrame({"t": [], "s": [], "x": []}), "t", "s", ["x"])
