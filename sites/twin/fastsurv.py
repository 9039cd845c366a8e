"""Small, fast numpy versions of the log-rank test, Efron Cox and reverse KM.

Only for the calibration search in sites/twin/calibrate.py, which evaluates them
tens of thousands of times; the tests check the committed result with lifelines.
They follow lifelines' definitions (multivariate_logrank_test, CoxPHFitter with
Efron ties, KaplanMeierFitter median).
"""

from __future__ import annotations

import numpy as np
from scipy.special import chdtrc


def logrank_p(time: np.ndarray, event: np.ndarray, codes: np.ndarray) -> float:
    """p-value of the k-group log-rank test (codes are 0..k-1 integers)."""
    k = int(codes.max()) + 1
    ts = np.unique(time[event])
    at_risk = time[None, :] >= ts[:, None]
    died = (time[None, :] == ts[:, None]) & event[None, :]
    onehot = np.eye(k)[codes]
    n_g, d_g = at_risk @ onehot, died @ onehot
    n, d = n_g.sum(1), d_g.sum(1)
    obs_minus_exp = (d_g - n_g * (d / n)[:, None]).sum(0)
    frac = n_g / n[:, None]
    w = np.where(n > 1, d * (n - d) / np.maximum(n - 1, 1), 0.0)
    var = np.einsum("t,tij->ij", w, frac[:, :, None] * np.eye(k)[None] -
                    frac[:, :, None] * frac[:, None, :])
    z = obs_minus_exp[:-1]
    stat = float(z @ np.linalg.solve(var[:-1, :-1], z))
    return float(chdtrc(k - 1, stat))


def cox_hr(x: np.ndarray, time: np.ndarray, event: np.ndarray,
           beta: np.ndarray | None = None, n_iter: int = 30) -> np.ndarray:
    """Log hazard ratios of an Efron-ties Cox model by Newton-Raphson.

    A warm start (`beta`) that does not converge is retried from zero; a fit that
    still does not converge (e.g. a group without events) returns +-10 per term.
    """
    if beta is not None and np.all(np.abs(beta) < 5):
        b = _newton(x, time, event, beta.copy(), n_iter)
        if b is not None:
            return b
    b = _newton(x, time, event, np.zeros(x.shape[1]), n_iter)
    return np.full(x.shape[1], 10.0) if b is None else b


def _newton(x: np.ndarray, time: np.ndarray, event: np.ndarray, beta: np.ndarray,
            n_iter: int) -> np.ndarray | None:
    p = x.shape[1]
    ts = np.unique(time[event])
    at_risk = (time[None, :] >= ts[:, None]).astype(float)
    tied = ((time[None, :] == ts[:, None]) & event[None, :]).astype(float)
    n_tied = tied.sum(1)
    xx = x[:, :, None] * x[:, None, :]
    for _ in range(n_iter):
        w = np.exp(x @ beta)
        s0, s1, s2 = at_risk @ w, at_risk @ (w[:, None] * x), np.einsum("tn,nij->tij",
                                                                         at_risk * w, xx)
        t0, t1, t2 = tied @ w, tied @ (w[:, None] * x), np.einsum("tn,nij->tij", tied * w, xx)
        grad = (tied @ x).sum(0)
        hess = np.zeros((p, p))
        for ell in range(int(n_tied.max())):
            use = n_tied > ell
            a = np.where(use, ell / np.maximum(n_tied, 1), 0.0)
            phi0 = s0 - a * t0
            phi1 = s1 - a[:, None] * t1
            phi2 = s2 - a[:, None, None] * t2
            m1 = phi1 / phi0[:, None]
            grad -= (m1 * use[:, None]).sum(0)
            hess -= ((phi2 / phi0[:, None, None] - m1[:, :, None] * m1[:, None, :])
                     * use[:, None, None]).sum(0)
        step = np.linalg.solve(hess, grad)
        step = step * min(1.0, 1.0 / max(1e-12, float(np.max(np.abs(step)))))
        beta = beta - step
        if not np.all(np.isfinite(beta)) or np.max(np.abs(beta)) > 8:
            return None
        if np.max(np.abs(step)) < 1e-9:
            return beta
    return None


def km_median(time: np.ndarray, event: np.ndarray) -> float:
    """Kaplan-Meier median (first time the survival curve reaches <= 0.5), inf if never."""
    ts = np.unique(time[event])
    n = (time[None, :] >= ts[:, None]).sum(1)
    d = ((time[None, :] == ts[:, None]) & event[None, :]).sum(1)
    surv = np.cumprod(1 - d / n)
    below = np.flatnonzero(surv <= 0.5)
    return float(ts[below[0]]) if len(below) else float("inf")
