"""Harrell's concordance of a Cox model's risk score, as R `coxph(...)$concordance`.

R's definition (survival >= 3, `concordancefit(y, lp, strata, reverse = TRUE)`,
timewt "n"): a pair is comparable when one member dies first and the other is
still at risk then (observed later, or censored at that same time); pairs in
different strata are never compared. Concordant: the member who died first has
the higher risk score; tied.x: equal scores (counted 1/2); tied.y: both died at
the same time (not comparable). C = (concordant + tied.x / 2) /
(concordant + discordant + tied.x).

Its standard error is R's infinitesimal jackknife: for each observation i
with concordant, discordant and tied.x pair counts c_i, d_i, t_i,
dfbeta_i = ((c_i - d_i) - (c_i + d_i + t_i)·somers_d) / (2·npair) and
se = sqrt(Σ dfbeta_i²). The counts are made with a Fenwick tree over the
ranks of the scores (O(n log n)), walking time backwards as concordance3.c.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Concordance:
    """Counts (as R names them), C and its standard error."""

    concordant: float
    discordant: float
    tied_x: float
    tied_y: float
    tied_xy: float
    concordance: float
    se: float


class _Fenwick:
    def __init__(self, n: int):
        self.tree = np.zeros(n + 1)
        self.node = np.zeros(n)
        self.total = 0.0

    def add(self, i: int, w: float) -> None:
        self.node[i] += w
        self.total += w
        i += 1
        while i < len(self.tree):
            self.tree[i] += w
            i += i & -i

    def below(self, i: int) -> float:  # weight at ranks < i
        s = 0.0
        while i > 0:
            s += self.tree[i]
            i -= i & -i
        return s

    def split(self, i: int) -> tuple[float, float, float]:
        """(weight with a higher rank, lower rank, the same rank)."""
        lo, eq = self.below(i), self.node[i]
        return self.total - lo - eq, lo, eq


def concordance(time, status, score, strata=None) -> Concordance:
    """R's concordance of risk `score` (higher = earlier death) with (time, status)."""
    time = np.asarray(time, dtype=float)
    status = np.asarray(status, dtype=float)
    score = np.asarray(score, dtype=float)
    strata = np.zeros(len(time), dtype=int) if strata is None else np.asarray(strata)
    count = np.zeros(5)
    infl = np.zeros((len(time), 3))  # per observation: concordant, discordant, tied.x
    for s in np.unique(strata):
        rows = np.flatnonzero(strata == s)
        c, inf = _one_stratum(time[rows], status[rows], score[rows])
        count += c
        infl[rows] = inf
    conc, disc, tx = count[:3]
    npair = conc + disc + tx
    if npair == 0:
        return Concordance(*count, float("nan"), float("nan"))
    somers = (conc - disc) / npair
    dfbeta = ((infl[:, 0] - infl[:, 1]) - infl.sum(axis=1) * somers) / (2 * npair)
    return Concordance(*count, (somers + 1) / 2, float(np.sqrt((dfbeta ** 2).sum())))


def _one_stratum(time, status, score):
    n = len(time)
    if status.sum() == 0:
        return np.zeros(5), np.zeros((n, 3))
    ranks = np.unique(score, return_inverse=True)[1]
    nrank = int(ranks.max()) + 1
    order = np.lexsort((status, -time))  # time descending, censored before deaths
    risk, deaths = _Fenwick(nrank), _Fenwick(nrank)
    count = np.zeros(5)
    infl = np.zeros((n, 3))
    i = 0
    while i < n:
        ii = order[i]
        if status[ii] == 0:
            hi, lo, eq = deaths.split(ranks[ii])
            infl[ii] -= (hi, lo, eq)
            risk.add(ranks[ii], 1.0)
            i += 1
            continue
        j = i
        while j < n and time[order[j]] == time[ii] and status[order[j]] > 0:
            j += 1
        tied = order[i:j]
        for k, jj in enumerate(tied):  # pass 1: compare with the risk set
            hi, lo, eq = risk.split(ranks[jj])
            count[:3] += (lo, hi, eq)  # a higher score dying first is concordant
            infl[jj] += (lo, hi, eq)
            count[3] += k
            deaths.add(ranks[jj], 1.0)
        _, tie_counts = np.unique(ranks[tied], return_counts=True)
        count[4] += float((tie_counts * (tie_counts - 1) / 2).sum())
        for jj in tied:  # pass 2: influence start, then join the risk set
            hi, lo, eq = deaths.split(ranks[jj])
            infl[jj] -= (hi, lo, eq)
            risk.add(ranks[jj], 1.0)
        i = j
    for ii in range(n):  # pairs where ii is the later member: earlier deaths
        hi, lo, eq = deaths.split(ranks[ii])
        infl[ii] += (hi, lo, eq)  # an earlier death with a higher score: concordant
    count[3] -= count[4]
    return count, infl
