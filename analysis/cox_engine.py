"""Cox proportional-hazards fit by Newton–Raphson to full convergence, as R `coxph`.

`fit_cox(x, time, status, strata, ties)` works on arrays (no formulas, no
DataFrames) and follows R's `coxph.fit` / coxfit6.c:

* covariates are centred (and scaled by 1/mean|x - mean|) before fitting;
  the likelihood is unchanged and the coefficients are scaled back;
* a column that is constant or a linear combination of earlier columns is
  found by R's `cholesky2` rule (pivot < max diagonal · eps^0.75 on the
  information at the start) and dropped: its coefficient is NaN, as R's NA;
* Newton–Raphson from beta = 0 with step halving when the log-likelihood
  falls, as R; but where R stops once the relative change in log-likelihood
  is below 1e-9, this keeps stepping until the step no longer changes the
  coefficients (≤ 1e-13 relative) or the log-likelihood stops rising, so the
  estimate is the maximiser to machine precision, not R's last iterate;
* tests as `summary(coxph)`: likelihood ratio 2(l(b) - l(0)), Wald b'V⁻¹b,
  score U(0)'I(0)⁻¹U(0) (all on the number of non-dropped terms); the
  variance is I(b)⁻¹.

The likelihood pieces come from `analysis.cox_aggregate` (risk-set sums,
combined); a federated fit can drive `newton` with its own aggregate function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from scipy.stats import chi2

from analysis.cox_aggregate import combine, event_times, risk_set_sums

R_EPS = 1e-9                           # coxph.control(eps)
TOLER_CHOL = np.finfo(float).eps ** 0.75  # coxph.control(toler.chol)
TOLER_INF = np.sqrt(R_EPS)              # coxph.control(toler.inf)
MAX_ITER = 100
#: LikelihoodFn(beta) -> (loglik, gradient, information)
LikelihoodFn = Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]]


@dataclass(frozen=True, eq=False)
class CoxFit:
    """A fitted model, on the original covariate scale.

    `coef`, `se` (p,), `var` (p, p): NaN for dropped (`aliased`) columns.
    `loglik` = (l(0), l(b)); `score`, `wald`, `lr` chi-squares on `df` degrees
    of freedom; `iterations`; `warnings` (e.g. an infinite coefficient).
    `linear_predictor` (n,): (x - mean)·b with the column means, as R's
    `fit$linear.predictors`.
    """

    coef: np.ndarray
    se: np.ndarray
    var: np.ndarray
    aliased: np.ndarray
    loglik: tuple[float, float]
    score: float
    wald: float
    lr: float
    df: int
    iterations: int
    linear_predictor: np.ndarray
    warnings: tuple[str, ...]

    def p_value(self, statistic: float) -> float:
        return float(chi2.sf(statistic, self.df)) if self.df else float("nan")


def aliased_columns(info: np.ndarray, toler: float = TOLER_CHOL) -> np.ndarray:
    """R's `cholesky2` rank rule: True for a column whose pivot is < max(diag)·toler.

    A port of survival's cholesky2.c (LDL' on the lower triangle, in column
    order), so the column R drops from a collinear set is the one dropped here.
    """
    a = np.array(info, dtype=float)
    n = len(a)
    top = max((a[i, i] for i in range(n)), default=0.0)
    eps = top * toler if top > 0 else toler
    singular = np.zeros(n, dtype=bool)
    for i in range(n):
        pivot = a[i, i]
        if not np.isfinite(pivot) or pivot < eps:
            singular[i] = True
            continue
        for j in range(i + 1, n):
            temp = a[j, i] / pivot
            a[j, i] = temp
            a[j, j] -= temp * temp * pivot
            a[j + 1:, j] -= temp * a[j + 1:, i]
    return singular


def newton(loglik_fn: LikelihoodFn, p: int, max_iter: int = MAX_ITER
           ) -> tuple[np.ndarray, float, np.ndarray, np.ndarray, int, bool]:
    """Maximise from beta = 0: (beta, loglik, gradient, information, iterations, converged).

    R's Newton–Raphson with step halving when the log-likelihood falls, run
    past R's stopping rule (relative change < 1e-9) until a full Newton step
    is below 1e-10 of the coefficients (the next one would be ~1e-20: beta is
    exact to machine precision), or the likelihood has been flat to rounding
    for two steps that still move beta (a monotone likelihood: the caller
    warns of an infinite coefficient).
    """
    beta = np.zeros(p)
    ll, grad, info = loglik_fn(beta)
    flat_before = False
    for it in range(1, max_iter + 1):
        step = np.linalg.solve(info, grad)
        ll_new, g_new, i_new = loglik_fn(beta + step)
        halvings = 0
        while ll_new < ll and not _flat(ll_new, ll) and halvings < 30:
            step = step / 2  # R: halve the step while the likelihood falls
            ll_new, g_new, i_new = loglik_fn(beta + step)
            halvings += 1
        # Near the maximum a Newton step moves beta by ~1e-9 while the likelihood
        # changes below rounding (it may even "fall" by 1 ulp): take the step anyway.
        flat = _flat(ll_new, ll)
        beta = beta + step
        ll, grad, info = ll_new, g_new, i_new
        if np.all(np.abs(step) <= 1e-10 * np.maximum(1.0, np.abs(beta))):
            return beta, ll, grad, info, it, True
        if flat and flat_before:  # monotone likelihood: beta runs off to infinity
            return beta, ll, grad, info, it, True
        flat_before = flat
    return beta, ll, grad, info, max_iter, False


def _flat(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-14 * max(1.0, abs(b))


def fit_cox(x, time, status, strata=None, ties: str = "efron",
            names: list[str] | None = None) -> CoxFit:
    """Fit `coxph(Surv(time, status) ~ x + strata(strata), ties = ties)`; see the module docstring.

    `names` (one per column) only makes warnings name the term.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    time = np.asarray(time, dtype=float)
    status = np.asarray(status, dtype=float)
    n, p = x.shape
    mean = x.mean(axis=0) if n else np.zeros(p)
    xc = x - mean
    spread = np.abs(xc).mean(axis=0) if n else np.ones(p)
    scale = np.where(spread > 0, 1.0 / np.where(spread > 0, spread, 1.0), 1.0)
    xs = xc * scale

    times = event_times(time, status, strata)  # where to evaluate: the same at every beta

    def lik(cols):
        return lambda b: combine([risk_set_sums(xs[:, cols], time, status, b, strata, times)], ties)

    fit = fit_likelihood(lik, p, scale, names)
    keep = np.flatnonzero(~fit.aliased)
    lp = np.zeros(n)  # R: x %*% coef - sum(coef * means), one column at a time so that
    for j in keep:     # identical rows get identical scores (a BLAS matmul need not)
        lp += x[:, j] * fit.coef[j]
    lp -= sum(fit.coef[j] * mean[j] for j in keep)
    return replace(fit, linear_predictor=lp)


