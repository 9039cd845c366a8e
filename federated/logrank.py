"""Log-rank stratified by site (or any stratum) from per-site counts, variance form.

R `survdiff(Surv(time, status) ~ group + strata(site))`: within each stratum, at each
distinct time t with n_t at risk and d_t deaths (n_gt, d_gt per group), O - E adds
d_gt - d_t n_gt / n_t and the covariance adds
d_t (n_t - d_t) / (n_t - 1) * (n_gt / n_t) * (δ_gh - n_ht / n_t); the strata's vectors and
matrices are summed and chi2 = (O - E)' V^- (O - E) on k - 1 degrees of freedom. This is the
variance form that `survdiff` prints, not the Σ(O - E)² / E shortcut. Each stratum needs only
its own (group, time, event) counts, so stratifying by center needs nothing beyond what a
site already sends for its Kaplan–Meier curves.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2


@dataclass(frozen=True, eq=False)
class StratifiedLogRank:
    statistic: float
    dof: int
    p_value: float
    observed: pd.Series
    expected: pd.Series
    test: str = "logrank_stratified"


def stratified_logrank(cells: pd.DataFrame) -> StratifiedLogRank:
    """`cells`: columns stratum, group, time, event (0/1), count."""
    groups = sorted(cells["group"].unique())
    k = len(groups)
    oe, var = np.zeros(k), np.zeros((k, k))
    obs, exp_ = np.zeros(k), np.zeros(k)
    for _, part in cells.groupby("stratum", sort=True):
        d = part[part["event"] == 1].pivot_table(index="time", columns="group", values="count",
                                                 aggfunc="sum", fill_value=0)
        left = part.pivot_table(index="time", columns="group", values="count", aggfunc="sum", fill_value=0)
        left = left.reindex(columns=groups, fill_value=0).sort_index()
        at_risk = left.iloc[::-1].cumsum().iloc[::-1]  # n_gt: still in follow-up at t
        d = d.reindex(index=left.index, columns=groups, fill_value=0)
        n_g, d_g = at_risk.to_numpy(float), d.to_numpy(float)
        n, dt = n_g.sum(axis=1), d_g.sum(axis=1)
        live = dt > 0
        n_g, d_g, n, dt = n_g[live], d_g[live], n[live], dt[live]
        e_g = dt[:, None] * n_g / n[:, None]
        obs += d_g.sum(axis=0)
        exp_ += e_g.sum(axis=0)
        oe += (d_g - e_g).sum(axis=0)
        w = np.where(n > 1, dt * (n - dt) / np.where(n > 1, n - 1, 1), 0.0)
        frac = n_g / n[:, None]
        var += (w[:, None, None] * (frac[:, :, None] * (np.eye(k)[None] - frac[:, None, :]))).sum(axis=0)
    if k < 2:
        return StratifiedLogRank(float("nan"), 0, float("nan"), pd.Series(obs, groups), pd.Series(exp_, groups))
    stat = float(oe[:-1] @ np.linalg.solve(var[:-1, :-1], oe[:-1]))
    return StratifiedLogRank(stat, k - 1, float(chi2.sf(stat, k - 1)), pd.Series(obs, groups),
                             pd.Series(exp_, groups))
