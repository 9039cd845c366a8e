"""Small-cell suppression in `warehouse.aggregates` (what `carpool export-aggregates` writes)."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from warehouse.aggregates import ALL, CROSSTAB_DIMS, aggregate, crosstab, note, results


def patients(cells: dict[tuple[str, str, bool, bool], int]) -> pd.DataFrame:
    rows = []
    for (site, group, cr, mrd), n in cells.items():
        rows += [{"site_id": site, "tox_group": group, "cr_d30": cr, "mrd_neg_cr": mrd}] * n
    return pd.DataFrame(rows)


def cell(frame: pd.DataFrame, site: str, group: str) -> pd.Series:
    return frame[(frame["site_id"] == site) & (frame["tox_group"] == group)].iloc[0]


def test_counts_below_min_cell_are_suppressed_and_blanked():
    f = crosstab(patients({("a", "none", True, True): 7, ("b", "none", True, True): 2,
                           ("c", "none", True, True): 3, ("a", "other", True, True): 5}), min_cell=5)
    assert cell(f, "b", "none")["suppressed"] and math.isnan(cell(f, "b", "none")["value"])
    assert cell(f, "c", "none")["suppressed"]
    assert not cell(f, "a", "none")["suppressed"] and cell(f, "a", "none")["value"] == 7
    assert not cell(f, "a", "other")["suppressed"] and cell(f, "a", "other")["value"] == 5


def test_a_lone_suppressed_cell_in_a_stratum_takes_the_next_smallest_with_it():
    """Pooled totals per tox_group are published elsewhere: one hidden site cell would be
    recoverable by subtraction, so the smallest shown cell of the stratum is hidden too."""
    f = crosstab(patients({("a", "none", True, True): 9, ("b", "none", True, True): 6,
                           ("c", "none", True, True): 1}), min_cell=5)
    assert cell(f, "c", "none")["suppressed"] and cell(f, "b", "none")["suppressed"]
    assert not cell(f, "a", "none")["suppressed"]


def test_missing_values_are_their_own_level_and_no_row_is_lost():
    p = patients({("a", "none", True, True): 6}).astype({"mrd_neg_cr": "object"})
    p.loc[0, "mrd_neg_cr"] = None
    f = crosstab(p, min_cell=1)
    interior = f[~f[CROSSTAB_DIMS].eq(ALL).any(axis=1)]     # the rest are its printed margins
    assert interior["value"].sum() == len(p)
    assert f.loc[f[CROSSTAB_DIMS].eq(ALL).all(axis=1), "value"].item() == len(p)
    assert "missing" in set(f["mrd_neg_cr"])


def test_result_groups_resting_on_few_patients_are_suppressed():
    r = pd.DataFrame([
        ("table1", "crs", "age", "level:no", "n", 3.0, "descriptive"),
        ("table1", "crs", "age", "level:no", "median", 40.0, "descriptive"),
        ("table1", "crs", "age", "level:yes", "n", 80.0, "descriptive"),
        ("table1", "crs", "age", "level:yes", "median", 31.0, "descriptive"),
        ("response", "tox", "cr_d30", "level:g3", "count", 2.0, "descriptive"),
        ("response", "tox", "cr_d30", "level:g3", "percent", 10.0, "descriptive"),
        ("response", "tox", "cr_d30", "level:g3", "n", 20.0, "descriptive"),
        ("survival", "tox", "os", "", "p_value", 0.03, "logrank"),
    ], columns=["analysis", "comparison", "endpoint", "term", "statistic", "value", "test"])
    f = results(r.assign(run_id="r1"), min_cell=5).set_index(["term", "statistic"])
    assert f.loc[("level:no", "n"), "suppressed"] and f.loc[("level:no", "median"), "suppressed"]
    assert not f.loc[("level:yes", "median"), "suppressed"] and f.loc[("level:yes", "median"), "value"] == 31
    assert f.loc[("level:g3", "count"), "suppressed"] and f.loc[("level:g3", "percent"), "suppressed"]
    # n may go too (complementary suppression: n - count = 18 would pin the count otherwise)
    assert not f.loc[("", "p_value"), "suppressed"]
    assert "run_id" not in f.columns


def test_aggregate_and_note_report_what_was_suppressed():
    f = aggregate(patients({("a", "none", True, True): 7, ("b", "none", True, True): 2}), None, min_cell=5)
    text = note(f, 5, "r1")
    assert text.startswith("#") and "1 to 4" in text and f"{int(f['suppressed'].sum())} of {len(f)}" in text
    with pytest.raises(ValueError):
        aggregate(patients({("a", "none", True, True): 7}), None, min_cell=0)
