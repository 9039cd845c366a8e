"""Fisher–Freeman–Halton exact test of an r×c table, as R `fisher.test(table)`.

With the margins fixed, a table's probability is Π row! Π col! / (n! Π cell!).
The two-sided p-value is the total probability of every table with the same
margins that is no more probable than the observed one, with R's relative
tolerance (P ≤ P_obs · (1 + 1e-7)). The tables are enumerated column by
column (each column's split over the remaining row totals), which is exact
and quick for the small tables this test is for (a 3×2 table of 93 patients:
milliseconds), helped by the network algorithm's idea of counting or dropping
whole groups of partial tables by bounds. It is not the full network
algorithm: a large table (R's 4×4 'Job satisfaction' example, n = 96, takes
minutes) stops after `MAX_STEPS` with `ExactTestTooLarge` instead, and the
caller says which test it ran instead.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.special import gammaln

MAX_STEPS = 50_000  # (partial-table group, column split) pairs: a few seconds of Python
_REL = 1 + 1e-7  # R fisher.test: relErr


class ExactTestTooLarge(ValueError):
    """The table has too many same-margin tables to enumerate here."""


def _splits(total: int, caps: np.ndarray) -> np.ndarray:
    """Every vector v with 0 <= v <= caps and sum(v) == total (one per row)."""
    if len(caps) == 1:
        return np.array([[total]]) if total <= caps[0] else np.zeros((0, 1), dtype=int)
    rest_cap = int(caps[1:].sum())
    out = []
    for first in range(max(0, total - rest_cap), min(int(caps[0]), total) + 1):
        tail = _splits(total - first, caps[1:])
        if len(tail):
            out.append(np.column_stack([np.full(len(tail), first), tail]))
    return np.vstack(out) if out else np.zeros((0, len(caps)), dtype=int)


def _column_bounds(caps: np.ndarray, total: int) -> tuple[float, float]:
    """Bounds on -Σ log(v_i!) over splits v of `total` with v <= caps (row totals left).

    Max: the most even split (log-factorials are convex); min: fill the largest
    caps first. Ignoring the coupling between columns makes both valid bounds.
    """
    even = np.zeros(len(caps), dtype=int)
    left = total
    order = np.argsort(caps)
    for k, i in enumerate(order):  # water-filling: smallest caps first
        share = min(int(caps[i]), left // (len(caps) - k))
        even[i] = share
        left -= share
    full = np.zeros(len(caps), dtype=int)
    left = total
    for i in order[::-1]:
        full[i] = min(int(caps[i]), left)
        left -= full[i]
    return float(-gammaln(even + 1).sum()), float(-gammaln(full + 1).sum())


@lru_cache(maxsize=100_000)
def _future_bounds(rem: tuple, later: tuple) -> tuple[float, float]:
    caps = np.array(rem)
    bounds = [_column_bounds(caps, c) for c in later]
    return sum(b[0] for b in bounds), sum(b[1] for b in bounds)


def fisher_freeman_halton(table) -> float:
    """Two-sided exact p of an r×c contingency table (counts), as R's fisher.test."""
    t = np.asarray(table, dtype=int)
    if t.ndim != 2 or (t < 0).any():
        raise ValueError("a contingency table of non-negative counts is needed")
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]
    if min(t.shape) < 2:
        return 1.0
    if t.shape[0] < t.shape[1]:
        t = t.T  # enumerate over the shorter side: fewer splits per column
    rows, cols = t.sum(axis=1), t.sum(axis=0)
    n = int(rows.sum())
    const = gammaln(rows + 1).sum() + gammaln(cols + 1).sum() - gammaln(n + 1)
    thr = const - gammaln(t + 1).sum() + np.log(_REL)  # log P_obs, with R's tolerance
    # Partial tables (the first j columns) grouped by the row totals they leave:
    # state -> accumulated -Σ log(cell!) of each partial table. A partial table whose
    # every completion is at most as probable as the observed table is counted whole
    # (the completions' probabilities sum in closed form); one none of whose
    # completions can be is dropped (the network algorithm's bounds, relaxed).
    states = {tuple(rows): np.zeros(1)}
    p_value, steps = 0.0, 0
    for j in range(len(cols)):
        later = cols[j + 1:]
        nxt: dict[tuple, list[np.ndarray]] = {}
        for state, acc in states.items():
            caps = np.array(state)
            sp = _splits(int(cols[j]), caps)
            if not len(sp):
                continue
            w = -gammaln(sp + 1).sum(axis=1)
            for v, wv in zip(sp, w, strict=True):
                rem = caps - v
                a = acc + wv
                if not len(later):
                    p_value += float(np.exp(const + a[a <= thr - const]).sum())
                    continue
                r_left = int(rem.sum())
                mass = gammaln(r_left + 1) - gammaln(rem + 1).sum() - gammaln(later + 1).sum()
                hi, lo = _future_bounds(tuple(rem), tuple(int(c) for c in later))
                whole = const + a + hi <= thr
                p_value += float(np.exp(const + a[whole] + mass).sum())
                live = a[~whole & (const + a + lo <= thr)]
                if len(live):
                    nxt.setdefault(tuple(rem), []).append(live)
            steps += len(sp)
            if steps > MAX_STEPS:
                raise ExactTestTooLarge(f"more than {MAX_STEPS:,} enumeration steps: the table "
                                        "is too large for this exact test")
        states = {k: np.concatenate(v) for k, v in nxt.items()}
    return float(min(1.0, p_value))
