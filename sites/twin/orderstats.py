"""A small seeded solver that fills one numeric column to hit published summaries.

A published "median (range)" per subgroup fixes order statistics, not values.
`solve_column` starts from random values and does a greedy, seeded local search:
each step changes one patient's value either to a fresh random draw or to one of
the target numbers themselves (so that exact medians, minima and maxima are
reachable), and keeps the change when the total miss does not grow.

Targets are tuples:
- ("median" | "min" | "max", mask, value): exact summaries of a subgroup;
- ("mwu", mask_a, mask_b, p): a two-sided Mann-Whitney p-value (soft, +-0.02 free);
- ("kruskal", mask, codes, p): a Kruskal-Wallis p-value over integer-coded groups (soft).
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def _miss(x: np.ndarray, target: tuple) -> float:
    """Exact targets score by counts on the wrong side (0 iff the summary holds)."""
    kind = target[0]
    if kind in ("median", "min", "max"):
        _, mask, v = target
        g = x[mask]
        below, above, hit = int(np.sum(g < v)), int(np.sum(g > v)), bool(np.any(g == v))
        if kind == "min":
            return below + (0 if hit else 1)
        if kind == "max":
            return above + (0 if hit else 1)
        k = len(g)
        if k % 2:
            room = (k - 1) // 2
            return max(0, below - room) + max(0, above - room) + (0 if hit else 1)
        # Even group: the mean of the two middle values must equal v.
        got = float(np.median(g))
        far = 0.0 if got == v else 0.5 + 0.5 * min(1.0, abs(got - v) / (abs(v) + 1.0))
        return max(0, below - k // 2) + max(0, above - k // 2) + far
    raise ValueError(f"unknown target kind {kind!r}")


def _soft(x: np.ndarray, target: tuple) -> float:
    """Soft p-value targets: distance beyond a 0.02 tolerance, in units of 0.05."""
    if target[0] == "mwu":
        _, a, b, p = target
        got = stats.mannwhitneyu(x[a], x[b], alternative="two-sided").pvalue
    else:
        _, mask, codes, p = target
        got = stats.kruskal(*[x[mask & (codes == k)] for k in np.unique(codes[mask])]).pvalue
    return max(0.0, abs(got - p) - 0.02) / 0.05


def total_miss(x: np.ndarray, targets: list[tuple], penalty=None) -> float:
    """Sum of misses over the exact targets (0 means every summary holds)."""
    extra = penalty(x) if penalty is not None else 0.0
    return float(sum(_miss(x, t) for t in targets if t[0] in _EXACT)) + extra


def soft_miss(x: np.ndarray, targets: list[tuple]) -> float:
    """Sum of misses over the p-value targets."""
    return float(sum(_soft(x, t) for t in targets if t[0] not in _EXACT))


_EXACT = ("median", "min", "max")


def solve_column(
    rng: np.random.Generator,
    n: int,
    targets: list[tuple],
    lo: float,
    hi: float,
    decimals: int = 1,
    log: bool = True,
    n_iter: int = 3000,
    penalty=None,
    active: np.ndarray | None = None,
    fill: float = np.nan,
    soft_iter: int = 1500,
) -> np.ndarray:
    """Values for n patients (`fill` outside `active`) that meet the targets as well as possible."""
    active = np.ones(n, bool) if active is None else active
    idx = np.flatnonzero(active)
    pins = sorted({t[-1] for t in targets
                   if t[0] in _EXACT and round(t[-1], decimals) == t[-1]})
    if (hi - lo) * 10 ** decimals > 1000:
        # Fine-grained column: no more than two patients on any published number.
        user_penalty = penalty
        pin_arr = np.array(pins)

        def penalty(x: np.ndarray) -> float:
            extra = user_penalty(x) if user_penalty is not None else 0.0
            counts = (x[idx][:, None] == pin_arr[None, :]).sum(0)
            return extra + float(np.maximum(counts - 2, 0).sum())

    def draw(k: int) -> np.ndarray:
        if log:
            v = np.exp(rng.uniform(np.log(max(lo, 1e-3)), np.log(hi), size=k))
        else:
            v = rng.uniform(lo, hi, size=k)
        return np.round(v, decimals)

    x = np.full(n, fill, dtype=float)
    x[idx] = draw(len(idx))

    def propose() -> tuple:
        i = rng.choice(idx)
        if rng.random() < 0.3:
            j = rng.choice(idx)
            return (i, j), (x[j], x[i])
        if pins and rng.random() < 0.5:
            return (i,), (pins[rng.integers(len(pins))],)
        return (i,), (draw(1)[0],)

    has_soft = any(t[0] not in _EXACT for t in targets)
    best = total_miss(x, targets, penalty)
    best_soft = soft_miss(x, targets) if has_soft else 0.0
    soft_steps = 0
    for step in range(n_iter):
        if best == 0.0 and (best_soft == 0.0 or soft_steps >= soft_iter):
            break
        soft_steps += best == 0.0
        at, new = propose()
        old = x[list(at)].copy()
        x[list(at)] = new
        miss = total_miss(x, targets, penalty)
        # Exact targets first; p-values only among moves that keep the exact ones.
        if miss < best or (miss == best and best > 0 and step < n_iter // 2):
            best = miss
            best_soft = soft_miss(x, targets) if has_soft else 0.0
            continue
        if miss == best and has_soft:
            soft = soft_miss(x, targets)
            if soft <= best_soft:
                best_soft = soft
                continue
        x[list(at)] = old
    return x
