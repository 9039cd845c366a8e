"""Cox proportional-hazards models (Efron ties) and the univariate screen.

The fit is `analysis.cox_engine.fit_cox`: R's `coxph` algorithm (Efron's
method for ties by default, Breslow on request, optional strata) iterated to
full convergence, so coefficients, standard errors and the three global
tests agree with R to machine precision. Reported per term: coefficient, HR,
SE, z, Wald p and the 95% CI of the HR (exp(coef ± z·se), as
`summary(coxph)` prints it). Model-level: likelihood-ratio, Wald and score
tests and the concordance with its standard error (`summary(coxph)$concordance`).
A constant or collinear term is kept in the summary with NaN (R's NA) and
listed in `CoxResult.aliased`; the tests' degrees of freedom count only the
estimable terms.

A categorical covariate is expanded into 0/1 dummies against an explicit
reference level; the dummies are named `<variable>:<level>` (booleans give a
single 0/1 term named after the variable). For a multi-level factor the result
also carries its global tests, as SPSS prints a "Group" row and R's `anova`
gives: the Wald chi-square b' V^-1 b on the factor's sub-vector (k-1 df), and
the likelihood-ratio chi-square against the model refitted without the
factor on the same rows.

The univariate screen fits one model per candidate and reports, per
candidate, the p-value it was judged on: the term's Wald p, or the factor's
global Wald p for a multi-level factor (the SPSS convention), and whether it
passed the threshold (`selected`). Whether a variable is in the
multivariable model is the plan's business (its prespecified terms), not the screen's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2, norm

from analysis.concordance import concordance
from analysis.cox_engine import CoxFit, fit_cox
from analysis.cox_zph import ZphResult, cox_zph
from analysis.survinput import SurvivalInputError, complete_rows, durations, event_indicator
from analysis.survival import level_name

#: What a model that cannot be fitted raises (callers record it rather than crash).
FIT_ERRORS = (ValueError, np.linalg.LinAlgError)


@dataclass(frozen=True, eq=False)
class CoxResult:
    """One fitted Cox model.

    `summary`: one row per term (term, variable, coef, hr, se, z, p_value,
    hr_lower, hr_upper; NaN for an aliased term). `factors`: one row per
    multi-level factor (variable, dof, wald_chi2, wald_p, lr_chi2, lr_p).
    Model-level: n, events, n_excluded, log_likelihood (at the estimate) and
    log_likelihood_null (beta = 0), the global likelihood-ratio, Wald and score
    tests (on `lr_dof` degrees of freedom), the concordance and its standard
    error (R's), `aliased` (terms dropped as constant or collinear), `ties`,
    `strata` (the strata column or None), and `warnings` (e.g. complete
    separation: "coefficient may be infinite", as R warns).
    """

    summary: pd.DataFrame
    factors: pd.DataFrame
    covariance: pd.DataFrame
    n: int
    events: int
    n_excluded: int
    log_likelihood: float
    lr_chi2: float
    lr_dof: int
    lr_p: float
    wald_chi2: float
    wald_p: float
    score_chi2: float = float("nan")
    score_p: float = float("nan")
    log_likelihood_null: float = float("nan")
    concordance: float = float("nan")
    concordance_se: float = float("nan")
    aliased: tuple[str, ...] = ()
    ties: str = "efron"
    strata: str | None = None
    warnings: tuple[str, ...] = ()
    ph_test: pd.DataFrame | None = None
    ph_residuals: pd.DataFrame | None = None


@dataclass(frozen=True, eq=False)
class ScreenResult:
    """Univariate screen: `summary` per term with the variable's p and `selected`.

    `selected` / `selected` column: the candidates whose p < `threshold`, i.e.
    that passed the screen. Whether a candidate enters a multivariable model is
    the caller's decision (the study plan prespecifies its terms), not implied.
    `errors` names candidates whose model could not be fitted, with the reason.
    """

    summary: pd.DataFrame
    selected: tuple[str, ...]
    threshold: float
    models: dict[str, CoxResult]
    errors: dict[str, str]


def design_matrix(df: pd.DataFrame, covariates: Sequence[str],
                  categorical: Mapping[str, str] | None = None) -> tuple[pd.DataFrame, dict]:
    """0/1-encode `covariates`; returns (matrix, {variable: [term, ...]}).

    `categorical` maps a column to its reference level (compared as a label:
    booleans are "yes"/"no"). Other bool columns become one 0/1 term, numeric
    columns enter as they are.
    """
    categorical = dict(categorical or {})
    parts, terms = [], {}
    for var in covariates:
        col = df[var]
        if var in categorical:
            labels = col.map(level_name, na_action="ignore")
            ref = str(categorical[var])
            if ref not in set(labels.dropna()):
                raise ValueError(f"reference level {ref!r} of {var!r} not found in the data")
            levels = [lv for lv in sorted(labels.dropna().unique()) if lv != ref]
            names = [f"{var}:{lv}" for lv in levels]
            block = pd.DataFrame({n: (labels == lv).astype(float).where(labels.notna())
                                  for n, lv in zip(names, levels, strict=True)}, index=df.index)
            parts.append(block)
            terms[var] = names
        else:
            if col.dtype == object and not col.dropna().map(
                    lambda v: isinstance(v, (bool, np.bool_))).all():
                raise ValueError(f"column {var!r} is not numeric or bool; "
                                 "declare it categorical with a reference level")
            parts.append(col.astype(float).rename(var).to_frame())
            terms[var] = [var]
    return pd.concat(parts, axis=1), terms


def cox_ph(df: pd.DataFrame, duration: str, event: str, covariates: Sequence[str],
           categorical: Mapping[str, str] | None = None, conf_level: float = 0.95,
           ties: str = "efron", strata: str | None = None,
           status_coding: tuple | None = None, diagnostics: bool = True) -> CoxResult:
    """Fit `coxph(Surv(duration, event) ~ covariates [+ strata(strata)], ties = ties)`.

    Complete cases only: rows missing the duration, event, strata or any
    covariate are excluded and counted in `n_excluded`. `event` must be 0/1 or
    boolean unless `status_coding=(censored, event)` names the coding.
    Raises `SurvivalInputError` (a ValueError) for unusable input.
    `diagnostics=False` skips the concordance (NaN) and cox.zph (`ph_test` None): for
    the many auxiliary fits (the univariate screen, per-center models) nobody reads them.
    """
    cols = [duration, event, *covariates, *([strata] if strata else [])]
    complete, n_excl = complete_rows(df, cols, f"Cox model for {duration!r}")
    x, terms = design_matrix(complete, covariates, categorical)
    time = durations(complete[duration], duration).to_numpy()
    status = event_indicator(complete[event], event, status_coding).to_numpy()
    if status.sum() == 0:
        raise SurvivalInputError(f"column {event!r}: no events among the {len(complete)} "
                                 "complete rows: a Cox model cannot be fitted")
    strata_codes = (complete[strata].map(level_name).to_numpy() if strata else None)
    xm = x.to_numpy(dtype=float)
    names = list(x.columns)
    fit = fit_cox(xm, time, status, strata_codes, ties, names)

    def refit(cols: list[int]) -> float:
        return fit_cox(xm[:, cols], time, status, strata_codes, ties).loglik[1]

    if not diagnostics:
        return cox_result(fit, names, terms, refit, n=len(complete), events=int(status.sum()),
                          n_excluded=n_excl, conf_level=conf_level, ties=ties, strata=strata)
    conc = concordance(time, status, fit.linear_predictor, strata_codes)
    zph = _ph_test(xm, time, status, fit, terms, names, strata_codes, ties)
    return cox_result(fit, names, terms, refit, n=len(complete), events=int(status.sum()),
                      n_excluded=n_excl, conf_level=conf_level, ties=ties, strata=strata,
                      concordance=(conc.concordance, conc.se), ph=zph)


def cox_result(fit: CoxFit, names: list[str], terms: dict[str, list[str]],
               refit: Callable[[list[int]], float], *, n: int, events: int, n_excluded: int,
               conf_level: float = 0.95, ties: str = "efron", strata: str | None = None,
               concordance: tuple[float, float] = (float("nan"), float("nan")),
               ph: ZphResult | None = None) -> CoxResult:
    """A `CoxResult` from a fit, however it was obtained (one data set, or a federated fit).

    `names`: the design's columns; `terms`: {variable: [column, ...]}; `refit(cols)`: the
    maximised log-likelihood of the model on those column indices (a factor's LR test);
    `ph`: the cox.zph result when the rows were at hand (None: not computed).
    """
    beta = pd.Series(fit.coef, index=names)
    cov = pd.DataFrame(fit.var, index=names, columns=names)
    z = float(norm.ppf(0.5 + conf_level / 2))
    term_var = {t: v for v, ts in terms.items() for t in ts}
    with np.errstate(over="ignore", invalid="ignore"):
        zstat = fit.coef / fit.se
        summary = pd.DataFrame({
            "term": names, "variable": [term_var[t] for t in names],
            "coef": fit.coef, "hr": np.exp(fit.coef), "se": fit.se, "z": zstat,
            "p_value": 2 * norm.sf(np.abs(zstat)),
            "hr_lower": np.exp(fit.coef - z * fit.se),
            "hr_upper": np.exp(fit.coef + z * fit.se)})
    factors = []
    for var, tnames in terms.items():
        if len(tnames) < 2:
            continue
        est = [t for t in tnames if np.isfinite(beta[t])]
        w = _wald(beta, cov, est) if est else float("nan")
        rest = [i for i, c in enumerate(names) if c not in tnames]
        ll_reduced = refit(rest) if rest else fit.loglik[0]
        lr_stat = 2 * (fit.loglik[1] - ll_reduced)
        dof = len(est)
        factors.append({"variable": var, "dof": dof, "wald_chi2": w,
                        "wald_p": float(chi2.sf(w, dof)) if dof else float("nan"),
                        "lr_chi2": lr_stat,
                        "lr_p": float(chi2.sf(lr_stat, dof)) if dof else float("nan")})
    return CoxResult(
        summary=summary,
        factors=pd.DataFrame(factors, columns=["variable", "dof", "wald_chi2", "wald_p",
                                               "lr_chi2", "lr_p"]),
        covariance=cov, n=n, events=events, n_excluded=n_excluded,
        log_likelihood=fit.loglik[1], log_likelihood_null=fit.loglik[0],
        lr_chi2=fit.lr, lr_dof=fit.df, lr_p=fit.p_value(fit.lr),
        wald_chi2=fit.wald, wald_p=fit.p_value(fit.wald),
        score_chi2=fit.score, score_p=fit.p_value(fit.score),
        concordance=concordance[0], concordance_se=concordance[1],
        aliased=tuple(n for n, a in zip(names, fit.aliased, strict=True) if a),
        ties=ties, strata=strata, warnings=fit.warnings,
        ph_test=ph.table if ph else None, ph_residuals=ph.residuals if ph else None)


def _ph_test(x, time, status, fit, terms, names, strata_codes, ties) -> ZphResult | None:
    """cox.zph on the estimable columns, a factor's columns as one term (R: terms = TRUE)."""
    keep = [i for i, a in enumerate(fit.aliased) if not a]
    if not keep:
        return None
    pos = {names[i]: k for k, i in enumerate(keep)}
    zterms = {var: [pos[t] for t in ts if t in pos] for var, ts in terms.items()}
    zterms = {v: cols for v, cols in zterms.items() if cols}
    try:
        return cox_zph(x[:, keep], time, status, fit.coef[keep], zterms, strata_codes, ties)
    except np.linalg.LinAlgError:
        return None


def _wald(beta: pd.Series, cov: pd.DataFrame, names: list[str]) -> float:
    b = beta[names].to_numpy()
    return float(b @ np.linalg.solve(cov.loc[names, names].to_numpy(), b))


def univariate_screen(df: pd.DataFrame, duration: str, event: str, candidates: Sequence[str],
                      categorical: Mapping[str, str] | None = None,
                      threshold: float = 0.1) -> ScreenResult:
    """One Cox model per candidate; keep candidates with p < `threshold`. The models are
    fitted without diagnostics (no concordance, no cox.zph: the screen reports p only)."""
    return screen_models(lambda var, cat: cox_ph(df, duration, event, [var], cat, diagnostics=False),
                         candidates, categorical, threshold)


def screen_models(fit_one: Callable[[str, dict | None], CoxResult], candidates: Sequence[str],
                  categorical: Mapping[str, str] | None = None,
                  threshold: float = 0.1) -> ScreenResult:
    """The screen over any fitting function `fit_one(variable, {variable: reference} | None)`."""
    categorical = dict(categorical or {})
    rows, models, selected, errors = [], {}, [], {}
    for var in candidates:
        cat = {var: categorical[var]} if var in categorical else None
        try:
            res = fit_one(var, cat)
        except FIT_ERRORS as exc:
            errors[var] = f"{type(exc).__name__}: {exc}"
            continue
        models[var] = res
        var_p = (float(res.factors["wald_p"].iloc[0]) if len(res.factors)
                 else float(res.summary["p_value"].iloc[0]))
        if var_p < threshold:
            selected.append(var)
        for rec in res.summary.to_dict("records"):
            rows.append({**rec, "variable_p": var_p, "selected": var_p < threshold,
                         "n": res.n, "events": res.events})
    return ScreenResult(summary=pd.DataFrame(rows), selected=tuple(selected),
                        threshold=threshold, models=models, errors=errors)
