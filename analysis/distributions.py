"""Comparing a continuous variable across groups: Mann–Whitney U or Kruskal–Wallis.

The p-value is the one SPSS prints as "Asymp. Sig. (2-tailed)": the normal
approximation of U with the tie-corrected variance and **no** continuity
correction, i.e. `scipy.stats.mannwhitneyu(x, y, method="asymptotic",
use_continuity=False)`. (R's `wilcox.test` defaults differ: exact p for small
samples without ties, continuity correction otherwise; its
`correct = FALSE, exact = FALSE` matches this.) Kruskal–Wallis is
`scipy.stats.kruskal` (chi-square approximation with tie correction), which is
SPSS's asymptotic significance too. Medians and ranges describe each group, as
in the paper's Table 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from scipy.stats import kruskal, mannwhitneyu

from analysis.survival import level_name


@dataclass(frozen=True, eq=False)
class DistributionResult:
    """Test of `value` across groups; `summary` has n, median, min, max per group."""

    test: str
    statistic: float
    p_value: float
    n: int
    n_excluded: int
    summary: pd.DataFrame


def compare_distributions(df: pd.DataFrame, value: str, group: str) -> DistributionResult:
    """Mann–Whitney U (two groups) or Kruskal–Wallis (three or more groups).

    Rows missing `value` or `group` are excluded and counted. With fewer than
    two non-empty groups no test is run (test "none", p NaN).
    """
    data = df.dropna(subset=[value, group])
    labels = data[group].map(level_name)
    values = data[value].astype(float)
    samples = {k: v.to_numpy() for k, v in values.groupby(labels, sort=True)}
    summary = pd.DataFrame([
        {"group": k, "n": len(v), "median": float(pd.Series(v).median()),
         "min": float(v.min()), "max": float(v.max())} for k, v in samples.items()],
        columns=["group", "n", "median", "min", "max"])
    base = dict(n=len(data), n_excluded=len(df) - len(data), summary=summary)
    if len(samples) < 2:
        return DistributionResult(test="none", statistic=float("nan"),
                                  p_value=float("nan"), **base)
    if len(samples) == 2:
        x, y = samples.values()
        res = mannwhitneyu(x, y, alternative="two-sided", method="asymptotic",
                           use_continuity=False)
        return DistributionResult(test="mann_whitney", statistic=float(res.statistic),
                                  p_value=float(res.pvalue), **base)
    res = kruskal(*samples.values())
    return DistributionResult(test="kruskal_wallis", statistic=float(res.statistic),
                              p_value=float(res.pvalue), **base)
