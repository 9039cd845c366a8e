"""Cox partial likelihood as sufficient statistics: risk-set sums per event time, and their combiner.

The Cox log partial likelihood, its gradient and its information matrix depend
on the data only through sums over risk sets and over tied deaths at each
distinct event time (per stratum). `risk_set_sums` computes those sums from
one set of rows (a whole data set, or one site's rows); `combine` adds the
aggregates of several sets row-wise on (stratum, time) and turns them into
(loglik, gradient, information) for Efron's or Breslow's handling of ties,
exactly as R's `coxph` (coxfit6.c) does. Centralized fitting passes a single
aggregate; a federated fit asks every site for its aggregate at the pooled
event times and combines them centrally: the pooled sums are the sums of the
sites' sums, so the result is identical to the pooled fit.

Nothing here iterates: `analysis.cox_engine` runs Newton–Raphson on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

TIES = ("efron", "breslow")


@dataclass(frozen=True, eq=False)
class CoxAggregate:
    """Sufficient statistics of one data set at one beta, one row per (stratum, event time).

    For every stratum `s` and every evaluation time `t` (by default the distinct
    times at which at least one death occurs in that stratum), with
    r_i = exp(x_i·beta) and R(t) = {i in stratum s: time_i >= t} the risk set
    and D(t) = {i in stratum s: time_i == t, status_i == 1} the tied deaths:

    * `strata` (m,) stratum label, `times` (m,) float, rows sorted by (stratum, time);
    * `n_risk` (m,) |R(t)|; `d` (m,) |D(t)| (may be 0 at a time given by `times=`);
    * `s0` (m,) Σ_R r_i, `s1` (m, p) Σ_R r_i x_i, `s2` (m, p, p) Σ_R r_i x_i x_i';
    * `xd` (m, p) Σ_D x_i and `ed` (m,) Σ_D x_i·beta (the deaths' linear predictors);
    * `d0` (m,), `d1` (m, p), `d2` (m, p, p): the same three sums as s0..s2 over
      D(t) instead of R(t) (needed by Efron's approximation; Breslow ignores them).

    Every field is a plain sum over rows, so aggregates of disjoint row sets
    evaluated at the same beta and the same times add up to the aggregate of
    their union (`combine` does the adding). `beta` is the coefficient vector used.
    """

    strata: np.ndarray
    times: np.ndarray
    n_risk: np.ndarray
    d: np.ndarray
    s0: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    xd: np.ndarray
    ed: np.ndarray
    d0: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    beta: np.ndarray


def event_times(time, status, strata=None) -> pd.DataFrame:
    """Distinct death times per stratum: columns `stratum`, `time` (what a site shares)."""
    time = np.asarray(time, dtype=float)
    status = np.asarray(status, dtype=float)
    strata = np.zeros(len(time), dtype=int) if strata is None else np.asarray(strata)
    dead = status > 0
    return (pd.DataFrame({"stratum": strata[dead], "time": time[dead]})
            .drop_duplicates().sort_values(["stratum", "time"], ignore_index=True))


def risk_set_sums(x, time, status, beta, strata=None,
                  times: pd.DataFrame | None = None) -> CoxAggregate:
    """Risk-set and tied-death sums of one row set at `beta` (see `CoxAggregate`).

    `x` (n, p) covariates (the caller centres them if it wants R's numerics:
    the likelihood does not change); `time` (n,), `status` (n,) 0/1; `strata`
    (n,) labels or None for one stratum. `times`: a frame with columns
    `stratum`, `time` giving where to evaluate (a federated run passes the
    pooled death times so that every site returns the same rows); default:
    this row set's own death times (`event_times`).
    """
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    time = np.asarray(time, dtype=float)
    status = np.asarray(status, dtype=float)
    beta = np.asarray(beta, dtype=float)
    n, p = x.shape
    strata = np.zeros(n, dtype=int) if strata is None else np.asarray(strata)
    if times is None:
        times = event_times(time, status, strata)
    eta = x @ beta if p else np.zeros(n)
    r = np.exp(eta)
    parts = []
    for s, rows in times.groupby("stratum", sort=True):
        t_eval = rows["time"].to_numpy(dtype=float)
        mask = strata == s
        parts.append(_one_stratum(x[mask], time[mask], status[mask], eta[mask], r[mask],
                                  t_eval, p, s))
    if not parts:
        empty = np.zeros(0)
        return CoxAggregate(np.array([], dtype=object), empty, empty, empty, empty,
                            np.zeros((0, p)), np.zeros((0, p, p)), np.zeros((0, p)), empty,
                            empty, np.zeros((0, p)), np.zeros((0, p, p)), beta)
    fields = [np.concatenate([part[k] for part in parts]) for k in range(12)]
    return CoxAggregate(*fields, beta=beta)


def _one_stratum(x, time, status, eta, r, t_eval, p, label):
    m = len(t_eval)
    order = np.argsort(time, kind="stable")
    ts, xs, rs = time[order], x[order], r[order]
    rx = rs[:, None] * xs
    rxx = rx[:, :, None] * xs[:, None, :]

    def suffix(a):  # Σ over i >= k, accumulated from the largest time down (as coxfit6)
        out = np.zeros((len(a) + 1, *a.shape[1:]))
        out[:-1] = np.cumsum(a[::-1], axis=0)[::-1]
        return out

    at = np.searchsorted(ts, t_eval, side="left")
    n_risk = (len(ts) - at).astype(float)
    s0, s1, s2 = suffix(rs)[at], suffix(rx)[at], suffix(rxx)[at]
    dead = status > 0
    pos = np.searchsorted(t_eval, time[dead])
    hit = (pos < m) & (t_eval[np.minimum(pos, m - 1)] == time[dead])
    pos = pos[hit]
    xdd, rd, ed = x[dead][hit], r[dead][hit], eta[dead][hit]
    d = np.bincount(pos, minlength=m).astype(float)
    xd, d1 = np.zeros((m, p)), np.zeros((m, p))
    d2 = np.zeros((m, p, p))
    np.add.at(xd, pos, xdd)
    np.add.at(d1, pos, rd[:, None] * xdd)
    np.add.at(d2, pos, rd[:, None, None] * xdd[:, :, None] * xdd[:, None, :])
    labels = np.empty(m, dtype=object)
    labels[:] = [label] * m
    return (labels, t_eval, n_risk, d, s0, s1, s2, xd,
            np.bincount(pos, weights=ed, minlength=m), np.bincount(pos, weights=rd, minlength=m),
            d1, d2)


def combine(aggregates: Sequence[CoxAggregate], ties: str = "efron"
            ) -> tuple[float, np.ndarray, np.ndarray]:
    """(loglik, gradient, information) of the union of the aggregates' row sets.

    Rows with equal (stratum, time) are summed first (one site each); then, at
    each time with d deaths, Efron's approximation uses the risk set reduced by
    k/d of the tied deaths' sums for k = 0..d-1 (R's default); Breslow uses the
    full risk set d times. Times with no deaths contribute nothing.
    """
    ll, grad, info = per_time(aggregates, ties)[1:]
    return float(ll.sum()), grad.sum(axis=0), info.sum(axis=0)


def per_time(aggregates: Sequence[CoxAggregate], ties: str = "efron"
             ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """`combine`'s terms before summing: (keys, loglik (m,), gradient (m, p), information (m, p, p)).

    `keys` has columns stratum, time, d (one row per pooled event time). The
    PH test (`analysis.cox_zph`) weights these terms by a function of time.
    """
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, not {ties!r}")
    agg = _sum_rows(aggregates)
    d = agg["d"]
    m, p = agg["s1"].shape
    loglik = agg["ed"].astype(float).copy()
    grad = agg["xd"].astype(float).copy()
    info = np.zeros((m, p, p))
    if ties == "breslow":
        live = d > 0
        s0 = agg["s0"][live]
        a = agg["s1"][live] / s0[:, None]
        dl = d[live]
        loglik[live] -= dl * np.log(s0)
        grad[live] -= dl[:, None] * a
        info[live] = dl[:, None, None] * (agg["s2"][live] / s0[:, None, None]
                                          - a[:, :, None] * a[:, None, :])
    else:
        for k in range(int(d.max()) if m else 0):
            live = d > k
            frac = k / d[live]
            den = agg["s0"][live] - frac * agg["d0"][live]
            a = (agg["s1"][live] - frac[:, None] * agg["d1"][live]) / den[:, None]
            b = (agg["s2"][live] - frac[:, None, None] * agg["d2"][live]) / den[:, None, None]
            loglik[live] -= np.log(den)
            grad[live] -= a
            info[live] += b - a[:, :, None] * a[:, None, :]
    keys = pd.DataFrame({"stratum": agg["strata"], "time": agg["times"], "d": d})
    return keys, loglik, grad, info


def _sum_rows(aggregates: Sequence[CoxAggregate]) -> dict[str, np.ndarray]:
    names = ("n_risk", "d", "s0", "s1", "s2", "xd", "ed", "d0", "d1", "d2")
    if len(aggregates) == 1:
        return {k: getattr(aggregates[0], k) for k in (*names, "strata", "times")}
    keys = pd.DataFrame({
        "stratum": np.concatenate([a.strata for a in aggregates]),
        "time": np.concatenate([a.times for a in aggregates])})
    codes, _ = pd.MultiIndex.from_frame(keys).factorize(sort=True)
    m = int(codes.max()) + 1 if len(codes) else 0
    uniq = keys.drop_duplicates().sort_values(["stratum", "time"])
    out = {"strata": uniq["stratum"].to_numpy(), "times": uniq["time"].to_numpy(dtype=float)}
    for k in names:
        stacked = np.concatenate([getattr(a, k) for a in aggregates])
        acc = np.zeros((m, *stacked.shape[1:]))
        np.add.at(acc, codes, stacked)
        out[k] = acc
    return out
