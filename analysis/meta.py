"""Inverse-variance pooling of per-center estimates, as R `metafor::rma(yi, vi, method=...)`.

`pool(yi, vi)` gives, from k estimates (e.g. per-center log hazard ratios) and their
variances:

* **Fixed effect** (`method = "FE"`): weights 1/v_i.
* **DerSimonian–Laird** (`"DL"`): τ² = max(0, (Q − (k − 1)) / (Σw − Σw²/Σw)). The floor
  at 0 is metafor's (statsmodels lets τ² go negative).
* **REML** (`"REML"`): τ² maximises the restricted likelihood over τ² ≥ 0, solved to
  machine precision (metafor's Fisher scoring stops at a change < 1e−5 by default; the
  golden script tightens it to 1e−12 so the two agree to 1e−8).
* Cochran's Q (fixed-effect weights, k − 1 df) and its p; I² and H² as metafor reports
  them: from Q for the fixed-effect model, I² = τ²/(τ² + s²) and H² = (τ² + s²)/s² with
  the "typical" within-center variance s² = (k − 1)Σw / ((Σw)² − Σw²) for the others.

Estimates get a Wald z-test and a normal 95% CI (metafor's default `test = "z"`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.stats import chi2, norm

METHODS = ("FE", "DL", "REML")


@dataclass(frozen=True, eq=False)
class MetaResult:
    """`summary`: one row per method (method, estimate, se, z, p_value, lower, upper, tau2,
    i2, h2); `q`, `q_dof`, `q_p`: Cochran's heterogeneity test; `k` estimates pooled."""

    summary: pd.DataFrame
    q: float
    q_dof: int
    q_p: float
    k: int

    def row(self, method: str) -> dict:
        return self.summary.set_index("method").loc[method].to_dict()


def pool(yi: Sequence[float], vi: Sequence[float], conf_level: float = 0.95) -> MetaResult:
    """Fixed-effect, DerSimonian–Laird and REML pooling of `yi` with variances `vi`."""
    y, v = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    if len(y) != len(v) or len(y) == 0:
        raise ValueError("pooling needs as many variances as estimates, and at least one")
    if not (np.isfinite(y).all() and np.isfinite(v).all() and (v > 0).all()):
        raise ValueError("pooling needs finite estimates and positive finite variances")
    k = len(y)
    w = 1 / v
    mu_fe = (w * y).sum() / w.sum()
    q = float((w * (y - mu_fe) ** 2).sum())
    dof = k - 1
    s2 = dof * w.sum() / (w.sum() ** 2 - (w ** 2).sum()) if k > 1 else np.nan
    z = float(norm.ppf(0.5 + conf_level / 2))
    rows = []
    for method in METHODS:
        tau2 = {"FE": 0.0, "DL": _tau2_dl(y, v, q), "REML": _tau2_reml(y, v)}[method]
        ws = 1 / (v + tau2)
        est = float((ws * y).sum() / ws.sum())
        se = float(1 / np.sqrt(ws.sum()))
        if method == "FE":
            i2 = max(0.0, 100 * (q - dof) / q) if q > 0 else 0.0
            h2 = q / dof if dof > 0 else np.nan
        else:
            i2 = 100 * tau2 / (s2 + tau2) if k > 1 else np.nan
            h2 = (s2 + tau2) / s2 if k > 1 else np.nan
        rows.append({"method": method, "estimate": est, "se": se, "z": est / se,
                     "p_value": float(2 * norm.sf(abs(est / se))), "lower": est - z * se,
                     "upper": est + z * se, "tau2": tau2, "i2": i2, "h2": h2})
    return MetaResult(summary=pd.DataFrame(rows), q=q, q_dof=dof,
                      q_p=float(chi2.sf(q, dof)) if dof > 0 else np.nan, k=k)


def _tau2_dl(y, v, q) -> float:
    w = 1 / v
    if len(y) < 2:
        return 0.0
    return float(max(0.0, (q - (len(y) - 1)) / (w.sum() - (w ** 2).sum() / w.sum())))


def _reml_score(tau2, y, v) -> float:
    """d/dτ² of the restricted log-likelihood."""
    w = 1 / (v + tau2)
    mu = (w * y).sum() / w.sum()
    return float(0.5 * (-(w.sum()) + (w ** 2).sum() / w.sum() + (w ** 2 * (y - mu) ** 2).sum()))


def _tau2_reml(y, v) -> float:
    if len(y) < 2 or _reml_score(0.0, y, v) <= 0:
        return 0.0
    hi = max(float(np.var(y)), float(v.max()), 1e-8)
    while _reml_score(hi, y, v) > 0:
        hi *= 2
    return float(brentq(_reml_score, 0.0, hi, args=(y, v), xtol=1e-15,
                        rtol=4 * np.finfo(float).eps,
                        maxiter=500))
