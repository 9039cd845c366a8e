"""Log-rank test for two or more groups, as R `survdiff(Surv(time, status) ~ group [+ strata(s)])`.

At every distinct death time of a stratum, with n at risk and d deaths of
which d_k in group k (n_k at risk): E_k += d·n_k/n and, for n > 1,
V_kl += d·(n - d)/(n - 1) · n_k/n · (δ_kl - n_l/n). Strata add their O, E
and V. As `survdiff`, groups with E = 0 are left out, the first remaining
group is dropped from O - E and V, and chi-square = (O-E)' V⁻¹ (O-E) on
(groups with E > 0) - 1 degrees of freedom. With fewer than two such groups
(one group observed, or no deaths at all) R gives no test: p is NaN here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2

from analysis.survinput import complete_rows, durations, event_indicator
from analysis.survival import level_name


@dataclass(frozen=True, eq=False)
class LogRankResult:
    """Chi-square, degrees of freedom and p.

    `summary`: one row per group (group, n, events, observed, expected);
    `variance`: the k×k variance matrix of O - E (groups in `summary` order),
    as `survdiff(...)$var`. `note` says why there is no test, when there is none.
    """

    statistic: float
    dof: int
    p_value: float
    n: int
    n_excluded: int
    summary: pd.DataFrame
    variance: pd.DataFrame | None = None
    strata: str | None = None
    note: str = ""
    test: str = "logrank"


def logrank(df: pd.DataFrame, duration: str, event: str, group: str,
            strata: str | None = None, status_coding: tuple | None = None) -> LogRankResult:
    """Log-rank test of `duration`/`event` across the levels of `group` (within `strata`).

    Rows missing any of the columns are excluded and counted. `event` must be
    0/1 or boolean unless `status_coding=(censored, event)` names the coding.
    """
    cols = [duration, event, group, *([strata] if strata else [])]
    data, n_excl = complete_rows(df, cols, f"log-rank test of {duration!r} by {group!r}")
    time = durations(data[duration], duration).to_numpy()
    status = event_indicator(data[event], event, status_coding).to_numpy()
    labels = data[group].map(level_name)
    levels = sorted(labels.unique())
    g = pd.Categorical(labels, categories=levels).codes
    s = data[strata].map(level_name).to_numpy() if strata else np.zeros(len(data), dtype=int)
    k = len(levels)
    observed, expected, var = np.zeros(k), np.zeros(k), np.zeros((k, k))
    for stratum in np.unique(s):
        rows = s == stratum
        o, e, v = _one_stratum(time[rows], status[rows], g[rows], k)
        observed += o
        expected += e
        var += v
    summary = pd.DataFrame({"group": levels, "n": np.bincount(g, minlength=k),
                            "events": observed.astype(int), "observed": observed,
                            "expected": expected})
    variance = pd.DataFrame(var, index=levels, columns=levels)
    base = dict(n=len(data), n_excluded=n_excl, summary=summary, variance=variance,
                strata=strata)
    used = expected > 0
    if used.sum() < 2:
        why = ("no events: every row is censored" if status.sum() == 0
               else "fewer than two groups with expected events")
        return LogRankResult(float("nan"), 0, float("nan"), note=f"no test: {why}", **base)
    diff = (observed - expected)[used][1:]
    vv = var[np.ix_(used, used)][1:, 1:]
    stat = float(np.linalg.solve(vv, diff) @ diff)
    dof = int(used.sum()) - 1
    return LogRankResult(stat, dof, float(chi2.sf(stat, dof)), **base)


def _one_stratum(time, status, g, k):
    """Observed, expected and variance of one stratum (R's survdiff2.c, rho = 0)."""
    order = np.argsort(time, kind="stable")
    time, status, g = time[order], status[order], g[order]
    uniq, first = np.unique(time, return_index=True)
    n_total = len(time)
    at_risk_all = n_total - first  # at risk at each distinct time
    # per group at risk at each distinct time: count with time >= t
    per_group = np.zeros((len(uniq), k))
    for j in range(k):
        tj = time[g == j]
        per_group[:, j] = len(tj) - np.searchsorted(tj, uniq, side="left")
    idx = np.searchsorted(uniq, time)
    deaths = np.zeros((len(uniq), k))
    np.add.at(deaths, (idx, g), status)
    d = deaths.sum(axis=1)
    live = d > 0
    n, nk, d, dk = at_risk_all[live].astype(float), per_group[live], d[live], deaths[live]
    frac = nk / n[:, None]
    observed = dk.sum(axis=0)
    expected = (d[:, None] * frac).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(n > 1, d * (n - d) / (n - 1), 0.0)
    var = np.diag((w[:, None] * frac).sum(axis=0)) - (w[:, None] * frac).T @ frac
    return observed, expected, var
