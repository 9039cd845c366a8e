"""Issue 15 item 7: suppression that holds. For every suppressed count in what
`export-aggregates` writes, solve from the *published* numbers alone (a linear program over
the table's margins, scipy.optimize.linprog) for the smallest and largest value it can take,
and assert the feasible range is at least min_cell wide.

The solver here is written independently of `warehouse.suppression`: it reads the published
frame (crosstab rows with `(all)` margins; result rows: count, n, events, percent) and
knows nothing of how cells were chosen. For result tables it also assumes the reader knows
every column and grand total (printed by other comparisons) and uses published percents as
linear constraints (count = percent/100 x n)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.suppression_solver import MIN_CELL, crosstab_ranges, result_ranges
from warehouse.aggregates import CROSSTAB_DIMS, aggregate, crosstab, results


def patients(cells: dict[tuple[str, str, bool, bool], int]) -> pd.DataFrame:
    rows = []
    for key, n in cells.items():
        rows += [dict(zip(CROSSTAB_DIMS, key, strict=True))] * n
    return pd.DataFrame(rows)


def test_the_issue_example_a_center_cell_is_not_the_pooled_total_minus_the_others():
    """21 - 18 = 3: one pooled stratum over three sites, one site small."""
    f = crosstab(patients({("a", "none", True, True): 9, ("b", "none", True, True): 9,
                           ("c", "none", True, True): 3, ("a", "crs", True, True): 8,
                           ("b", "crs", True, True): 7, ("c", "crs", True, True): 12}), MIN_CELL)
    ranges = crosstab_ranges(f)
    assert ranges, "the small cell is suppressed"
    assert all(hi - lo >= MIN_CELL for _, lo, hi in ranges), ranges


def test_a_published_suppression_pattern_that_leaks_is_caught_by_the_solver():
    """The solver can fail: primary-only suppression (the old export) leaks by subtraction."""
    truth = crosstab(patients({("a", "none", True, True): 9, ("c", "none", True, True): 3}), 1)
    leaky = truth.copy()
    leaky["suppressed"] = leaky["value"].between(1, MIN_CELL - 1)
    assert leaky["suppressed"].any()
    assert any(hi - lo < MIN_CELL for _, lo, hi in crosstab_ranges(leaky))


def test_n_minus_count_does_not_give_back_a_suppressed_count():
    """ICANS x steroids: 16 - 13 = 3 (the issue's example), in a result table."""
    r = pd.DataFrame([
        ("response", "icans", "steroids", "level:no", "count", 40.0, "descriptive"),
        ("response", "icans", "steroids", "level:no", "percent", 51.9, "descriptive"),
        ("response", "icans", "steroids", "level:no", "n", 77.0, "descriptive"),
        ("response", "icans", "steroids", "level:yes", "count", 13.0, "descriptive"),
        ("response", "icans", "steroids", "level:yes", "percent", 81.25, "descriptive"),
        ("response", "icans", "steroids", "level:yes", "n", 16.0, "descriptive"),
        ("response", "icans", "steroids", "", "p_value", 0.03, "chi2"),
    ], columns=["analysis", "comparison", "endpoint", "term", "statistic", "value", "test"])
    f = results(r, MIN_CELL)
    ranges = result_ranges(f.assign(section="result"), r)
    assert ranges and all(hi - lo >= MIN_CELL for _, lo, hi in ranges), ranges
    assert f.loc[f["statistic"] == "p_value", "suppressed"].all()


@pytest.mark.parametrize("seed", range(6))
def test_random_consortia_no_suppressed_cell_can_be_solved_for(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 120))
    p = pd.DataFrame({"site_id": rng.choice(["a", "b", "c", "d"], n, p=[.4, .3, .2, .1]),
                      "tox_group": rng.choice(["none", "crs", "conc"], n),
                      "cr_d30": rng.choice([True, False], n, p=[.85, .15]),
                      "mrd_neg_cr": rng.choice([True, False], n, p=[.7, .3])})
    f = crosstab(p, MIN_CELL)
    ranges = crosstab_ranges(f)
    assert all(hi - lo >= MIN_CELL for _, lo, hi in ranges), [r for r in ranges if r[2] - r[1] < MIN_CELL]
    shown = f[~f["suppressed"]]
    assert not shown["value"].between(1, MIN_CELL - 1).any()


