"""Cox, Kaplan–Meier and log-rank against R itself, to 1e-8 relative.

The reference values are tests/golden/{cox,km,km_curve,logrank}.csv, written by
tests/golden/survival_core.R (`make golden`); each file's header names the R
and survival versions and the exact R call of every model / curve id, e.g.
`coxph(Surv(time, status) ~ age + sex, data = lung2, ties = "efron")`. The
models fitted here are the ones listed in cox_models.csv / km_specs.csv.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from golden_files import dataset, read, rel_close

from analysis.cox import cox_ph
from analysis.logrank import logrank
from analysis.survival import follow_up, kaplan_meier

REL = 1e-8
REL_ZPH = 1e-6  # the tolerance for cox.zph
COX = read("cox.csv")
MODELS = read("cox_models.csv").fillna("").set_index("model")
KM = read("km.csv")
CURVES = read("km_curve.csv")
LOGRANK = read("logrank.csv")
SPECS = read("km_specs.csv").fillna("").set_index("spec")


def _fit(model: str):
    m = MODELS.loc[model]
    factors = dict(f.split("=") for f in m["factors"].split()) if m["factors"] else {}
    return cox_ph(dataset(m["data"]), m["time"], m["status"], m["covariates"].split(), factors,
                  ties=m["ties"], strata=m["strata"] or None)


@pytest.mark.parametrize("model", MODELS.index.tolist())
def test_cox_matches_r(model):
    res = _fit(model)
    want = COX[COX.model == model]
    got_terms = res.summary.set_index("term")
    model_level = {"n": res.n, "events": res.events, "loglik_null": res.log_likelihood_null,
                   "loglik": res.log_likelihood, "lr": res.lr_chi2, "wald": res.wald_chi2,
                   "score": res.score_chi2, "df": res.lr_dof, "concordance": res.concordance,
                   "concordance_se": res.concordance_se}
    factors = res.factors.set_index("variable")
    bad = []
    for r in want.itertuples():
        if r.quantity.startswith("factor_"):
            got = factors.loc[r.term, r.quantity.removeprefix("factor_") + "_chi2"]
        elif r.term == "" or pd.isna(r.term):
            got = model_level[r.quantity]
        else:
            got = got_terms.loc[r.term, r.quantity]
        if not rel_close(got, r.value, REL):
            bad.append(f"{r.term or 'model'} {r.quantity}: carpool {got!r}, R {r.value!r}")
    assert not bad, "\n".join(bad)
    assert set(got_terms.index) == set(want.term[~want.quantity.str.startswith("factor_")]
                                       .dropna()) - {""}


def test_r_reports_aliased_terms_as_na():
    """R: coef(coxph(Surv(time, status) ~ age + one + sex, lung2)) has one = NA; so
    does age_sex = age + sex in ~ age + sex + age_sex (the later column of a collinear set)."""
    assert _fit("lung_constant").aliased == ("one",)
    assert _fit("lung_collinear").aliased == ("age_sex",)
    s = _fit("lung_collinear").summary.set_index("term")
    assert np.isnan(s.loc["age_sex", ["coef", "se", "hr", "p_value"]].astype(float)).all()


@pytest.mark.parametrize("spec", [s for s in SPECS.index if not SPECS.loc[s, "strata"]])
def test_kaplan_meier_matches_r(spec):
    s = SPECS.loc[spec]
    data = dataset(s["data"])
    km = kaplan_meier(data, s["time"], s["status"], s["group"] or None)
    _compare_km(km, spec)
    if not s["group"]:
        _compare_km(follow_up(data, s["time"], s["status"]), spec + "_followup")


def _compare_km(km, spec):
    bad = []
    summ = km.summary.set_index("group")
    for r in KM[KM.spec == spec].itertuples():
        col = {"records": "n", "events": "events", "median": "median", "0.95LCL": "lower",
               "0.95UCL": "upper"}[r.quantity]
        got = summ.loc[r.group, col]
        if not rel_close(got, r.value, REL):
            bad.append(f"{r.group} {r.quantity}: carpool {got!r}, R {r.value!r}")
    curves = CURVES[CURVES.spec == spec]
    for group, want in curves.groupby("group"):
        c = km.curves[group]
        at = c.survival_at(want["time"].to_numpy())
        idx = np.searchsorted(c.timeline, want["time"].to_numpy())
        assert np.array_equal(c.timeline[idx], want["time"].to_numpy()), (spec, group)
        for name, got, exp in (("surv", at["survival"], want["surv"]),
                               ("lower", at["lower"], want["lower"]),
                               ("upper", at["upper"], want["upper"]),
                               ("n_risk", c.at_risk[idx], want["n_risk"]),
                               ("n_event", c.events[idx], want["n_event"]),
                               ("n_censor", c.censored[idx], want["n_censor"])):
            for t, g, e in zip(want["time"], np.asarray(got, float), np.asarray(exp, float),
                               strict=True):
                if not rel_close(g, e, REL):
                    bad.append(f"{group} t={t} {name}: carpool {g!r}, R {e!r}")
    assert not bad, "\n".join(bad[:20])


@pytest.mark.parametrize("spec", [s for s in SPECS.index if SPECS.loc[s, "group"]])
def test_logrank_matches_r(spec):
    s = SPECS.loc[spec]
    res = logrank(dataset(s["data"]), s["time"], s["status"], s["group"], s["strata"] or None)
    want = LOGRANK[LOGRANK.spec == spec]
    summ = res.summary.set_index("group")
    bad = []
    for r in want.itertuples():
        if r.group == "" or pd.isna(r.group):
            got = {"chisq": res.statistic, "df": res.dof, "p_value": res.p_value}[r.quantity]
        elif r.quantity.startswith("var:"):
            got = res.variance.loc[r.group, r.quantity[4:]]
        else:
            got = summ.loc[r.group, r.quantity]
        if not rel_close(got, r.value, REL):
            bad.append(f"{r.group} {r.quantity}: carpool {got!r}, R {r.value!r}")
    assert not bad, "\n".join(bad)


ZPH = read("cox_zph.csv")


@pytest.mark.parametrize("model", sorted(set(ZPH.model)))
def test_cox_zph_matches_r(model):
    """R: cox.zph(fit) (transform = "km", terms = TRUE, global = TRUE), per term and GLOBAL."""
    res = _fit(model)
    got = res.ph_test.set_index("term")
    want = ZPH[ZPH.model == model]
    assert set(got.index) == set(want.term), (sorted(got.index), sorted(want.term))
    bad = [f"{r.term} {q}: carpool {got.loc[r.term, col]!r}, R {getattr(r, q)!r}"
           for r in want.itertuples() for q, col in (("chisq", "chisq"), ("df", "df"), ("p", "p_value"))
           if not rel_close(got.loc[r.term, col], getattr(r, q), REL_ZPH)]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("model", ["lung_age_sex", "lung_ecog", "veteran", "twin_os"])
def test_scaled_schoenfeld_residuals_match_r(model):
    """R: cox.zph(fit)$y, $x (km-transformed time) and $time, in R's event order."""
    res = _fit(model).ph_residuals
    want = read("cox_zph_resid.csv")
    want = want[want.model == model]
    for term, w in want.groupby("term", sort=False):
        np.testing.assert_allclose(res["time"], w["time"], rtol=1e-12)
        np.testing.assert_allclose(res["transformed"], w["transformed"], rtol=1e-10)
        np.testing.assert_allclose(res[term], w["scaled"], rtol=REL_ZPH, err_msg=term)
