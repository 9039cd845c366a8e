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
se = sqrt(Σ dfbeta_i²). The pair counts are two-dimensional dominance counts
(later in time and lower in score), made with square-root blocks in numpy
rather than concordance3.c's balanced tree; the numbers are the same.
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


_BLOCK = 1024


def _later_counts(key_q, s_q, key_p, s_p) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each query q, over the points p with key_p > key_q: how many have a score
    below s_q, equal to it, and in all. Square-root blocks over the key order:
    whole blocks by binary search on their sorted scores, the partial block pairwise."""
    qsort = np.argsort(s_q, kind="stable")  # sorted needles: faster binary searches
    key_q, s_q = key_q[qsort], s_q[qsort]
    order = np.argsort(key_p, kind="stable")
    kp, sp = key_p[order], s_p[order]
    n = len(kp)
    start = np.searchsorted(kp, key_q, side="right")  # first point with a larger key
    total = n - start
    below = np.zeros(len(key_q), dtype=np.int64)
    equal = np.zeros(len(key_q), dtype=np.int64)
    nblocks = (n + _BLOCK - 1) // _BLOCK
    first_full = (start + _BLOCK - 1) // _BLOCK  # first block wholly at or after start
    for b in range(nblocks):
        block = np.sort(sp[b * _BLOCK:(b + 1) * _BLOCK])
        q = np.flatnonzero(first_full <= b)
        if len(q):
            lo = np.searchsorted(block, s_q[q], side="left")
            below[q] += lo
            equal[q] += np.searchsorted(block, s_q[q], side="right") - lo
        q = np.flatnonzero((start < (b + 1) * _BLOCK) & (first_full > b))  # partial block
        if len(q):
            idx = np.arange(b * _BLOCK, min((b + 1) * _BLOCK, n))
            mask = idx[None, :] >= start[q][:, None]
            vals = sp[idx][None, :]
            below[q] += ((vals < s_q[q][:, None]) & mask).sum(axis=1)
            equal[q] += ((vals == s_q[q][:, None]) & mask).sum(axis=1)
    back = np.empty_like(qsort)
    back[qsort] = np.arange(len(qsort))
    return below[back], equal[back], total[back]


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
    """Counts and per-observation (concordant, discordant, tied.x) pair counts.

    key = 2·rank(time) + censored: j is at risk when i dies iff key_j > key_i
    (a later time, or censored at the same time); deaths at one time share a key.
    """
    n = len(time)
    dead = status > 0
    if not dead.any():
        return np.zeros(5), np.zeros((n, 3))
    key = 2 * np.unique(time, return_inverse=True)[1] + (~dead).astype(np.int64)
    di = np.flatnonzero(dead)
    # i dies first: the risk set's scores below (concordant), equal, above (discordant)
    lo, eq, tot = _later_counts(key[di], score[di], key, score)
    hi = tot - lo - eq
    infl = np.zeros((n, 3))
    infl[di] += np.column_stack([lo, hi, eq])
    # j is the later member: earlier deaths (key < key_j) above j's score are concordant
    lo2, eq2, tot2 = _later_counts(-key, score, -key[di], score[di])
    infl += np.column_stack([tot2 - lo2 - eq2, lo2, eq2])
    count = np.zeros(5)
    count[:3] = lo.sum(), hi.sum(), eq.sum()
    # deaths tied on time (tied.y), and among them tied on score too (tied.xy)
    _, per_time = np.unique(key[di], return_counts=True)
    _, per_time_score = np.unique(np.column_stack([key[di], score[di]]), axis=0,
                                  return_counts=True)
    tied_xy = float((per_time_score * (per_time_score - 1) / 2).sum())
    count[3] = float((per_time * (per_time - 1) / 2).sum()) - tied_xy
    count[4] = tied_xy
    return count, infl
