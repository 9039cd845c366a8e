"""Cox models and the univariate screen (analysis/cox.py) against R `coxph` on lung.

R prints coefficients to 6 decimals and p-values to 3-4 significant digits; the
tolerance is 1e-4 relative, or half a unit of R's last printed digit where that
is looser (noted per assertion).
"""

import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_lung
from scipy.stats import chi2

from analysis.cox import cox_ph, design_matrix, univariate_screen


@pytest.fixture(scope="module")
def lung():
    df = load_lung()
    df["ecog"] = df["ph.ecog"].map({0: "0", 1: "1", 2: "2", 3: "3"})
    return df


def test_age_sex_model_matches_r(lung):
    """R: summary(coxph(Surv(time, status) ~ age + sex, data = lung))

            coef exp(coef) se(coef)      z Pr(>|z|)
        age  0.017045  1.017191 0.009223  1.848  0.06459
        sex -0.513219  0.598566 0.167458 -3.065  0.00218
        n= 228, number of events= 165
        Likelihood ratio test= 14.12  on 2 df,   p=0.0008574
        Wald test            = 13.47  on 2 df,   p=0.001
    """
    res = cox_ph(lung, "time", "status", ["age", "sex"])
    s = res.summary.set_index("term")
    assert s.loc["age", "coef"] == pytest.approx(0.017045, rel=1e-4)
    assert s.loc["sex", "coef"] == pytest.approx(-0.513219, rel=1e-4)
    assert s.loc["age", "hr"] == pytest.approx(1.017191, rel=1e-4)
    assert s.loc["sex", "hr"] == pytest.approx(0.598566, rel=1e-4)
    assert s.loc["age", "se"] == pytest.approx(0.009223, rel=1e-4)
    assert s.loc["sex", "se"] == pytest.approx(0.167458, rel=1e-4)
    assert s.loc["age", "p_value"] == pytest.approx(0.06459, rel=1e-4)
    assert s.loc["sex", "p_value"] == pytest.approx(0.00218, abs=5e-6)  # 3 digits printed
    assert (res.n, res.events, res.n_excluded) == (228, 165, 0)
    assert res.lr_chi2 == pytest.approx(14.12, abs=5e-3)  # 2 decimals printed
    assert res.lr_p == pytest.approx(0.0008574, rel=1e-4)
    assert res.wald_chi2 == pytest.approx(13.47, abs=5e-3)  # 2 decimals printed


def test_hr_ci_is_exp_coef_plus_minus_z_se(lung):
    """R's "lower .95 / upper .95" columns are exp(coef ± qnorm(0.975) se): from R's own
    printed coef and se, age 0.9990-1.0357 and sex 0.4311-0.8311."""
    s = cox_ph(lung, "time", "status", ["age", "sex"]).summary.set_index("term")
    z = 1.959963984540054
    for term, coef, se in (("age", 0.017045, 0.009223), ("sex", -0.513219, 0.167458)):
        assert s.loc[term, "hr_lower"] == pytest.approx(np.exp(coef - z * se), rel=1e-4)
        assert s.loc[term, "hr_upper"] == pytest.approx(np.exp(coef + z * se), rel=1e-4)
    age_ci = s.loc["age", ["hr_lower", "hr_upper"]].astype(float).round(4).tolist()
    assert age_ci == [0.9990, 1.0357]


def test_univariate_models_match_r(lung):
    """R: coxph(Surv(time, status) ~ sex, data = lung)
            coef exp(coef) se(coef)      z       p
        sex -0.5310    0.5880   0.1672 -3.176 0.00149
    R: coxph(Surv(time, status) ~ age, data = lung)
        age 0.018720  1.018897 0.009199 2.035 0.0419
    (4 significant digits printed: tolerance half a unit of the last digit.)
    """
    scr = univariate_screen(lung, "time", "status", ["age", "sex", "wt.loss"], threshold=0.1)
    s = scr.summary.set_index("term")
    assert s.loc["sex", "coef"] == pytest.approx(-0.5310, abs=5e-5)
    assert s.loc["sex", "p_value"] == pytest.approx(0.00149, abs=5e-6)
    assert s.loc["age", "coef"] == pytest.approx(0.018720, abs=5e-7)
    assert s.loc["age", "se"] == pytest.approx(0.009199, abs=5e-7)
    assert s.loc["age", "p_value"] == pytest.approx(0.0419, abs=5e-5)
    assert scr.selected == ("age", "sex")
    assert s.loc["wt.loss", "n"] == 214  # its own complete cases


