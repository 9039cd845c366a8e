"""Kaplan–Meier curves, medians and follow-up, computed as R `survival` computes them.

The product-limit estimate and its event table are computed here (`_event_table`), with
the same arithmetic, and so the same bits, as lifelines' `KaplanMeierFitter` (a test
compares them; lifelines itself is not imported: it costs ~0.2 s of import and ~10 ms a
curve, and sets numpy's error state for the whole process). Two things differ from
lifelines because R's `survfit` does them differently:

* **Confidence band.** R's default is `conf.type = "log"`: S(t) * exp(±z·se) with
  se = sqrt(Σ d / (n (n - d))) (Greenwood on the log scale), the upper limit
  capped at 1. lifelines always uses log(-log). The band is computed here from
  lifelines' event table.
* **Median and its CI.** R's `quantile.survfit` rule: the median is the first
  time the curve reaches 0.5; when the curve sits *exactly* on 0.5 over an
  interval, the median is the midpoint between that interval's start and the
  next jump (or the last observed time if the curve ends on the plateau). The
  CI of the median is the same rule applied to the lower band (lower limit) and
  the upper band (upper limit). `_r_quantile` is a port of R's `findq`.

`follow_up` is the reverse Kaplan–Meier median follow-up (events and
censorings swapped), as in `survfit(Surv(time, 1 - status) ~ 1)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from analysis.survinput import complete_rows, durations, event_indicator

_TOL = np.sqrt(np.finfo(float).eps)  # R: sqrt(.Machine$double.eps)


@dataclass(frozen=True, eq=False)
class KMCurve:
    """One group's curve: a step function, plotting-ready (`timeline` starts at 0)."""

    group: str
    timeline: np.ndarray
    survival: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    censored: np.ndarray
    n: int
    n_events: int
    median: float
    median_lower: float
    median_upper: float

    def _step(self, values: np.ndarray, times) -> np.ndarray:
        idx = np.searchsorted(self.timeline, np.asarray(times, dtype=float), side="right") - 1
        return values[np.clip(idx, 0, None)]

    def survival_at(self, times) -> pd.DataFrame:
        """S(t) and its band at `times` (R: `summary(fit, times = ...)`)."""
        return pd.DataFrame({
            "time": np.asarray(times, dtype=float),
            "survival": self._step(self.survival, times),
            "lower": self._step(self.lower, times),
            "upper": self._step(self.upper, times),
            "at_risk": self.at_risk_at(times),
        })

    def at_risk_at(self, times) -> np.ndarray:
        """Number still at risk at each time t (observed time >= t), as R's n.risk."""
        t = np.asarray(times, dtype=float)
        entered = self.at_risk[0] if len(self.at_risk) else 0
        left_before = np.concatenate([[0], np.cumsum(self.events + self.censored)])
        idx = np.searchsorted(self.timeline, t, side="left")
        return (entered - left_before[idx]).astype(int)


@dataclass(frozen=True, eq=False)
class KMResult:
    """Kaplan–Meier fit, one curve per group (key "all" when ungrouped).

    `summary`: one row per group with n, events, median, lower, upper.
    """

    curves: dict[str, KMCurve]
    summary: pd.DataFrame
    conf_level: float
    n_excluded: int

    def survival_at(self, times) -> pd.DataFrame:
        """Long table: group, time, survival, lower, upper, at_risk."""
        frames = [c.survival_at(times).assign(group=g) for g, c in self.curves.items()]
        return pd.concat(frames, ignore_index=True)[
            ["group", "time", "survival", "lower", "upper", "at_risk"]]

    def at_risk_table(self, times) -> pd.DataFrame:
        """Numbers at risk: one row per group, one column per time (for plots)."""
        return pd.DataFrame({g: c.at_risk_at(times) for g, c in self.curves.items()},
                            index=list(times)).T


def _r_quantile(x: np.ndarray, cdf: np.ndarray, p: float, xmax: float) -> float:
    """Port of R survival's `findq` for one probability `p` (x, cdf start at 0)."""
    keep = ~np.isnan(cdf)
    x, cdf = x[keep], cdf[keep]
    if len(cdf) == 0 or cdf.max() < p:
        return float("nan")
    first = ~pd.Series(cdf).duplicated().to_numpy()
    x, cdf = x[first], cdf[first]
    hit1 = np.nonzero(cdf + _TOL >= p)[0]
    hit2 = np.nonzero(cdf - _TOL >= p)[0]
    i1 = hit1[0] if len(hit1) else None
    if i1 is None:
        return float("nan")
    if abs(p - cdf[-1]) < _TOL:  # the curve ends on the plateau at p
        return float((x[i1] + xmax) / 2)
    if len(hit2) == 0:
        return float("nan")
    return float((x[i1] + x[hit2[0]]) / 2)


