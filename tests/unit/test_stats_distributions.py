"""Mann–Whitney U and Kruskal–Wallis (analysis/distributions.py).

The Mann–Whitney p is SPSS's "Asymp. Sig. (2-tailed)": normal approximation,
tie-corrected variance, no continuity correction. It is checked against that
formula computed independently here, and equals R's
`wilcox.test(x, y, exact = FALSE, correct = FALSE)$p.value`.
"""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from analysis.distributions import compare_distributions


def long(groups: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([(g, v) for g, vs in groups.items() for v in vs], columns=["grp", "x"])


def spss_mann_whitney_p(x, y) -> float:
    n1, n2 = len(x), len(y)
    ranks = rankdata(np.concatenate([x, y]))
    u = ranks[:n1].sum() - n1 * (n1 + 1) / 2
    n = n1 + n2
    _, counts = np.unique(np.concatenate([x, y]), return_counts=True)
    ties = ((counts ** 3 - counts) / 12).sum()
    var = n1 * n2 / (n * (n - 1)) * ((n ** 3 - n) / 12 - ties)
    z = (u - n1 * n2 / 2) / math.sqrt(var)
    return math.erfc(abs(z) / math.sqrt(2))


def test_mann_whitney_is_asymptotic_tie_corrected_without_continuity():
    x = [3.1, 2.4, 8.9, 481, 12, 12, 50, 7.6]
    y = [517, 27231, 94, 12, 255, 3.1, 1000, 2781, 60, 60]
    res = compare_distributions(long({"no": x, "yes": y}), "x", "grp")
    assert res.test == "mann_whitney"
    assert res.p_value == pytest.approx(spss_mann_whitney_p(np.array(x), np.array(y)), rel=1e-12)


def test_kruskal_wallis_matches_r():
    """R: kruskal.test(list(x, y, z)) from ?kruskal.test (Hollander & Wolfe)
        Kruskal-Wallis chi-squared = 0.77143, df = 2, p-value = 0.68
    """
    groups = {"a": [2.9, 3.0, 2.5, 2.6, 3.2], "b": [3.8, 2.7, 4.0, 2.4],
              "c": [2.8, 3.4, 3.7, 2.2, 2.0]}
    res = compare_distributions(long(groups), "x", "grp")
    assert res.test == "kruskal_wallis"
    assert res.statistic == pytest.approx(0.77143, rel=1e-4)
    assert res.p_value == pytest.approx(0.68, abs=5e-3)  # R prints 2 digits


def test_summary_is_median_and_range_per_group():
    res = compare_distributions(long({"no": [1, 2, 3, 10], "yes": [5, 6, 7]}), "x", "grp")
    s = res.summary.set_index("group")
    assert s.loc["no"].tolist() == [4, 2.5, 1, 10] and s.loc["yes"].tolist() == [3, 6, 5, 7]


def test_bool_groups_are_labelled_yes_no_and_missing_counted():
    df = pd.DataFrame({"grp": [True, False, True, None, False], "x": [1, 2, 3, 4, np.nan]})
    res = compare_distributions(df, "x", "grp")
    assert set(res.summary["group"]) == {"yes", "no"} and res.n_excluded == 2


def test_one_group_gives_no_test():
    res = compare_distributions(long({"no": [1, 2, 3]}), "x", "grp")
    assert res.test == "none" and np.isnan(res.p_value)
