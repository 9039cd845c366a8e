"""Chi-square / Fisher (analysis/proportions.py) and the test-choice rule.

Reference values are computed independently (closed forms, textbook examples)
or are the paper's own p-values recomputed from the counts it publishes.
"""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.proportions import choose_test, compare_proportions


def frame(table: dict[tuple[str, str], int]) -> pd.DataFrame:
    """Patients from a {(variable value, group value): count} cross-tab."""
    rows = [(v, g) for (v, g), k in table.items() for _ in range(k)]
    return pd.DataFrame(rows, columns=["var", "grp"])


def two_by_two(a, b, c, d) -> pd.DataFrame:
    """[[a, b], [c, d]]: rows var = yes/no, columns grp = yes/no."""
    return frame({("yes", "yes"): a, ("yes", "no"): b, ("no", "yes"): c, ("no", "no"): d})


def test_fisher_matches_the_tea_tasting_example():
    """Fisher's lady tasting tea, [[3, 1], [1, 3]]: two-sided p = 34/70.
    R: fisher.test(matrix(c(3, 1, 1, 3), 2))$p.value  # 0.4857143"""
    res = compare_proportions(two_by_two(3, 1, 1, 3), "var", "grp", test="fisher")
    assert res.test == "fisher"
    assert res.p_value == pytest.approx(34 / 70, rel=1e-12)


def test_pearson_chi2_has_no_continuity_correction():
    """Closed form for 2x2: N (ad - bc)^2 / (r1 r2 c1 c2), p = erfc(sqrt(x / 2)).
    R: chisq.test(matrix(c(41, 35, 6, 11), 2), correct = FALSE)"""
    a, b, c, d = 41, 6, 35, 11
    n = a + b + c + d
    x = n * (a * d - b * c) ** 2 / ((a + b) * (c + d) * (a + c) * (b + d))
    res = compare_proportions(two_by_two(a, b, c, d), "var", "grp", test="chi2")
    assert res.statistic == pytest.approx(x, rel=1e-12)
    assert res.p_value == pytest.approx(math.erfc(math.sqrt(x / 2)), rel=1e-10)
    assert res.dof == 1


@pytest.mark.parametrize("counts, published", [
    ((41, 6, 35, 11), 0.164),   # sex (male) by CRS yes/no
    ((8, 39, 8, 38), 0.962),    # sex (male) by ICANS yes/no
    ((13, 5, 63, 12), 0.246),   # Ph positive by CRS: chi-square although expected < 5
    ((3, 9, 13, 68), 0.443),    # primary refractory by ICANS
    ((3, 9, 12, 69), 0.371),    # primary refractory by concurrent CRS+ICANS
    ((12, 33, 4, 44), 0.019),   # tocilizumab by ICANS
    ((12, 33, 3, 45), 0.007),   # tocilizumab by concurrent
])
def test_table1_p_values_are_uncorrected_pearson(counts, published):
    """The paper's Table 1 p-values, recomputed from its published counts (SPSS Pearson
    chi-square, no continuity correction, also where an expected count is < 5)."""
    res = compare_proportions(two_by_two(*counts), "var", "grp", test="chi2")
    assert round(res.p_value, 3) == published


def test_default_rule_picks_chi2_when_expected_counts_are_large():
    res = compare_proportions(two_by_two(41, 6, 35, 11), "var", "grp")
    assert res.test == "chi2" and res.note == "" and res.min_expected >= 5


def test_default_rule_picks_fisher_for_small_2x2():
    res = compare_proportions(two_by_two(13, 5, 63, 12), "var", "grp")
    assert res.test == "fisher" and "expected count < 5" in res.note


def test_default_rule_uses_the_exact_test_for_small_larger_tables():
    """Regression: 3x2 tables with expected counts down to 0.6 got Pearson chi-square
    while the methods text promised Fisher. R: fisher.test(matrix(c(1, 8, 2, 9, 10, 12), 2))
    p = 0.13242561532236133 (tests/golden/fisher.csv)."""
    table = np.array([[1, 2, 10], [8, 9, 12]])
    test, note = choose_test(table)
    assert test == "fisher" and "Fisher–Freeman–Halton" in note
    df = frame({(r, g): int(table[i, j]) for i, r in enumerate("ab")
                for j, g in enumerate("xyz")})
    res = compare_proportions(df, "var", "grp")
    assert res.test == "fisher" and res.note
    assert res.p_value == pytest.approx(0.13242561532236133, rel=1e-8)


