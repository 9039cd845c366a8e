"""Competing risks: cumulative incidence (Aalen–Johansen) and Gray's test, as R `cmprsk::cuminc`.

`cumulative_incidence(df, time, status, group=None, event=..., competing=..., censored=...)`
codes `status` into the event of interest, competing events and censoring (any other
value is an error naming the column and the value), then per group and per cause:

* **Estimate.** The Aalen–Johansen cumulative incidence F_k(t) = Σ_{s<=t} S(s-) d_k(s)/Y(s),
  S the all-cause Kaplan–Meier. Deterministic: tied times are grouped, never jittered
  (lifelines' AalenJohansenFitter breaks ties at random).
* **Variance.** cuminc's delta-method variance (Gray's `cinc`, with the tie correction
  1 − (d − 1)/(Y − 1)), accumulated over every distinct time with an event.
* **Band.** cuminc prints no interval; ours is the log(−log) one,
  F^exp(±z·sd/(F log F)), computed from cuminc's variance (the golden R script applies
  the same formula to cuminc's `var`).
* **Gray's test** (cuminc's `Tests`, rho = 0 by default): the k-sample test of equal
  cumulative incidence of each cause, score vector of the first k−1 groups and its
  variance, chi-square on k−1 df; optionally stratified (scores and variances summed
  over strata). A singular variance gives NaN (cuminc prints −1).

References: Gray RJ (1988) Ann Stat 16:1141–54; cmprsk's documentation. Everything is
vectorised over the distinct times (no per-row loop), so 100,000 patients take
milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2, norm

from analysis.survival import level_name

CENSORED, EVENT, COMPETING = 0, 1, 2


@dataclass(frozen=True, eq=False)
class CIFResult:
    """Cumulative incidence per group and cause, and Gray's test per cause.

    `curves`: group, cause, time, estimate, variance, lower, upper: one row per distinct
    time at which that cause occurs in that group (the value after the jump), plus time 0.
    `tests`: cause, statistic, dof, p_value, test ("gray"); empty with a single group.
    `summary`: group, cause, n, events (of that cause).
    """

    curves: pd.DataFrame
    tests: pd.DataFrame
    summary: pd.DataFrame
    n: int
    n_excluded: int
    event: str
    competing: tuple[str, ...]
    conf_level: float

    def at(self, times: Sequence[float]) -> pd.DataFrame:
        """Estimates at `times` (the last jump at or before t), as cmprsk's `timepoints`."""
        out = []
        t = np.asarray(times, dtype=float)
        for (g, c), part in self.curves.groupby(["group", "cause"], sort=False):
            idx = np.searchsorted(part["time"].to_numpy(), t, side="right") - 1
            rows = part.iloc[np.clip(idx, 0, None)]
            out.append(pd.DataFrame({"group": g, "cause": c, "time": t,
                                     **{k: rows[k].to_numpy() for k in
                                        ("estimate", "variance", "lower", "upper")}}))
        return pd.concat(out, ignore_index=True)


def code_status(values: pd.Series, column: str, event: Any, competing: Sequence[Any],
                censored: Any) -> np.ndarray:
    """0 censored, 1 the event of interest, 2 a competing event; anything else is an error."""
    known = {censored: CENSORED, event: EVENT, **{c: COMPETING for c in competing}}
    if len(known) != 2 + len(competing):
        raise ValueError(f"column {column!r}: event, competing and censored codes overlap")
    bad = values[~values.isin(list(known))]
    if len(bad):
        raise ValueError(
            f"column {column!r}, row {bad.index[0]}: status {bad.iloc[0]!r} is none of "
            f"event {event!r}, competing {list(competing)!r} or censored {censored!r}")
    return values.map(known).to_numpy(dtype=int)


