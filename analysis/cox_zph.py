"""Proportional-hazards test, as R `cox.zph(fit)` (survival >= 3.0: the score test).

For a fitted model with coefficients b, the test asks whether adding the
time-varying terms g(t)·x to the model would improve it: a score test at
(b, 0) of the expanded model. With U_t and I_t the score and information
contributions of event time t (Efron or Breslow, as the fit), the expanded
score is (0, Σ g_t U_t) and its information [[Σ I_t, Σ g_t I_t],
[Σ g_t I_t, Σ g_t² I_t]]. Per term (a factor's columns together, R's
`terms = TRUE`) chi-square = u' I⁻¹ u on the rows/columns of all p
coefficients plus that term's time columns, with as many df as the term has
columns; GLOBAL uses all 2p.

g is R's default `transform = "km"`: 1 - S(t-) of the Kaplan–Meier of all
rows (strata ignored), centred on its mean over the events. Scaled
Schoenfeld residuals (for the plot) are R's: the residuals of each event
times the inverse of the average information, plus b (a factor: its
residuals are first collapsed with weights b, plus 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2

from analysis.cox_aggregate import per_time, risk_set_sums


@dataclass(frozen=True, eq=False)
class ZphResult:
    """`table`: term, chisq, df, p_value (last row GLOBAL). `residuals`: one row per
    event: time, transformed (g(t) before centring), and one scaled-Schoenfeld
    column per term."""

    table: pd.DataFrame
    residuals: pd.DataFrame


def km_transform(time: np.ndarray, status: np.ndarray) -> np.ndarray:
    """1 - S(t-) at each row's time: the KM of all rows just before t (R's "km")."""
    uniq, inv = np.unique(time, return_inverse=True)
    at_risk = len(time) - np.searchsorted(np.sort(time), uniq, side="left")
    deaths = np.bincount(inv, weights=status, minlength=len(uniq))
    surv = np.cumprod(1 - deaths / at_risk)
    before = np.concatenate([[1.0], surv[:-1]])  # S just before each distinct time
    return 1 - before[inv]


def cox_zph(x: np.ndarray, time, status, coef: np.ndarray, terms: dict[str, list[int]],
            strata=None, ties: str = "efron") -> ZphResult:
    """`cox.zph(fit)` for a fit with (non-aliased) design `x` and coefficients `coef`.

    `terms` maps a term name to its column indices in `x` (in model order).
    """
    x = np.asarray(x, dtype=float)
    time = np.asarray(time, dtype=float)
    status = np.asarray(status, dtype=float)
    p = x.shape[1]
    xc = x - x.mean(axis=0)
    g_row = km_transform(time, status)
    dead = status > 0
    g_row = g_row - g_row[dead].mean()
    strata_arr = np.zeros(len(time), dtype=int) if strata is None else np.asarray(strata)
    agg = risk_set_sums(xc, time, status, coef, strata_arr)
    keys, _, grad_t, info_t = per_time([agg], ties)
    # g at each event time: the same for every row with that time
    g_of_time = dict(zip(time, g_row, strict=False))
    g = keys["time"].map(g_of_time).to_numpy(dtype=float)
    u2 = (g[:, None] * grad_t).sum(axis=0)
    i11 = info_t.sum(axis=0)
    i12 = (g[:, None, None] * info_t).sum(axis=0)
    i22 = (g[:, None, None] ** 2 * info_t).sum(axis=0)
    imat = np.block([[i11, i12], [i12.T, i22]])
    u = np.concatenate([np.zeros(p), u2])
    rows = []
    for name, cols in terms.items():
        kk = list(range(p)) + [p + j for j in cols]
        uk = u[kk]
        stat = float(uk @ np.linalg.solve(imat[np.ix_(kk, kk)], uk))
        rows.append({"term": name, "chisq": stat, "df": len(cols),
                     "p_value": float(chi2.sf(stat, len(cols)))})
    stat = float(u @ np.linalg.solve(imat, u))
    rows.append({"term": "GLOBAL", "chisq": stat, "df": p, "p_value": float(chi2.sf(stat, p))})
    residuals = _scaled_schoenfeld(xc, time, status, coef, terms, strata_arr, ties, i11,
                                   g_row + 0.0, keys)
    return ZphResult(table=pd.DataFrame(rows), residuals=residuals)


def _scaled_schoenfeld(xc, time, status, coef, terms, strata, ties, i11, g_row, keys):
    """R's `cox.zph(fit)$y` (unstratified weighting: vmean = I / number of events).

    A death's Schoenfeld residual is x_i minus the risk-set mean at its time
    (for Efron, the mean of the d partial means, as zph1.c).
    """
    dead = np.flatnonzero(status > 0)
    order = dead[np.lexsort((time[dead], strata[dead]))]
    agg = risk_set_sums(xc, time, status, coef, strata)
    d = agg.d
    if ties == "efron":
        mean = np.zeros_like(agg.s1)
        for k in range(int(d.max()) if len(d) else 0):
            live = d > k
            frac = (k / d[live])[:, None]
            mean[live] += ((agg.s1[live] - frac * agg.d1[live])
                           / (agg.s0[live][:, None] - frac * agg.d0[live][:, None]))
        mean = mean / np.maximum(d, 1)[:, None]
    else:
        mean = agg.s1 / agg.s0[:, None]
    row_of = pd.MultiIndex.from_arrays([agg.strata.astype(str), agg.times]).get_indexer(
        pd.MultiIndex.from_arrays([strata[order].astype(str), time[order]]))
    resid = xc[order] - mean[row_of]
    p = xc.shape[1]
    used = np.ones(p)  # a column constant within a stratum would get 0 (not handled here)
    vmean = i11 / (len(order) * np.minimum.outer(used, used))
    names = list(terms)
    temp = np.zeros((p, len(names)))
    for t, cols in enumerate(terms.values()):
        temp[cols, t] = 1.0 if len(cols) == 1 else coef[cols]
    sres = resid @ temp
    vm = temp.T @ vmean @ temp
    scaled = np.linalg.solve(vm, sres.T).T
    for t, cols in enumerate(terms.values()):
        scaled[:, t] += coef[cols[0]] if len(cols) == 1 else 1.0
    out = pd.DataFrame(scaled, columns=names)
    out.insert(0, "transformed", km_transform(time, status)[order])
    out.insert(0, "time", time[order])
    return out