def _event_table(durations: np.ndarray, events: np.ndarray):
    """(times, at_risk, observed, censored) at 0 (or the earliest time, if negative) and
    each distinct time, and S(t) there: lifelines' `survival_table_from_events` and
    Kaplan–Meier estimate, exp(Σ log(n − d) − log(n)), in the same operation order."""
    birth = min(0.0, float(durations.min()))
    times = np.unique(np.append(durations, birth))
    at = np.searchsorted(times, durations)
    removed = np.bincount(at, minlength=len(times))
    observed = np.bincount(at[events.astype(bool)], minlength=len(times))
    at_risk = len(durations) - np.concatenate([[0], np.cumsum(removed)[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.exp(np.cumsum(np.log(at_risk - observed) - np.log(at_risk)))
    return times, at_risk, observed, removed - observed, surv


def _curve(group: str, durations: pd.Series, events: pd.Series, z: float) -> KMCurve:
    t, n_risk, d, censored, surv = _event_table(durations.to_numpy(dtype=float),
                                                events.to_numpy(dtype=int))
    n_risk, d = n_risk.astype(float), d.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(d > 0, d / (n_risk * (n_risk - d)), 0.0)
        se = np.sqrt(np.cumsum(step))
        lower = surv * np.exp(-z * se)
        upper = np.minimum(surv * np.exp(z * se), 1.0)
    bad = ~np.isfinite(se) | (surv <= 0)
    lower[bad], upper[bad] = np.nan, np.nan
    xmax = float(t[-1]) if len(t) else float("nan")
    return KMCurve(
        group=group, timeline=t, survival=surv, lower=lower, upper=upper,
        at_risk=n_risk.astype(int), events=d.astype(int),
        censored=censored.astype(int), n=int(len(durations)),
        n_events=int(events.sum()),
        median=_r_quantile(t, 1 - surv, 0.5, xmax),
        median_lower=_r_quantile(t, 1 - lower, 0.5, xmax),
        median_upper=_r_quantile(t, 1 - upper, 0.5, xmax),
    )


def kaplan_meier(df: pd.DataFrame, duration: str, event: str, group: str | None = None,
                 conf_level: float = 0.95, status_coding: tuple | None = None) -> KMResult:
    """Kaplan–Meier by `group` (or overall), R `survfit(..., conf.type = "log")`.

    Rows with a missing duration, event or group are excluded and counted in
    `n_excluded`. `event` must be bool or 0/1 unless `status_coding=(censored,
    event)` names the coding; no complete rows is an error (`SurvivalInputError`).
    """
    cols = [duration, event] + ([group] if group else [])
    data, n_excl = complete_rows(df, cols, f"Kaplan-Meier of {duration!r}")
    data = data.assign(**{duration: durations(data[duration], duration),
                          event: event_indicator(data[event], event, status_coding)})
    z = float(norm.ppf(0.5 + conf_level / 2))
    keys = [("all", data)] if group is None else [
        (level_name(k), g) for k, g in data.groupby(group, sort=True)]
    curves = {k: _curve(k, g[duration].astype(float), g[event].astype(int), z) for k, g in keys}
    summary = pd.DataFrame([
        {"group": k, "n": c.n, "events": c.n_events, "median": c.median,
         "lower": c.median_lower, "upper": c.median_upper} for k, c in curves.items()])
    return KMResult(curves=curves, summary=summary, conf_level=conf_level, n_excluded=n_excl)


def follow_up(df: pd.DataFrame, duration: str, event: str,
              conf_level: float = 0.95, status_coding: tuple | None = None) -> KMResult:
    """Reverse Kaplan–Meier median follow-up: R `survfit(Surv(time, 1 - status) ~ 1)`."""
    flipped, _ = complete_rows(df[[duration, event]], [duration, event],
                               f"reverse Kaplan-Meier follow-up of {duration!r}")
    flipped = flipped.assign(**{event: 1 - event_indicator(flipped[event], event, status_coding)})
    res = kaplan_meier(flipped, duration, event, conf_level=conf_level)
    n_excl = len(df) - len(flipped)
    return KMResult(curves=res.curves, summary=res.summary, conf_level=conf_level,
                    n_excluded=n_excl)


def level_name(value) -> str:
    """Group labels: booleans as yes/no, everything else as its string."""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    return str(value)