def test_factor_is_expanded_against_its_reference(lung):
    x, terms = design_matrix(lung.dropna(subset=["ecog"]), ["ecog", "sex"], {"ecog": "0"})
    assert terms == {"ecog": ["ecog:1", "ecog:2", "ecog:3"], "sex": ["sex"]}
    assert x.loc[lung["ecog"] == "0", terms["ecog"]].to_numpy().sum() == 0
    with pytest.raises(ValueError, match="reference level '9'"):
        design_matrix(lung, ["ecog"], {"ecog": "9"})


def test_factor_global_wald_and_lr(lung):
    """Global tests of a 3-df factor: Wald from the coefficient sub-vector and its
    covariance; LR from the model refitted without the factor on the same rows
    (R: anova(coxph(~ age + ecog), coxph(~ age)) on the ecog-complete rows)."""
    full = cox_ph(lung, "time", "status", ["age", "ecog"], {"ecog": "0"})
    f = full.factors.set_index("variable").loc["ecog"]
    names = ["ecog:1", "ecog:2", "ecog:3"]
    b = full.summary.set_index("term").loc[names, "coef"].to_numpy()
    v = full.covariance.loc[names, names].to_numpy()
    assert f["wald_chi2"] == pytest.approx(b @ np.linalg.inv(v) @ b, rel=1e-10)
    assert f["wald_p"] == pytest.approx(chi2.sf(f["wald_chi2"], 3), rel=1e-10)
    reduced = cox_ph(lung.dropna(subset=["ecog"]), "time", "status", ["age"])
    assert f["lr_chi2"] == pytest.approx(full.lr_chi2 - reduced.lr_chi2, rel=1e-6)
    assert full.n == 227 and full.n_excluded == 1


def test_single_factor_lr_equals_model_lr(lung):
    res = cox_ph(lung, "time", "status", ["ecog"], {"ecog": "0"})
    f = res.factors.iloc[0]
    assert f["lr_chi2"] == pytest.approx(res.lr_chi2, rel=1e-10)
    assert f["wald_chi2"] == pytest.approx(res.wald_chi2, rel=1e-10)


def test_screen_uses_the_factor_global_p(lung):
    scr = univariate_screen(lung, "time", "status", ["ecog"], {"ecog": "0"})
    glob = scr.models["ecog"].factors["wald_p"].iloc[0]
    assert (scr.summary["variable_p"] == glob).all() and scr.selected == ("ecog",)


def test_bool_covariate_is_one_term():
    df = pd.DataFrame({"t": [5, 6, 7, 8, 9, 10, 11, 12], "e": [1, 1, 0, 1, 1, 0, 1, 1],
                       "steroids": [True, False, True, False, True, True, False, False]})
    res = cox_ph(df, "t", "e", ["steroids"])
    assert res.summary["term"].tolist() == ["steroids"] and res.factors.empty


def test_a_fit_without_diagnostics_is_the_same_fit(lung):
    """`diagnostics=False` (the screen's and the per-center fits) skips only the concordance
    and cox.zph: every coefficient, test and log-likelihood is the same, bit for bit."""
    full = cox_ph(lung, "time", "status", ["age", "ecog"], {"ecog": "0"})
    lean = cox_ph(lung, "time", "status", ["age", "ecog"], {"ecog": "0"}, diagnostics=False)
    pd.testing.assert_frame_equal(lean.summary, full.summary, check_exact=True)
    pd.testing.assert_frame_equal(lean.factors, full.factors, check_exact=True)
    assert (lean.log_likelihood, lean.lr_chi2, lean.wald_chi2, lean.score_chi2) == (
        full.log_likelihood, full.lr_chi2, full.wald_chi2, full.score_chi2)
    assert full.ph_test is not None and np.isfinite(full.concordance)
    assert lean.ph_test is None and lean.ph_residuals is None and np.isnan(lean.concordance)


def test_screen_models_skip_the_diagnostics(lung):
    """The screen reports each candidate's p only: its models compute no cox.zph or
    concordance (41 fits in the demo plan, most of them auxiliary)."""
    res = univariate_screen(lung, "time", "status", ["age", "sex"])
    assert all(m.ph_test is None and np.isnan(m.concordance) for m in res.models.values())
