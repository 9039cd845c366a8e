"""Cross-tabulations and their tests: Pearson chi-square or Fisher's exact.

* Pearson chi-square is computed **without** Yates' continuity correction
  (`scipy.stats.chi2_contingency(..., correction=False)`): that is the
  "Pearson Chi-Square" line SPSS prints, and it reproduces the paper's p-values.
* Fisher's exact test is `scipy.stats.fisher_exact` on 2x2 tables (two-sided)
  and the Fisher–Freeman–Halton exact test (`analysis.exact`, R's
  `fisher.test`) on larger tables; scipy's r x c Fisher is a Monte Carlo
  approximation, so it is not used.
* Default rule (`test=None`): chi-square when every expected count is >= 5,
  otherwise the exact test (2x2 or r x c). If an r x c table is too large to
  enumerate, chi-square is run and the result's `note` says so.

The test actually used is always in `ProportionResult.test`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency, fisher_exact
from scipy.stats.contingency import expected_freq

from analysis.exact import ExactTestTooLarge, fisher_freeman_halton
from analysis.survival import level_name

TESTS = ("chi2", "fisher")


@dataclass(frozen=True, eq=False)
class ProportionResult:
    """Cross-tab of `variable` (rows) by `group` (columns) and its test.

    `summary`: long, one row per (group, value) with count, n (group total)
    and percent (within the group, as the paper's tables show).
    """

    table: pd.DataFrame
    test: str
    statistic: float
    dof: int
    p_value: float
    min_expected: float
    note: str
    n: int
    n_excluded: int
    summary: pd.DataFrame


def choose_test(table: np.ndarray) -> tuple[str, str]:
    """The default rule: returns (test, note)."""
    expected = expected_freq(table)
    if (expected >= 5).all():
        return "chi2", ""
    if table.shape == (2, 2):
        return "fisher", "expected count < 5: Fisher's exact test"
    small = int((expected < 5).sum())
    return "fisher", (f"{small} cell(s) with expected count < 5: Fisher–Freeman–Halton "
                      "exact test")


def compare_proportions(df: pd.DataFrame, variable: str, group: str,
                        test: str | None = None) -> ProportionResult:
    """Test independence of `variable` and `group` (both categorical or bool).

    `test` is "chi2", "fisher" or None for the default rule. Rows missing either
    column are excluded and counted in `n_excluded`.
    """
    if test is not None and test not in TESTS:
        raise ValueError(f"unknown test {test!r}; expected one of {TESTS} or None")
    data = df.dropna(subset=[variable, group])
    table = pd.crosstab(data[variable].map(level_name), data[group].map(level_name))
    counts = table.to_numpy()
    summary = _summary(table)
    base = dict(table=table, n=len(data), n_excluded=len(df) - len(data), summary=summary)
    if counts.shape[0] < 2 or counts.shape[1] < 2:
        return ProportionResult(test=test or "none", statistic=float("nan"), dof=0,
                                p_value=float("nan"), min_expected=float("nan"),
                                note="fewer than two levels observed: no test", **base)
    min_expected = float(expected_freq(counts).min())
    note = ""
    if test is None:
        test, note = choose_test(counts)
    if test == "fisher" and counts.shape == (2, 2):
        res = fisher_exact(counts)
        return ProportionResult(test="fisher", statistic=float(res.statistic), dof=0,
                                p_value=float(res.pvalue), min_expected=min_expected,
                                note=note, **base)
    if test == "fisher":
        try:
            p = fisher_freeman_halton(counts)
            return ProportionResult(test="fisher", statistic=float("nan"), dof=0, p_value=p,
                                    min_expected=min_expected,
                                    note=note or "Fisher–Freeman–Halton exact test", **base)
        except ExactTestTooLarge as exc:
            note = f"exact test not run ({exc}): Pearson chi-square instead"
    res = chi2_contingency(counts, correction=False)
    return ProportionResult(test="chi2", statistic=float(res.statistic), dof=int(res.dof),
                            p_value=float(res.pvalue), min_expected=min_expected,
                            note=note, **base)


def _summary(table: pd.DataFrame) -> pd.DataFrame:
    long = table.stack().rename("count").reset_index()
    long.columns = ["value", "group", "count"]
    totals = table.sum(axis=0)
    long["n"] = long["group"].map(totals).astype(int)
    long["percent"] = 100.0 * long["count"] / long["n"]
    return long[["group", "value", "count", "n", "percent"]].sort_values(
        ["group", "value"], ignore_index=True)
