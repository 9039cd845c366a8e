"""Medians, ranges and rank tests from per-site histograms: the declared approximation.

A median, a range or a Mann–Whitney U needs the values themselves, which must not cross
sites. Each site instead counts its values in bins of a **relative** width `r` (the policy's
`histogram_resolution`, default 0.05): a positive value v falls in bin k = floor(log(v) /
log(1 + r)), i.e. [(1+r)^k, (1+r)^(k+1)); negative values mirror that; 0 has its own bin.
The bin's code `(sign, k)` and its count leave the site, never the value.

The central puts every patient at the midpoint of their bin and runs the usual statistics
(`analysis.distributions.compare_distributions`) on those values. The error is bounded:

* median, min and max: rounding to the midpoint is monotone, so each order statistic moves by
  at most half its bin's width; `median_max_error` is the half width of the bin(s) holding the
  middle value(s), `range_max_error` the larger half width of the extreme bins (0 when every
  value sits at 0);
* Mann–Whitney U (two groups): only pairs from different groups that share a bin can change
  their contribution (by at most 1/2 each), so |U~ - U| <= u_max_error = 1/2 * sum over bins of
  n1(bin) * n2(bin). The p-value is computed from U~ and labelled approximate.
* Kruskal–Wallis (three or more groups) is computed on the binned values; no bound is given.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd


def bin_codes(values, resolution: float) -> list[tuple[int, int]]:
    """(sign, k) per value; see the module docstring."""
    v = np.asarray(values, dtype=float)
    step = math.log1p(resolution)
    sign = np.sign(v).astype(int)
    with np.errstate(divide="ignore"):
        k = np.where(v == 0, 0, np.floor(np.log(np.abs(np.where(v == 0, 1, v))) / step)).astype(int)
    return list(zip(sign.tolist(), k.tolist(), strict=True))


def edges(sign: int, k: int, resolution: float) -> tuple[float, float]:
    """The bin's [low, high) on the value scale."""
    if sign == 0:
        return 0.0, 0.0
    a, b = (1 + resolution) ** k, (1 + resolution) ** (k + 1)
    return (a, b) if sign > 0 else (-b, -a)


def midpoint(sign: int, k: int, resolution: float) -> float:
    lo, hi = edges(sign, k, resolution)
    return (lo + hi) / 2


def half_width(sign: int, k: int, resolution: float) -> float:
    lo, hi = edges(sign, k, resolution)
    return (hi - lo) / 2


def expand(counts: pd.DataFrame, resolution: float) -> pd.DataFrame:
    """Pooled (group, sign, k, count) rows -> one row per patient: group, value, half_width."""
    if counts.empty:
        return pd.DataFrame({"group": pd.Series(dtype=object), "value": pd.Series(dtype=float),
                             "half_width": pd.Series(dtype=float)})
    mids = [midpoint(s, k, resolution) for s, k in zip(counts["sign"], counts["k"], strict=True)]
    halves = [half_width(s, k, resolution) for s, k in zip(counts["sign"], counts["k"], strict=True)]
    rep = counts["count"].astype(int).to_numpy()
    return pd.DataFrame({"group": np.repeat(counts["group"].to_numpy(), rep),
                         "value": np.repeat(mids, rep), "half_width": np.repeat(halves, rep)})


def error_bounds(rows: pd.DataFrame) -> pd.DataFrame:
    """Per group: median_max_error and range_max_error (see the module docstring)."""
    out = []
    for g, part in rows.groupby("group", sort=True):
        part = part.sort_values("value", kind="stable")
        n = len(part)
        hw = part["half_width"].to_numpy()
        middle = [hw[(n - 1) // 2], hw[n // 2]]
        out.append({"group": g, "median_max_error": float(max(middle)),
                    "range_max_error": float(max(hw[0], hw[-1]))})
    return pd.DataFrame(out, columns=["group", "median_max_error", "range_max_error"])


def u_max_error(counts: pd.DataFrame) -> float:
    """1/2 * sum over bins of n1 * n2 for a two-group histogram (NaN for other group counts)."""
    wide = counts.pivot_table(index=["sign", "k"], columns="group", values="count", aggfunc="sum",
                              fill_value=0)
    if wide.shape[1] != 2:
        return float("nan")
    return float(0.5 * (wide.iloc[:, 0] * wide.iloc[:, 1]).sum())