def fit_likelihood(lik: Callable[[np.ndarray], LikelihoodFn], p: int, scale: np.ndarray,
                   names: list[str] | None = None) -> CoxFit:
    """The fit from a likelihood on centred, scaled columns: `lik(cols)(b)` evaluates the
    (loglik, gradient, information) of the columns `cols` at `b`, wherever the rows are
    (one data set, or sites asked in rounds: `federated.cox`). `scale` (p,) maps the scaled
    coefficients back. `linear_predictor` is left empty (it needs the rows). `names`
    (one per column) only makes warnings name the term.
    """
    ll0, u0, i0 = lik(np.arange(p))(np.zeros(p))
    aliased = aliased_columns(i0)
    keep = np.flatnonzero(~aliased)
    k = len(keep)
    u0k, i0k = u0[keep], i0[np.ix_(keep, keep)]
    score = float(u0k @ np.linalg.solve(i0k, u0k)) if k else 0.0
    warns: list[str] = []
    if k:
        b_s, ll, grad, info, iters, converged = newton(lik(keep), k)
        if not converged:
            warns.append(f"Ran out of iterations ({MAX_ITER}) and did not converge")
        var_s = np.linalg.inv(info)
        infs = np.abs(grad @ var_s)
        for j in np.flatnonzero((infs > R_EPS) & (infs > TOLER_INF * np.abs(b_s))):
            which = f" ({names[keep[j]]})" if names else ""
            warns.append(f"Loglik converged before variable {keep[j] + 1}{which}; "
                         "coefficient may be infinite.")
    else:
        b_s, ll, var_s, iters = np.zeros(0), ll0, np.zeros((0, 0)), 0
    coef = np.full(p, np.nan)
    var = np.full((p, p), np.nan)
    coef[keep] = b_s * scale[keep]
    var[np.ix_(keep, keep)] = var_s * np.outer(scale[keep], scale[keep])
    vk = var[np.ix_(keep, keep)]
    with np.errstate(over="ignore", invalid="ignore"):  # separation: a negative variance, se NaN
        wald = float(coef[keep] @ np.linalg.solve(vk, coef[keep])) if k else 0.0
        se = np.sqrt(np.diag(var))
    return CoxFit(coef=coef, se=se, var=var, aliased=aliased,
                  loglik=(float(ll0), float(ll)), score=score, wald=wald,
                  lr=float(2 * (ll - ll0)), df=k, iterations=iters, linear_predictor=np.zeros(0),
                  warnings=tuple(warns))
