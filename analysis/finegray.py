"""Fine–Gray subdistribution hazards regression, as R `cmprsk::crr(ftime, fstatus, cov1)`.

The model (Fine & Gray 1999, JASA 94:496–509): a Cox-type model for the subdistribution
hazard of the event of interest, where patients who had a competing event stay in the
risk set with weight G(t−)/G(T_i−), G the Kaplan–Meier of the censoring distribution
(all failures count as censored for G). Breslow handling of ties.

What makes the numbers equal to crr's:
* **Iteration.** crr's own Newton–Raphson from 0 with step halving (Armijo constant 1e−4,
  at most 20 halvings) and its stopping rule max|score|·max(|b|, 1) < max(|loglik|, 1)·gtol
  (gtol = 1e−6, maxiter = 10). We take the same steps, so we stop at the same iterate
  (crr's coefficients are not the exact root; a fully converged fit would differ in the
  7th digit).
* **Variance.** The sandwich H⁻¹ (Σ_i (η_i + ψ_i)(η_i + ψ_i)ᵀ) H⁻¹ of Fine & Gray, where
  η_i is subject i's score residual and ψ_i the correction for estimating G.
  Every sum over risk sets is a cumulative sum over sorted times, so 100,000 patients
  take well under a second.
Only fixed covariates and one censoring group (crr's `cov1`, no `cov2`/`cengroup`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from analysis.competing import CENSORED, COMPETING, EVENT, code_status
from analysis.cox import design_matrix


@dataclass(frozen=True, eq=False)
class FineGrayResult:
    """`summary`: term, variable, coef, shr (exp(coef)), se, z, p_value, shr_lower, shr_upper."""

    summary: pd.DataFrame
    covariance: pd.DataFrame
    n: int
    events: int
    competing_events: int
    n_excluded: int
    log_pseudo_likelihood: float
    converged: bool
    iterations: int


def fine_gray(df: pd.DataFrame, time: str, status: str, covariates: Sequence[str],
              categorical: Mapping[str, str] | None = None, *, event: Any = 1,
              competing: Sequence[Any] = (2,), censored: Any = 0, gtol: float = 1e-6,
              maxiter: int = 10, conf_level: float = 0.95) -> FineGrayResult:
    """Fit `crr(time, status, cov1 = <design of covariates>)`; complete cases only."""
    cols = [time, status, *covariates]
    if df.empty:
        raise ValueError("no rows: a Fine–Gray model needs at least one patient")
    data = df.dropna(subset=cols)
    codes = code_status(data[status], status, event, competing, censored)
    if not (codes == EVENT).any():
        raise ValueError(f"column {status!r}: no {event!r} events, the model cannot be fitted")
    x, terms = design_matrix(data, covariates, categorical)
    const = [c for c in x.columns if x[c].nunique() < 2]
    if const:
        raise ValueError(f"covariate term(s) {const} are constant in the data")
    order = np.argsort(data[time].to_numpy(dtype=float), kind="stable")
    t = data[time].to_numpy(dtype=float)[order]
    m = codes[order]
    X = x.to_numpy(dtype=float)[order]
    model = _Model(t, m, X)
    b, ok, it = _newton(model, gtol, maxiter)
    lik, _, info = model.derivatives(b)
    hinv = np.linalg.inv(info)
    cov = hinv @ model.meat(b) @ hinv.T
    se = np.sqrt(np.diag(cov))
    zc = float(norm.ppf(0.5 + conf_level / 2))
    term_var = {tm: v for v, ts in terms.items() for tm in ts}
    names = list(x.columns)
    summary = pd.DataFrame({
        "term": names, "variable": [term_var[n] for n in names], "coef": b,
        "shr": np.exp(b), "se": se, "z": b / se, "p_value": 2 * norm.sf(np.abs(b / se)),
        "shr_lower": np.exp(b - zc * se), "shr_upper": np.exp(b + zc * se)})
    return FineGrayResult(
        summary=summary, covariance=pd.DataFrame(cov, index=names, columns=names),
        n=len(data), events=int((codes == EVENT).sum()),
        competing_events=int((codes == COMPETING).sum()), n_excluded=len(df) - len(data),
        log_pseudo_likelihood=-lik, converged=ok, iterations=it)


def _newton(model: _Model, gtol: float, maxiter: int) -> tuple[np.ndarray, bool, int]:
    """crr's iteration: Newton from 0, step halving, crr's stopping rule."""
    b = np.zeros(model.p)
    for it in range(maxiter + 1):
        lik, score, info = model.derivatives(b)
        if np.max(np.abs(score) * np.maximum(np.abs(b), 1)) < max(abs(lik), 1) * gtol:
            return b, True, it
        if it == maxiter:
            return b, False, it
        step = -np.linalg.solve(info, score)
        for _ in range(21):
            new = model.loglik(b + step)
            if np.isfinite(new) and new <= lik + 1e-4 * float(step @ score):
                break
            step = step * 0.5
        else:
            return b, False, it
        b = b + step
    return b, False, maxiter


class _Model:
    """Sorted data and the weighted risk-set sums of crr (minus log pseudo-likelihood)."""

    def __init__(self, t: np.ndarray, m: np.ndarray, X: np.ndarray):
        self.t, self.m, self.X, self.p = t, m, X, X.shape[1]
        n = len(t)
        first = np.searchsorted(t, t, side="left")          # index of the first tie
        at_risk = n - first                                   # Y(t_i)
        # censoring KM just before each subject's time: G(t_i-)
        ut, inv = np.unique(t, return_inverse=True)
        cens = np.bincount(inv, weights=(m == CENSORED).astype(float), minlength=len(ut))
        y_ut = at_risk[np.searchsorted(t, ut, side="left")].astype(float)
        g_after = np.cumprod(1 - cens / y_ut)
        g_before = np.concatenate([[1.0], g_after[:-1]])
        self.G = g_before[inv]
        self.ut, self.inv, self.cens_ut, self.y_ut = ut, inv, cens, y_ut
        fail = m == EVENT
        self.fu, self.fd = np.unique(t[fail], return_counts=True)  # distinct failure times
        self.fd = self.fd.astype(float)
        self.fidx = np.searchsorted(t, self.fu, side="left")       # first subject at u
        self.g_fu = self.G[self.fidx]
        self.comp = m == COMPETING
        # competing subjects with time < u, for each failure time u
        self.ncomp_before = np.searchsorted(np.flatnonzero(self.comp), self.fidx, side="left")

    def _sums(self, b):
        """S0, S1, S2 at each distinct failure time; e = exp(Xb)."""
        X, e = self.X, np.exp(self.X @ b)
        xx = np.einsum("ni,nj->nij", X, X)

        def suffix(a):  # Σ_{j >= i}
            return np.cumsum(a[::-1], axis=0)[::-1]

        def prefix_comp(a):  # Σ over competing j with index < fidx, weighted by 1/G_j
            w = a[self.comp] / self.G[self.comp].reshape((-1,) + (1,) * (a.ndim - 1))
            c = np.concatenate([np.zeros((1,) + a.shape[1:]), np.cumsum(w, axis=0)])
            return c[self.ncomp_before]

        out = []
        for a in (e, e[:, None] * X, e[:, None, None] * xx):
            g = self.g_fu.reshape((-1,) + (1,) * (a.ndim - 1))
            out.append(suffix(a)[self.fidx] + g * prefix_comp(a))
        return e, out

    def loglik(self, b) -> float:
        """Minus the log pseudo-likelihood (what crr minimises)."""
        eta = self.X @ b
        _, (s0, _, _) = self._sums(b)
        return float(-eta[self.m == EVENT].sum() + (self.fd * np.log(s0)).sum())

    def derivatives(self, b):
        eta = self.X @ b
        _, (s0, s1, s2) = self._sums(b)
        xbar = s1 / s0[:, None]
        lik = float(-eta[self.m == EVENT].sum() + (self.fd * np.log(s0)).sum())
        score = -self.X[self.m == EVENT].sum(axis=0) + (self.fd[:, None] * xbar).sum(axis=0)
        info = np.einsum("u,uij->ij", self.fd, s2 / s0[:, None, None]
                         - np.einsum("ui,uj->uij", xbar, xbar))
        return lik, score, info

    def meat(self, b) -> np.ndarray:
        """Σ_i (η_i + ψ_i)(η_i + ψ_i)ᵀ of Fine & Gray's sandwich variance."""
        t, m, X, G = self.t, self.m, self.X, self.G
        e, (s0, s1, _) = self._sums(b)
        xbar = s1 / s0[:, None]
        fd = self.fd
        # η_i: dN_i part, minus e_i Σ_u w_i(u) (x_i - xbar_u) d_u / S0_u
        k = np.searchsorted(self.fu, t, side="right")        # failure times <= t_i
        a = np.concatenate([[0.0], np.cumsum(fd / s0)])
        bb = np.concatenate([np.zeros((1, self.p)), np.cumsum((fd / s0)[:, None] * xbar, axis=0)])
        ga = np.concatenate([[0.0], np.cumsum(fd * self.g_fu / s0)])
        gb = np.concatenate([np.zeros((1, self.p)),
                             np.cumsum((fd * self.g_fu / s0)[:, None] * xbar, axis=0)])
        eta = -e[:, None] * (X * a[k][:, None] - bb[k])
        later = (X * (ga[-1] - ga[k])[:, None] - (gb[-1] - gb[k])) / G[:, None]
        eta -= np.where(self.comp[:, None], e[:, None] * later, 0.0)
        fail = m == EVENT
        own = np.searchsorted(self.fu, t[fail], side="left")
        eta[fail] += X[fail] - xbar[own]
        # ψ_i: q(u) at each distinct time u, integrated against the censoring martingale
        first_ut = np.searchsorted(t, self.ut, side="left")
        comp_idx = np.flatnonzero(self.comp)
        nb = np.searchsorted(comp_idx, first_ut, side="left")  # competing with time < u
        w = (e / G)[self.comp]
        e0 = np.concatenate([[0.0], np.cumsum(w)])[nb]
        e1 = np.concatenate([np.zeros((1, self.p)),
                             np.cumsum(w[:, None] * X[self.comp], axis=0)])[nb]
        kk = np.searchsorted(self.fu, self.ut, side="left")   # failure times >= u
        ga_ge, gb_ge = ga[-1] - ga[kk], gb[-1] - gb[kk]
        q = e1 * ga_ge[:, None] - e0[:, None] * gb_ge
        dlc = np.cumsum((self.cens_ut / self.y_ut ** 2)[:, None] * q, axis=0)
        psi = -dlc[self.inv]
        cens = m == CENSORED
        psi[cens] += (q / self.y_ut[:, None])[self.inv[cens]]
        r = eta + psi
        return r.T @ r
