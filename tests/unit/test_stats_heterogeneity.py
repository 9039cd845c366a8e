"""Center heterogeneity against R (tests/golden/heterogeneity.R).

Per dataset (survival::veteran with celltype as the "center" and trt == 2 as the
exposure; the twin by site_id for crs_any, icans_any, steroids, tocilizumab on OS and
LFS), R computes `coxph(Surv(t, e) ~ x + strata(center))`, per-center `coxph(Surv(t, e)
~ x)` (skipping a center where coxph warns of an infinite coefficient), `survdiff(Surv(t,
e) ~ x + strata(center))`, `metafor::rma(yi, vi, method = "FE" | "DL" | "REML")` on the
per-center log HRs and `anova(fit0, fit1)` for center × exposure. Tolerance 1e-8
relative (Cox, log-rank, pooling; R's coxph and rma fitted to convergence, see the
script), except the interaction p at 1e-6: that model keeps R's default coxph stopping
rule (1e-9 relative change in log-likelihood), because with an infinite interaction
term a tighter rule makes R drop the term and change the df.
"""
from __future__ import annotations

import pandas as pd
import pytest
from golden_files import read as read_golden
from golden_files import read_twin as twin

from analysis.heterogeneity import center_heterogeneity
from analysis.meta import pool

TOL = 1e-8
COX, LOGRANK, META = (read_golden(f) for f in ("hetero_cox.csv", "hetero_logrank.csv",
                                                "hetero_meta.csv"))
DATA = {"veteran": read_golden("data_veteran.csv").assign(trt2=lambda d: (d.trt == 2).astype(float)),
        "twin": twin()}
EVENT = {"time": "status", "os_months": "os_event", "lfs_months": "lfs_event"}
CENTER = {"veteran": "celltype", "twin": "site_id"}
CASES = sorted(set(zip(COX.dataset, COX.duration, COX.exposure, strict=True)))


@pytest.fixture(scope="module", params=CASES, ids=["-".join(c) for c in CASES])
def case(request):
    ds, t, x = request.param
    res = center_heterogeneity(DATA[ds], t, EVENT[t], x, CENTER[ds])
    sel = lambda g: g[(g.dataset == ds) & (g.duration == t) & (g.exposure == x)]  # noqa: E731
    return res, sel(COX), sel(LOGRANK).iloc[0], sel(META)


def test_stratified_cox_matches_coxph_strata(case):
    res, cox, _, _ = case
    gold = cox[cox.model == "stratified"].iloc[0]
    s = res.stratified.summary.iloc[0]
    assert s["coef"] == pytest.approx(gold.coef, rel=TOL)
    assert s["se"] == pytest.approx(gold.se, rel=TOL)
    assert s["p_value"] == pytest.approx(gold.p_value, rel=TOL)
    assert res.stratified.log_likelihood == pytest.approx(gold.loglik, rel=TOL)


def test_stratified_logrank_matches_survdiff_strata(case):
    res, _, lr, _ = case
    assert res.logrank.statistic == pytest.approx(lr.chisq, rel=TOL)
    assert res.logrank.dof == lr.df
    assert res.logrank.p_value == pytest.approx(lr.p_value, rel=TOL)


def test_per_center_hrs_and_estimability_match_r(case):
    res, cox, _, _ = case
    gold = cox[cox.model.str.startswith("center:")].assign(
        center=lambda g: g.model.str.split(":", n=1).str[1]).set_index("center")
    ours = res.per_center.set_index("center")
    assert set(ours.index[ours.estimable]) == set(gold.index)
    for c, g in gold.iterrows():
        for col in ("coef", "se", "p_value"):
            assert ours.loc[c, col] == pytest.approx(g[col], rel=TOL), (c, col)
    assert (ours.loc[~ours.estimable, "note"] != "").all()


def test_pooling_matches_metafor_rma(case):
    res, _, _, meta = case
    assert res.pooled.k == meta.k.iloc[0]
    assert res.pooled.q == pytest.approx(meta.q.iloc[0], rel=TOL)
    assert res.pooled.q_p == pytest.approx(meta.q_p.iloc[0], rel=TOL)
    for row in meta.itertuples():
        ours = res.pooled.row(row.method)
        for col in ("estimate", "se", "p_value", "lower", "upper", "h2"):
            assert ours[col] == pytest.approx(getattr(row, col), rel=TOL), (row.method, col)
        assert ours["tau2"] == pytest.approx(row.tau2, rel=TOL, abs=1e-10)
        assert ours["i2"] == pytest.approx(row.i2, rel=TOL, abs=1e-8)


def test_interaction_lr_test_matches_anova(case):
    res, cox, _, _ = case
    gold = cox[cox.model == "interaction"].iloc[0]
    assert res.interaction_dof == gold.df
    assert res.interaction_p == pytest.approx(gold.p_value, rel=1e-6)


def test_dl_tau2_is_floored_at_zero():
    # Q < k - 1: the moment estimator is negative; metafor (and we) report 0
    res = pool([0.10, 0.11, 0.09], [0.04, 0.05, 0.06])
    assert res.q < 2
    assert res.row("DL")["tau2"] == 0.0 and res.row("REML")["tau2"] == 0.0


def test_non_binary_exposure_is_a_clear_error():
    df = DATA["twin"]
    with pytest.raises(ValueError, match="column 'tox_group': the exposure must be binary"):
        center_heterogeneity(df, "os_months", "os_event", "tox_group", "site_id")


def test_a_center_with_one_exposure_level_is_named_not_pooled():
    df = DATA["twin"].copy()
    df.loc[df.site_id == "center_d", "steroids"] = True
    res = center_heterogeneity(df, "os_months", "os_event", "steroids", "site_id")
    row = res.per_center.set_index("center").loc["center_d"]
    assert not row.estimable and "one exposure level only" in row.note
    assert res.pooled.k == 3
    assert isinstance(res.summary, pd.DataFrame) and (res.summary.kind == "pooled").sum() == 3
