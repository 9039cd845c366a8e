"""Cox proportional-hazards models (Efron ties) and the univariate screen.

The fit is lifelines' `CoxPHFitter` (Efron's method for ties, as R's `coxph`
default) with `fit_options={"precision": 1e-9}`, which brings coefficients to
R's precision (R iterates until the relative change in log-likelihood is
< 1e-9). Reported per term: coefficient, HR, SE, z, Wald p and the 95% CI of
the HR (exp(coef ± z·se), as `summary(coxph)` prints it).

A categorical covariate is expanded into 0/1 dummies against an explicit
reference level; the dummies are named `<variable>:<level>` (booleans give a
single 0/1 term named after the variable). For a multi-level factor the result
also carries its global tests, as SPSS prints a "Group" row and R's `anova`
gives: the Wald chi-square b' V^-1 b on the factor's sub-vector (k-1 df), and
the likelihood-ratio chi-square against the model refitted without the
factor on the same rows.

The univariate screen fits one model per candidate and keeps those whose
p-value is below the threshold: the term's Wald p, or the factor's global
Wald p for a multi-level factor (the SPSS convention).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter
from lifelines.exceptions import ConvergenceError, ConvergenceWarning
from scipy.stats import chi2, norm

from analysis.survival import level_name

FIT_OPTIONS = {"precision": 1e-9}
#: What a model that cannot be fitted raises (callers record it rather than crash).
FIT_ERRORS = (ConvergenceError, ValueError, np.linalg.LinAlgError)


@dataclass(frozen=True, eq=False)
class CoxResult:
    """One fitted Cox model.

    `summary`: one row per term (term, variable, coef, hr, se, z, p_value,
    hr_lower, hr_upper). `factors`: one row per multi-level factor (variable,
    dof, wald_chi2, wald_p, lr_chi2, lr_p). Model-level: n, events, n_excluded,
    log_likelihood, and the global lr/wald tests. `warnings` keeps lifelines'
    convergence warnings (e.g. complete separation: an infinite HR), first line each.
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
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class ScreenResult:
    """Univariate screen: `summary` per term with the variable's p and `selected`.

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


def _fit(data: pd.DataFrame, duration: str, event: str,
         caught: list[str] | None = None) -> CoxPHFitter:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", ConvergenceWarning)
        fitter = CoxPHFitter().fit(data, duration_col=duration, event_col=event,
                                   fit_options=FIT_OPTIONS)
    for w in seen:
        if issubclass(w.category, ConvergenceWarning):
            if caught is not None:
                caught.append(str(w.message).strip().splitlines()[0])
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return fitter


def cox_ph(df: pd.DataFrame, duration: str, event: str, covariates: Sequence[str],
           categorical: Mapping[str, str] | None = None, conf_level: float = 0.95) -> CoxResult:
    """Fit `coxph(Surv(duration, event) ~ covariates)`, complete cases only.

    Rows missing the duration, event or any covariate are excluded and counted
    in `n_excluded`.
    """
    cols = [duration, event, *covariates]
    complete = df.dropna(subset=cols)
    x, terms = design_matrix(complete, covariates, categorical)
    data = pd.concat([complete[[duration]].astype(float),
                      complete[event].astype(int).rename(event), x], axis=1)
    caught: list[str] = []
    fitter = _fit(data, duration, event, caught)
    beta = fitter.params_
    cov = fitter.variance_matrix_.loc[beta.index, beta.index]
    se = np.sqrt(np.diag(cov))
    z = float(norm.ppf(0.5 + conf_level / 2))
    term_var = {t: v for v, ts in terms.items() for t in ts}
    with np.errstate(over="ignore"):
        summary = pd.DataFrame({
            "term": beta.index, "variable": [term_var[t] for t in beta.index],
            "coef": beta.to_numpy(), "hr": np.exp(beta.to_numpy()), "se": se,
            "z": beta.to_numpy() / se,
            "p_value": fitter.summary.loc[beta.index, "p"].to_numpy(),
            "hr_lower": np.exp(beta.to_numpy() - z * se),
            "hr_upper": np.exp(beta.to_numpy() + z * se)})
    lr = fitter.log_likelihood_ratio_test()
    wald_all = _wald(beta, cov, list(beta.index))
    factors = []
    for var, names in terms.items():
        if len(names) < 2:
            continue
        w = _wald(beta, cov, names)
        rest = [c for c in x.columns if c not in names]
        ll_reduced = (_fit(data[[duration, event, *rest]], duration, event).log_likelihood_
                      if rest else fitter.log_likelihood_ - lr.test_statistic / 2)
        lr_stat = 2 * (fitter.log_likelihood_ - ll_reduced)
        factors.append({"variable": var, "dof": len(names), "wald_chi2": w,
                        "wald_p": float(chi2.sf(w, len(names))), "lr_chi2": lr_stat,
                        "lr_p": float(chi2.sf(lr_stat, len(names)))})
    return CoxResult(
        summary=summary,
        factors=pd.DataFrame(factors, columns=["variable", "dof", "wald_chi2", "wald_p",
                                               "lr_chi2", "lr_p"]),
        covariance=cov, n=len(data), events=int(data[event].sum()),
        n_excluded=len(df) - len(complete), log_likelihood=float(fitter.log_likelihood_),
        lr_chi2=float(lr.test_statistic), lr_dof=int(lr.degrees_freedom),
        lr_p=float(lr.p_value), wald_chi2=wald_all,
        wald_p=float(chi2.sf(wald_all, len(beta))), warnings=tuple(dict.fromkeys(caught)))


def _wald(beta: pd.Series, cov: pd.DataFrame, names: list[str]) -> float:
    b = beta[names].to_numpy()
    return float(b @ np.linalg.solve(cov.loc[names, names].to_numpy(), b))


def univariate_screen(df: pd.DataFrame, duration: str, event: str, candidates: Sequence[str],
                      categorical: Mapping[str, str] | None = None,
                      threshold: float = 0.1) -> ScreenResult:
    """One Cox model per candidate; keep candidates with p < `threshold`."""
    categorical = dict(categorical or {})
    rows, models, selected, errors = [], {}, [], {}
    for var in candidates:
        cat = {var: categorical[var]} if var in categorical else None
        try:
            res = cox_ph(df, duration, event, [var], cat)
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
