"""Do the centers differ? One exposure's effect on survival, center by center.

`center_heterogeneity(df, duration, event, exposure, center)` for a binary exposure
(bool or 0/1) returns:

* `stratified`: Cox model of the exposure stratified by center, R
  `coxph(Surv(t, e) ~ x + strata(center))` (each center its own baseline hazard).
* `logrank`: the log-rank test of the exposure stratified by center, R
  `survdiff(Surv(t, e) ~ x + strata(center))`.
* `per_center`: one row per center (center, n, events, coef, se, hr, hr_lower,
  hr_upper, p_value, estimable, note): `coxph(Surv(t, e) ~ x, subset = center == c)`.
  A center is not estimable, and left out of the pooling with the reason in `note`,
  when it has one exposure level only, or its partial likelihood is monotone (every
  event at a time when only one exposure level is at risk, or all events in one
  level: R would print a huge coefficient and "coefficient may be infinite").
* `pooled`: fixed-effect, DerSimonian–Laird and REML pooling of the estimable centers'
  log HRs with Cochran's Q and I² (`analysis.meta`, as `metafor::rma`).
* `interaction`: likelihood-ratio test of center × exposure: the stratified model
  against the one adding exposure × (center ≠ reference) terms, as R
  `anova(fit0, fit1)` on the two `coxph` fits (k − 1 df for k centers, fewer for
  interaction terms R finds aliased).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.stats import chi2

from analysis.cox import FIT_ERRORS, CoxResult, cox_ph
from analysis.logrank import LogRankResult, logrank
from analysis.meta import MetaResult, pool
from analysis.survinput import event_indicator
from analysis.survival import level_name

_X = "__exposure"


@dataclass(frozen=True, eq=False)
class HeterogeneityResult:
    stratified: CoxResult
    logrank: LogRankResult
    per_center: pd.DataFrame
    pooled: MetaResult | None
    interaction_chi2: float
    interaction_dof: int
    interaction_p: float
    exposure: str
    center: str

    @property
    def summary(self) -> pd.DataFrame:
        """The per-center rows followed by one row per pooling method."""
        rows = self.per_center.assign(kind="center")
        if self.pooled is not None:
            p = self.pooled.summary
            rows = pd.concat([rows, pd.DataFrame({
                "kind": "pooled", "center": p["method"], "coef": p["estimate"], "se": p["se"],
                "hr": np.exp(p["estimate"]), "hr_lower": np.exp(p["lower"]),
                "hr_upper": np.exp(p["upper"]), "p_value": p["p_value"]})], ignore_index=True)
        return rows


def _binary(values: pd.Series, column: str) -> pd.Series:
    levels = set(values.dropna().map(level_name))
    if not levels <= {"yes", "no"} and not levels <= {"0", "1", "0.0", "1.0"}:
        raise ValueError(f"column {column!r}: the exposure must be binary (bool or 0/1), "
                         f"found levels {sorted(levels)}")
    return values.map(lambda v: v if pd.isna(v) else float(bool(v)))


def _monotone(time: np.ndarray, status: np.ndarray, x: np.ndarray) -> str:
    """Why a binary covariate's Cox estimate is infinite, or '' if it is finite."""
    if len(np.unique(x)) < 2:
        return f"one exposure level only ({'yes' if x[0] else 'no'})"
    order = np.argsort(time, kind="stable")
    t, d, xs = time[order], status[order], x[order]
    first = np.searchsorted(t, t, side="left")              # risk set of row i: rows >= first
    lo = np.minimum.accumulate(xs[::-1])[::-1][first]
    hi = np.maximum.accumulate(xs[::-1])[::-1][first]
    mixed = (d == 1) & (lo != hi)
    informative = {lv: bool((mixed & (xs == lv)).any()) for lv in (0.0, 1.0)}
    if not all(informative.values()):
        return "monotone likelihood: the HR is infinite (no events in one exposure level " \
               "while both levels are at risk)"
    return ""


def center_heterogeneity(df: pd.DataFrame, duration: str, event: str, exposure: str,
                         center: str) -> HeterogeneityResult:
    """See the module docstring. Rows missing any of the four columns are excluded."""
    data = df.dropna(subset=[duration, event, exposure, center])
    if data.empty:
        raise ValueError(f"no complete rows in {[duration, event, exposure, center]}")
    data = data.assign(**{_X: _binary(data[exposure], exposure),
                          center: data[center].map(level_name)})
    stratified = cox_ph(data, duration, event, [_X], strata=center, diagnostics=False)
    stratified = _renamed(stratified, exposure)
    lr = logrank(data, duration, event, _X, strata=center)
    status = event_indicator(data[event], event).to_numpy()
    time = data[duration].to_numpy(dtype=float)
    rows = []
    centers = sorted(data[center].unique())
    for c in centers:
        m = (data[center] == c).to_numpy()
        row = {"center": c, "n": int(m.sum()), "events": int(status[m].sum()),
               "coef": np.nan, "se": np.nan, "hr": np.nan, "hr_lower": np.nan,
               "hr_upper": np.nan, "p_value": np.nan, "estimable": False, "note": ""}
        why = _monotone(time[m], status[m], data[_X].to_numpy()[m])
        if not why:
            try:
                s = cox_ph(data[m], duration, event, [_X], diagnostics=False).summary.iloc[0]
                row.update({k: float(s[k]) for k in ("coef", "se", "hr", "hr_lower",
                                                      "hr_upper", "p_value")}, estimable=True)
            except FIT_ERRORS as exc:
                why = f"{type(exc).__name__}: {exc}"
        row["note"] = why
        rows.append(row)
    per_center = pd.DataFrame(rows)
    ok = per_center[per_center["estimable"]]
    pooled = pool(ok["coef"], ok["se"] ** 2) if len(ok) else None
    inter = _interaction(data, duration, event, center, centers, stratified)
    return HeterogeneityResult(stratified=stratified, logrank=lr, per_center=per_center,
                               pooled=pooled, interaction_chi2=inter[0],
                               interaction_dof=inter[1], interaction_p=inter[2],
                               exposure=exposure, center=center)


def _interaction(data, duration, event, center, centers, base: CoxResult):
    terms = {f"{_X}:{c}": data[_X] * (data[center] == c) for c in centers[1:]}
    if not terms:
        return float("nan"), 0, float("nan")
    wide = data.assign(**terms)
    full = cox_ph(wide, duration, event, [_X, *terms], strata=center, diagnostics=False)
    dof = int(full.summary["coef"].notna().sum()) - int(base.summary["coef"].notna().sum())
    stat = 2 * (full.log_likelihood - base.log_likelihood)
    return float(stat), dof, float(chi2.sf(stat, dof)) if dof > 0 else float("nan")


def _renamed(res: CoxResult, exposure: str) -> CoxResult:
    s = res.summary.assign(term=exposure, variable=exposure)
    cov = res.covariance.rename(index={_X: exposure}, columns={_X: exposure})
    return replace(res, summary=s, covariance=cov)