def _complete(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    if df.empty:
        raise ValueError("no rows: cumulative incidence needs at least one patient")
    data = df.dropna(subset=cols)
    if data.empty:
        raise ValueError(f"no complete rows in columns {cols}")
    if (data[cols[0]].astype(float) < 0).any():
        raise ValueError(f"column {cols[0]!r}: negative times")
    return data


def cumulative_incidence(df: pd.DataFrame, time: str, status: str, group: str | None = None,
                         *, event: Any = 1, competing: Sequence[Any] = (2,), censored: Any = 0,
                         strata: str | None = None, rho: float = 0.0,
                         conf_level: float = 0.95) -> CIFResult:
    """`cuminc(time, status, group, strata, rho)` with CIs; see the module docstring."""
    cols = [time, status] + [c for c in (group, strata) if c]
    data = _complete(df, cols)
    t = data[time].to_numpy(dtype=float)
    s = code_status(data[status], status, event, competing, censored)
    # each competing cause gets its own curve: its index in `competing`
    comp_idx = data[status].map({c: i for i, c in enumerate(competing)}).to_numpy()
    labels = (data[group].map(level_name) if group else pd.Series("all", index=data.index))
    levels = sorted(labels.unique())
    z = float(norm.ppf(0.5 + conf_level / 2))
    causes = [(str(event), s == EVENT)] + [
        (str(c), (s == COMPETING) & (comp_idx == i)) for i, c in enumerate(competing)]
    curves, summary = [], []
    for g in levels:
        m = (labels == g).to_numpy()
        for name, is_cause in causes:
            tt, est, var = _cinc(t[m], s[m] != CENSORED, is_cause[m])
            lower, upper = _loglog_band(est, var, z)
            curves.append(pd.DataFrame({"group": g, "cause": name, "time": tt, "estimate": est,
                                        "variance": var, "lower": lower, "upper": upper}))
            summary.append({"group": g, "cause": name, "n": int(m.sum()),
                            "events": int(is_cause[m].sum())})
    tests = []
    if len(levels) > 1:
        gcode = pd.Categorical(labels, categories=levels).codes
        st = (pd.Categorical(data[strata].astype(str)).codes if strata
              else np.zeros(len(data), dtype=int))
        for name, is_cause in causes:
            m = np.where(is_cause, EVENT, np.where(s == CENSORED, CENSORED, COMPETING))
            stat = gray_statistic(t, m, gcode, len(levels), st, rho)
            dof = len(levels) - 1
            tests.append({"cause": name, "statistic": stat, "dof": dof,
                          "p_value": float(chi2.sf(stat, dof)) if np.isfinite(stat) else np.nan,
                          "test": "gray"})
    return CIFResult(
        curves=pd.concat(curves, ignore_index=True), tests=pd.DataFrame(
            tests, columns=["cause", "statistic", "dof", "p_value", "test"]),
        summary=pd.DataFrame(summary), n=len(data), n_excluded=len(df) - len(data),
        event=str(event), competing=tuple(str(c) for c in competing), conf_level=conf_level)


def _table(t: np.ndarray, *indicators: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
    """Distinct times, number at risk at each, and per-indicator counts at each."""
    ut, inv = np.unique(t, return_inverse=True)
    size = np.bincount(inv, minlength=len(ut))
    at_risk = len(t) - np.concatenate([[0], np.cumsum(size)[:-1]])
    counts = [np.bincount(inv, weights=ind.astype(float), minlength=len(ut)) for ind in indicators]
    return ut, at_risk.astype(float), counts


def _cinc(t: np.ndarray, failed: np.ndarray, cause: np.ndarray):
    """One group's CIF of one cause and cuminc's variance, at time 0 and each jump."""
    ut, rs, (nd1, nd) = _table(t, cause, failed)
    nd2 = nd - nd1
    keep = nd > 0
    ut, rs, nd1, nd2, nd = ut[keep], rs[keep], nd1[keep], nd2[keep], nd[keep]
    fkn = np.cumprod((rs - nd) / rs)             # all-cause KM after each time
    fk = np.concatenate([[1.0], fkn[:-1]])      # ... and just before it
    f = np.cumsum(fk * nd1 / rs)

    def tie(d):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(d > 1, 1 - (d - 1) / (rs - 1), 1.0)

    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(fkn > 0, 1 / fkn, 0.0)
        # competing failures (only while the KM stays positive)
        t6 = np.where((nd2 > 0) & (fkn > 0), fk ** 2 * tie(nd2) * nd2 / rs ** 2, 0.0)
        t4 = f * inv
        v1, v2, v3 = t4 * t4 * t6, inv * t4 * t6, inv * inv * t6
        # failures from the cause of interest
        t6 = np.where(nd1 > 0, fk ** 2 * tie(nd1) * nd1 / rs ** 2, 0.0)
        t4 = 1 + inv * f
    v1, v2, v3 = (np.cumsum(v1 + t4 * t4 * t6), np.cumsum(v2 + inv * t4 * t6),
                  np.cumsum(v3 + inv * inv * t6))
    var = v1 + f * f * v3 - 2 * f * v2
    jump = nd1 > 0
    return (np.concatenate([[0.0], ut[jump]]), np.concatenate([[0.0], f[jump]]),
            np.concatenate([[0.0], var[jump]]))


def _loglog_band(est: np.ndarray, var: np.ndarray, z: float):
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.exp(z * np.sqrt(var) / (est * np.log(est)))
        lower, upper = est ** k, est ** (1 / k)
    ok = (est > 0) & (est < 1)
    return np.where(ok, lower, np.nan), np.where(ok, upper, np.nan)


def gray_statistic(t: np.ndarray, m: np.ndarray, g: np.ndarray, ng: int,
                   strata: np.ndarray, rho: float = 0.0) -> float:
    """Gray's chi-square from times `t`, status `m` (0/1/2) and group codes 0..ng−1."""
    s_tot, v_tot = np.zeros(ng - 1), np.zeros((ng - 1, ng - 1))
    for k in np.unique(strata):
        sel = strata == k
        s, v = _gray_stratum(t[sel], m[sel], g[sel], ng, rho)
        s_tot += s
        v_tot += v
    if np.linalg.matrix_rank(v_tot) < ng - 1:
        return float("nan")
    return float(s_tot @ np.linalg.solve(v_tot, s_tot))


def _gray_stratum(t, m, g, ng, rho):
    """Score of groups 1..ng−1 and its variance within one stratum (Gray 1988)."""
    ut, inv = np.unique(t, return_inverse=True)
    T = len(ut)
    cnt = np.zeros((3, T, ng))
    np.add.at(cnt, (m, inv, g), 1.0)
    leave = cnt.sum(axis=0)
    rs = leave[::-1].cumsum(axis=0)[::-1]          # at risk per group at each time
    d1, d2 = cnt[1], cnt[2]
    nd1 = d1.sum(axis=1)
    alive = rs > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(alive, (rs - d1 - d2) / rs, 1.0)
        skm = np.cumprod(step, axis=0)                              # right-continuous KM
        skmm = np.vstack([np.ones((1, ng)), skm[:-1]])              # left-continuous
        f1 = np.cumsum(np.where(alive, skmm * d1 / rs, 0.0), axis=0)
        f1m = np.vstack([np.zeros((1, ng)), f1[:-1]])
        t1 = np.where(alive, rs / skmm, 0.0)
        tr = t1.sum(axis=1)
        tq = np.where(alive, rs * (1 - f1m) / skmm, 0.0).sum(axis=1)
        incr = np.where(nd1 > 0, nd1 / tr, 0.0)
        f = np.cumsum(incr)
        fm = f - incr
        fb = (1 - fm) ** rho
        a = fb[:, None, None] * (np.einsum("ti,ij->tij", t1, np.eye(ng))
                                 - np.einsum("ti,tj->tij", t1, t1) / tr[:, None, None])
        a = np.where(np.isfinite(a), a, 0.0)
        cw = np.where(nd1 > 0, nd1 / (tr * (1 - fm)), 0.0)
        c = np.cumsum(a * cw[:, None, None], axis=0)
        score = np.where(alive, fb[:, None] * (d1 - nd1[:, None] * rs * (1 - f1m)
                                               / (skmm * tq[:, None])), 0.0)
        s = score[:, : ng - 1].sum(axis=0)
        # cause-of-interest failures
        t4 = np.where(skm > 0, 1 - (1 - f)[:, None] / skm, 1.0)
        t5 = np.where(nd1[:, None] > 1, 1 - (nd1[:, None] - 1) / (tr[:, None] * skmm - 1), 1.0)
        t3 = np.where(alive & (nd1[:, None] > 0), t5 * skmm * nd1[:, None] / (tr[:, None] * rs),
                      0.0)
        t4, t3 = np.where(t3 != 0, t4, 0.0), np.where(np.isfinite(t3), t3, 0.0)
        v3 = (t4 * t4 * t3).sum(axis=0)
        u = a[:, : ng - 1, :] - t4[:, None, :] * c[:, : ng - 1, :]
        v2 = np.einsum("tik,tk->ik", u, t4 * t3)
        v = np.einsum("tik,tjk,tk->ij", u, u, t3)
        # competing failures
        ok2 = (skm > 0) & (d2 > 0)
        t4 = np.where(ok2, (1 - f)[:, None] / skm, 0.0)
        t5 = np.where(d2 > 1, 1 - (d2 - 1) / (rs - 1), 1.0)
        t3 = np.where(ok2, t5 * skmm ** 2 * d2 / rs ** 2, 0.0)
        v3 += (t4 * t4 * t3).sum(axis=0)
        u = t4[:, None, :] * c[:, : ng - 1, :]
        v2 -= np.einsum("tik,tk->ik", u, t4 * t3)
        v += np.einsum("tik,tjk,tk->ij", u, u, t3)
    cf = c[-1, : ng - 1, :]
    v += np.einsum("ik,jk,k->ij", cf, cf, v3) + cf @ v2.T + v2 @ cf.T
    return s, v
