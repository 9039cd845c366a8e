"""Fisher's exact test of r×c tables against R's fisher.test (tests/golden/fisher.csv,
written by tests/golden/proportions.R; each row is fisher.test(<its table>)$p.value)."""
from __future__ import annotations

import numpy as np
import pytest
from golden_files import read, rel_close

from analysis.exact import fisher_freeman_halton

FISHER = read("fisher.csv")


def _table(cells: str) -> np.ndarray:
    shape, values = cells.split(":")
    r, c = (int(v) for v in shape.split("x"))
    return np.array([int(v) for v in values.split()]).reshape(r, c)


@pytest.mark.parametrize("row", FISHER.to_dict("records"), ids=FISHER["table"].tolist())
def test_fisher_freeman_halton_matches_r(row):
    t = _table(row["cells"])
    assert rel_close(fisher_freeman_halton(t), row["p_value"], 1e-8)
    assert rel_close(fisher_freeman_halton(t.T), row["p_value"], 1e-8)


def test_plan_response_tables_use_the_exact_test_and_match_r():
    """The plan's response tables by CRS and ICANS grade (3 groups, expected counts < 5) are
    now tested with fisher.test's exact test, and equal R's p."""
    from golden_files import read_twin

    from analysis.plan import load_plan
    from analysis.runner import run_plan

    t = run_plan(read_twin(), load_plan()).table
    want = dict(zip(FISHER["table"], FISHER["p_value"], strict=True))
    for comp, col in (("crs_grade", "crs_grade_group"), ("icans_grade", "icans_grade_group")):
        for ep, name in (("cr", "twin_cr_by_"), ("mrd_neg_cr", "twin_mrd_neg_cr_by_")):
            row = t[(t.analysis == "response") & (t.comparison == comp) & (t.endpoint == ep)
                    & (t.term == "") & (t.statistic == "p_value")].iloc[0]
            assert row["test"] == "fisher"
            assert rel_close(row["value"], want[name + col], 1e-8), (comp, ep)