def test_demo_warehouse_export_holds(demo_export):
    published, truth = demo_export
    bad = [r for r in crosstab_ranges(published) if r[2] - r[1] < MIN_CELL]
    assert not bad, bad[:5]
    ranges = result_ranges(published, truth)
    assert len(ranges) >= 4, "the stand-in has small result counts to protect"
    bad = [r for r in ranges if r[2] - r[1] < MIN_CELL]
    assert not bad, bad[:5]


@pytest.fixture(scope="module")
def demo_export():
    """A 93-patient, four-site stand-in of the demo's analysis_patient and analysis_result
    shapes (the real demo export is checked in tests/functional/test_data_safety.py)."""
    rng = np.random.default_rng(93)
    n = 93
    sites, groups = ["center_a", "center_b", "center_c", "center_d"], ["none", "crs_only", "concurrent", "g3plus"]
    p = pd.DataFrame({"site_id": rng.choice(sites, n, p=[.37, .28, .2, .15]),
                      "tox_group": rng.choice(groups, n, p=[.2, .5, .15, .15]),
                      "cr_d30": rng.choice([True, False], n, p=[.92, .08]),
                      "mrd_neg_cr": rng.choice([True, False], n, p=[.75, .25])})
    rows = []
    for comp in ("crs", "icans"):
        grp = rng.choice(["no", "yes"], n, p=[.8, .2])
        for endpoint, col in (("cr", "cr_d30"), ("mrd", "mrd_neg_cr")):
            for lvl in ("no", "yes"):
                sel = p[col][grp == lvl]
                rows += [("response", comp, endpoint, f"level:{lvl}", "count", float(sel.sum()), "descriptive"),
                         ("response", comp, endpoint, f"level:{lvl}", "percent",
                          100.0 * sel.mean() if len(sel) else np.nan, "descriptive"),
                         ("response", comp, endpoint, f"level:{lvl}", "n", float(len(sel)), "descriptive")]
            rows.append(("response", comp, endpoint, "", "p_value", 0.5, "chi2"))
        sex = rng.choice(["F", "M"], n)
        for lvl in ("no", "yes"):
            for s in ("F", "M"):
                c = float(((grp == lvl) & (sex == s)).sum())
                rows += [("table1", comp, "sex", f"level:{lvl}|value:{s}", "count", c, "descriptive"),
                         ("table1", comp, "sex", f"level:{lvl}|value:{s}", "percent",
                          100 * c / max((grp == lvl).sum(), 1), "descriptive")]
            rows.append(("table1", comp, "sex", f"level:{lvl}", "n", float((grp == lvl).sum()), "descriptive"))
    r = pd.DataFrame(rows, columns=["analysis", "comparison", "endpoint", "term", "statistic", "value", "test"])
    f = aggregate(p, r, MIN_CELL)
    return f, r


def test_a_small_group_n_is_not_the_total_minus_the_other_group():
    """Kinetics by ICANS: n = 21 and 3 of 24 patients with CAR data; the total is known elsewhere."""
    r = pd.DataFrame([
        ("kinetics", "icans", "car_peak", "level:no", "n", 21.0, "descriptive"),
        ("kinetics", "icans", "car_peak", "level:no", "median", 7152.0, "descriptive"),
        ("kinetics", "icans", "car_peak", "level:yes", "n", 3.0, "descriptive"),
        ("kinetics", "icans", "car_peak", "level:yes", "median", 7441.0, "descriptive"),
        ("kinetics", "icans", "car_peak", "", "p_value", 0.76, "mann_whitney"),
    ], columns=["analysis", "comparison", "endpoint", "term", "statistic", "value", "test"])
    f = results(r, MIN_CELL)
    assert f.loc[f["statistic"] == "n", "suppressed"].all()
    assert not f.loc[(f["term"] == "level:no") & (f["statistic"] == "median"), "suppressed"].item()
    ranges = result_ranges(f.assign(section="result"), r)
    assert ranges and all(hi - lo >= MIN_CELL for _, lo, hi in ranges), ranges
