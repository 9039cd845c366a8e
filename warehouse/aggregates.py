"""Aggregates for sharing outside the consortium, with small cells suppressed.

`carpool export-aggregates --out FILE [--min-cell 5]` writes one long CSV:
  * `crosstab` rows: patient counts by site x tox_group x cr_d30 x mrd_neg_cr from
    `analysis_patient` (the finest grain only: no margins, so no suppressed cell can be
    recovered by subtraction within the file);
  * `result` rows: the warehouse's `analysis_result` table, if `carpool analyze` filled it.
A count between 1 and min_cell - 1 is suppressed: its value is left empty and `suppressed`
is true. Within each tox_group x cr_d30 x mrd_neg_cr stratum, when exactly one site's cell
is suppressed, the next smallest is suppressed too (secondary suppression), so the pooled
total in `analysis_result` cannot reveal it. In `analysis_result`, count statistics (n,
count, events) below the threshold are suppressed, and with them every statistic of that
same group (percent, median, range...), since they describe fewer than min_cell patients.
The first line of the file is a `#` note saying what was suppressed.
The pure part (`aggregate`) takes DataFrames; `export_aggregates` does the I/O.
"""
from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

COLUMNS = ["section", "site_id", "tox_group", "cr_d30", "mrd_neg_cr", "analysis", "comparison",
           "endpoint", "term", "statistic", "test", "value", "suppressed"]
CROSSTAB_DIMS = ["site_id", "tox_group", "cr_d30", "mrd_neg_cr"]
COUNT_STATISTICS = {"n", "count", "events"}
GROUP = ["analysis", "comparison", "endpoint", "term"]


def _is_small(value: float, min_cell: int) -> bool:
    return pd.notna(value) and 0 < value < min_cell


def crosstab(patients: pd.DataFrame, min_cell: int) -> pd.DataFrame:
    """Counts at site x tox_group x cr_d30 x mrd_neg_cr, with primary and secondary suppression."""
    dims = patients[CROSSTAB_DIMS].astype("string").fillna("missing")
    counts = dims.value_counts().rename("value").reset_index().sort_values(CROSSTAB_DIMS, ignore_index=True)
    counts["value"] = counts["value"].astype(float)
    counts["suppressed"] = counts["value"].map(lambda v: _is_small(v, min_cell))
    for _, stratum in counts.groupby(CROSSTAB_DIMS[1:], dropna=False):
        hidden = stratum[stratum["suppressed"]]
        shown = stratum[~stratum["suppressed"]]
        if len(hidden) == 1 and len(shown):
            counts.loc[shown["value"].idxmin(), "suppressed"] = True
    counts.loc[counts["suppressed"], "value"] = float("nan")
    return counts.assign(section="crosstab")


def results(table: pd.DataFrame, min_cell: int) -> pd.DataFrame:
    """analysis_result rows; groups resting on fewer than min_cell patients are suppressed."""
    t = table.drop(columns=["run_id"], errors="ignore").copy()
    if t.empty:
        return t.assign(section="result", suppressed=False)
    t["value"] = t["value"].astype(float)
    key = t[GROUP].astype("string").fillna("").agg("|".join, axis=1)
    small_count = t["statistic"].isin(COUNT_STATISTICS) & t["value"].map(lambda v: _is_small(v, min_cell))
    small_group = t["statistic"].eq("n") & t["value"].map(lambda v: _is_small(v, min_cell))
    hidden_groups = set(key[small_group])
    # a small count also hides the percent of the same group (percent x n would reveal it)
    counted = set(key[small_count])
    t["suppressed"] = small_count | key.isin(hidden_groups) | (key.isin(counted) & t["statistic"].eq("percent"))
    t.loc[t["suppressed"], "value"] = float("nan")
    return t.assign(section="result")


def aggregate(patients: pd.DataFrame, analysis_result: pd.DataFrame | None, min_cell: int = 5) -> pd.DataFrame:
    if min_cell < 1:
        raise ValueError("min_cell must be at least 1")
    parts = [crosstab(patients, min_cell)]
    if analysis_result is not None and len(analysis_result):
        parts.append(results(analysis_result, min_cell))
    frame = pd.concat(parts, ignore_index=True)
    return frame.reindex(columns=COLUMNS)


def note(frame: pd.DataFrame, min_cell: int, run_id: str) -> str:
    n = int(frame["suppressed"].sum())
    return (f"# carpool aggregates, warehouse run {run_id}: counts from 1 to {min_cell - 1} are suppressed "
            f"(value empty, suppressed=true), with secondary suppression; {n} of {len(frame)} cells suppressed. "
            "Aggregates only: no patient-level rows.")


def export_aggregates(warehouse: Path, out_file: Path, min_cell: int = 5) -> tuple[Path, int]:
    """Write the CSV (note line first); return its path and the number of suppressed cells."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        patients = con.execute("SELECT * FROM analysis_patient").fetchdf()
        has_results = con.execute("SELECT count(*) FROM duckdb_columns() WHERE table_name = 'analysis_result' "
                                  "AND database_name = current_database()").fetchone()[0]
        result = con.execute("SELECT * FROM analysis_result").fetchdf() if has_results else None
        run_id = (con.execute("SELECT value FROM study_config WHERE key = 'run_id'").fetchone() or [""])[0]
    finally:
        con.close()
    frame = aggregate(patients, result, min_cell)
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_name(out_file.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        fh.write(note(frame, min_cell, run_id) + "\n")
        frame.to_csv(fh, index=False, float_format="%.10g")
    tmp.replace(out_file)
    return out_file, int(frame["suppressed"].sum())
