"""Coarsened event times against exact mode: what `coarsen_days` does to the estimates.

With `federated.coarsen_days` set, every site rounds its event and censoring times up to the
end of their interval before it counts them (`federated.disclosure.coarsen`), so Kaplan–Meier,
log-rank, reverse-KM follow-up and Cox are computed on coarsened times. Counts do not change
(no row is dropped or moved between groups); times, curves, p values and HRs may.

* `label(table, days)` marks those rows in the `test` column (`; coarsened (7 days)`), as
  approximate rows are marked, so statistics.csv and `analysis_result` say so row by row.
* `reference_plan(plan)` is the part of the plan that coarsening touches (survival,
  follow-up, Cox): what the exact-mode reference run computes.
* `compare(exact, coarsened)` is the side-by-side table (exact, coarsened, difference) that
  `carpool federate` writes to `report/coarsening.csv` and shows in the report.

The exact reference needs every node to answer once *without* coarsening. On the demo,
where `carpool federate` plays all nodes, it does; on a real network a node whose policy
coarsens never sends exact times, so the comparison is a demo (or test-data) exercise.
"""
from __future__ import annotations

import pandas as pd

from analysis.plan import Plan

TIME_ANALYSES = ("survival", "followup", "cox")
KEY = ["analysis", "comparison", "endpoint", "term", "statistic"]
#: rows the report shows (coarsening.csv holds every compared row)
SHOWN = {("survival", "median"), ("survival", "p_value"), ("followup", "median"), ("cox", "hr")}


def tag(days: float) -> str:
    return f"coarsened ({days:g} days)"


def label(table: pd.DataFrame, days: float | None) -> pd.DataFrame:
    """`table` with `; coarsened (N days)` appended to the test of every time-based row."""
    if days is None:
        return table
    out = table.copy()
    rows = out["analysis"].isin(TIME_ANALYSES)
    out.loc[rows, "test"] = out.loc[rows, "test"].astype(str) + f"; {tag(days)}"
    return out


def reference_plan(plan: Plan) -> Plan:
    """The plan's time-based analyses only (survival, follow-up, Cox)."""
    return plan.model_copy(update={"table1": None, "response": None, "kinetics": None, "beyond_paper": None})


def compare(exact: pd.DataFrame, coarsened: pd.DataFrame) -> pd.DataFrame:
    """Every time-based row of both runs: exact, coarsened, difference (coarsened - exact)."""
    def base(t: pd.DataFrame) -> pd.DataFrame:
        t = t[t["analysis"].isin(TIME_ANALYSES)].copy()
        t["test"] = t["test"].astype(str).str.split(";").str[0]
        return t[KEY + ["test", "value"]]

    m = base(exact).merge(base(coarsened), on=KEY + ["test"], how="inner", suffixes=("_exact", "_coarsened"))
    m = m.rename(columns={"value_exact": "exact", "value_coarsened": "coarsened"})
    m["exact"], m["coarsened"] = m["exact"].astype(float), m["coarsened"].astype(float)
    m["difference"] = m["coarsened"] - m["exact"]
    return m.reset_index(drop=True)


def shown(comparison: pd.DataFrame) -> list[dict]:
    """The rows the report's table shows: KM and follow-up medians, log-rank p, Cox HRs."""
    keep = [(a, s) in SHOWN for a, s in zip(comparison["analysis"], comparison["statistic"], strict=True)]
    rows = comparison[keep]
    return rows.astype(object).where(rows.notna(), None).to_dict("records")