def test_fisher_on_larger_table_is_fisher_freeman_halton():
    """R: fisher.test(matrix(c(3, 1, 1, 3, 2, 2), 2)) p = 0.7662337662337656."""
    df = frame({("a", "x"): 3, ("a", "y"): 1, ("a", "z"): 2, ("b", "x"): 1,
                ("b", "y"): 3, ("b", "z"): 2})
    res = compare_proportions(df, "var", "grp", test="fisher")
    assert res.test == "fisher" and res.p_value == pytest.approx(0.7662337662337656, rel=1e-8)


def test_too_large_for_the_exact_test_falls_back_to_chi2_and_says_so(monkeypatch):
    import analysis.exact as exact
    monkeypatch.setattr(exact, "MAX_STEPS", 1)
    df = frame({("a", "x"): 3, ("a", "y"): 1, ("a", "z"): 2, ("b", "x"): 1,
                ("b", "y"): 3, ("b", "z"): 2})
    res = compare_proportions(df, "var", "grp", test="fisher")
    assert res.test == "chi2" and "exact test not run" in res.note


def test_single_level_gives_no_test_and_summary_percentages():
    df = pd.DataFrame({"var": [True] * 5, "grp": [True, True, False, False, False]})
    res = compare_proportions(df, "var", "grp")
    assert res.test == "none" and np.isnan(res.p_value)
    s = res.summary.set_index("group")
    assert s.loc["yes", "percent"] == 100 and s.loc["no", "n"] == 3


def test_missing_rows_are_counted():
    df = two_by_two(3, 1, 1, 3)
    df.loc[0, "var"] = None
    res = compare_proportions(df, "var", "grp")
    assert res.n == 7 and res.n_excluded == 1


TRUTH = Path(__file__).resolve().parents[2] / "sites" / "twin" / "truth.csv"


@pytest.mark.skipif(not TRUTH.exists(), reason="sites/twin/truth.csv not generated")
@pytest.mark.parametrize("grouping, endpoint, test, published", [
    ("crs", "cr", "fisher", 0.342), ("icans", "cr", "chi2", 0.210),
    ("concurrent", "cr", "chi2", 0.228), ("tox_group", "cr", "chi2", 0.260),
    ("tocilizumab", "cr", "fisher", 1.000), ("steroids", "cr", "fisher", 0.697),
    ("crs", "mrd_neg_cr", "fisher", 0.122), ("icans", "mrd_neg_cr", "chi2", 0.061),
    ("concurrent", "mrd_neg_cr", "chi2", 0.072), ("tox_group", "mrd_neg_cr", "chi2", 0.136),
])
def test_twin_reproduces_figure1_p_values(grouping, endpoint, test, published):
    """Fig. 1 p-values from the synthetic twin's truth table (columns derived here only)."""
    t = pd.read_csv(TRUTH)
    crs, icans = t["crs_grade"] > 0, t["icans_grade"] > 0
    severe = (t["crs_grade"] >= 3) | (t["icans_grade"] >= 3)
    df = pd.DataFrame({
        "crs": crs, "icans": icans, "concurrent": crs & icans,
        "tox_group": np.where(~crs & ~icans, "none", np.where(severe, "grade3plus", "other")),
        "tocilizumab": t["tocilizumab"].astype(bool), "steroids": t["steroids"].astype(bool),
        "cr": t["response"] == "CR",
    })
    df["mrd_neg_cr"] = t["mrd_negative"].where(df["cr"]).map(
        {True: True, False: False, "True": True, "False": False})
    data = df[df["cr"]] if endpoint == "mrd_neg_cr" else df
    res = compare_proportions(data, endpoint, grouping, test=test)
    assert round(res.p_value, 3) == pytest.approx(published, abs=1e-9)
