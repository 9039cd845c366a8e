"""Aggregates for sharing outside the consortium, with small cells suppressed so they stay hidden.

`carpool export-aggregates --out FILE [--min-cell 5]` writes one long CSV:
  * `crosstab` rows: patient counts by site x tox_group x cr_d30 x mrd_neg_cr from
    `analysis_patient`, every combination of the levels seen (zeros included), with all its
    margins printed too (`(all)` in a summed dimension), so nothing rests on what is left out;
  * `result` rows: the warehouse's `analysis_result` view, if `carpool analyze` has run on this warehouse run.
A count from 1 to min_cell - 1 is suppressed (value empty, `suppressed` true), and so are
enough other cells (complementary suppression, `warehouse.suppression`) that no suppressed
count can be narrowed to less than min_cell values from the printed numbers: not by n - count,
not by a total minus the other cells, not by any combination of margins.
In `analysis_result`, each (analysis, comparison, endpoint) is one table: groups (`level:`)
by values (`|value:`), or by count/events and the rest (n - count); its group sizes n are
its row margins, and its column and grand totals are taken as known (they are printed by
other comparisons). A percent goes with its count or n; every statistic of a group with
fewer than min_cell patients is suppressed; an endpoint's tests (p-values) are suppressed when
any of its counts is, since a test of a table with known margins can give the cell away.
The first line of the file is a `#` note saying what was suppressed.
The pure part (`aggregate`) takes DataFrames; `export_aggregates` does the I/O.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from warehouse.suppression import Item, LinearTable, is_sensitive, protect

COLUMNS = ["section", "site_id", "tox_group", "cr_d30", "mrd_neg_cr", "analysis", "comparison",
           "endpoint", "term", "statistic", "test", "value", "suppressed"]
CROSSTAB_DIMS = ["site_id", "tox_group", "cr_d30", "mrd_neg_cr"]
ALL = "(all)"
COUNT_STATISTICS = {"n", "count", "events"}
GROUP = ["analysis", "comparison", "endpoint", "term"]
TABLE = ["analysis", "comparison", "endpoint"]


def _is_small(value: float, min_cell: int) -> bool:
    return pd.notna(value) and is_sensitive(value, min_cell)


def crosstab(patients: pd.DataFrame, min_cell: int) -> pd.DataFrame:
    """Counts at site x tox_group x cr_d30 x mrd_neg_cr and all margins, complementary-suppressed."""
    dims = patients[CROSSTAB_DIMS].astype("string").fillna("missing")
    levels = [sorted(dims[d].unique()) for d in CROSSTAB_DIMS]
    grid = list(itertools.product(*levels))
    index = {cell: i for i, cell in enumerate(grid)}
    counts = dims.value_counts()
    values = np.array([float(counts.get(cell, 0)) for cell in grid])
    items = []
    for mask in itertools.product([False, True], repeat=len(CROSSTAB_DIMS)):   # True: summed over
        for key in itertools.product(*[[ALL] if m else lv for m, lv in zip(mask, levels, strict=True)]):
            cells = tuple(i for cell, i in index.items()
                          if all(k == ALL or k == c for k, c in zip(key, cell, strict=True)))
            items.append(Item(cells, label=key))
    protect(LinearTable(values, items), min_cell)
    rows = [dict(zip(CROSSTAB_DIMS, it.label, strict=True), value=float(values[list(it.cells)].sum()),
                 suppressed=it.hidden) for it in items]
    out = pd.DataFrame(rows).sort_values(CROSSTAB_DIMS, ignore_index=True)
    out.loc[out["suppressed"], "value"] = float("nan")
    return out.assign(section="crosstab")


def _level(term: str) -> tuple[str, str | None] | None:
    """`level:X` -> (X, None); `level:X|value:Y` -> (X, Y); anything else -> None."""
    if not isinstance(term, str) or not term.startswith("level:"):
        return None
    head, _, tail = term.partition("|")
    return head.removeprefix("level:"), tail.removeprefix("value:") if tail.startswith("value:") else None


def count_table(g: pd.DataFrame) -> tuple[LinearTable, dict[int, int]] | None:
    """One (analysis, comparison, endpoint) as a LinearTable; `rows`: item number -> row index."""
    parsed = g["term"].map(_level)
    lv = g[parsed.notna()]
    n_rows = lv[lv["statistic"] == "n"]
    cnt_rows = lv[lv["statistic"].isin(["count", "events"])]
    if n_rows.empty:
        return None
    n_of = {parsed[i][0]: (i, float(v)) for i, v in n_rows["value"].items() if pd.notna(v)}
    cols = sorted({parsed[i][1] or "yes" for i in cnt_rows.index}) + ["__rest"]
    if cnt_rows.empty:
        cols = ["__rest"]
    grid = [(x, y) for x in sorted(n_of) for y in cols]
    at = {c: i for i, c in enumerate(grid)}
    values = np.zeros(len(grid))
    items, rows = [], {}
    for i, v in cnt_rows["value"].items():
        x, y = parsed[i][0], parsed[i][1] or "yes"
        if x in n_of and pd.notna(v):
            values[at[(x, y)]] = float(v)
            rows[len(items)] = i
            items.append(Item((at[(x, y)],), label=(x, y)))
    for x, (i, n) in n_of.items():
        values[at[(x, "__rest")]] = max(n - sum(values[at[(x, y)]] for y in cols if y != "__rest"), 0.0)
        items.append(Item((at[(x, "__rest")],), printable=False, label=(x, "__rest")))
        rows[len(items)] = i
        items.append(Item(tuple(at[(x, y)] for y in cols), label=(x, "n")))
    for y in cols:   # column and grand totals: printed by other comparisons, so taken as known
        items.append(Item(tuple(at[(x, y)] for x in n_of), locked=True, label=("(all)", y)))
    items.append(Item(tuple(range(len(grid))), locked=True, label=("(all)", "n")))
    return LinearTable(values, items), rows


def results(table: pd.DataFrame, min_cell: int) -> pd.DataFrame:
    """analysis_result rows, each endpoint's count table complementary-suppressed."""
    t = table.drop(columns=["run_id"], errors="ignore").copy()
    if t.empty:
        return t.assign(section="result", suppressed=False)
    t["value"] = t["value"].astype(float)
    hidden = pd.Series(False, index=t.index)
    small_count = t["statistic"].isin(COUNT_STATISTICS) & t["value"].map(lambda v: _is_small(v, min_cell))
    hidden |= small_count
    for _, g in t.groupby(TABLE, dropna=False, sort=False):
        built = count_table(g)
        if built is None:
            continue
        lt, rows = built
        protect(lt, min_cell)
        touched = False
        for k, i in rows.items():
            if lt.items[k].hidden:
                hidden[i] = touched = True
        if touched or small_count[g.index].any():
            hidden[g.index[~g["term"].map(lambda s: _level(s) is not None)]] = True   # tests of the table
    key = t[GROUP].astype("string").fillna("").agg("|".join, axis=1)
    group = t["term"].map(lambda s: (_level(s) or ("", None))[0])
    level_key = t[TABLE].astype("string").fillna("").agg("|".join, axis=1) + "|" + group
    small_group = t["statistic"].eq("n") & t["value"].map(lambda v: _is_small(v, min_cell))
    hidden |= key.isin(set(key[small_group])) | level_key.isin(set(level_key[small_group & (group != "")]))
    # a percent goes with its count, or with its group's n (percent x n would give the count back)
    gone_n = set(level_key[t["statistic"].eq("n") & hidden])
    hidden |= t["statistic"].eq("percent") & (key.isin(set(key[hidden & t["statistic"].isin(COUNT_STATISTICS)]))
                                              | level_key.isin(gone_n))
    t["suppressed"] = hidden
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
            f"(value empty, suppressed=true), with complementary suppression so that no suppressed count "
            f"follows from totals, margins, percentages or n - count; {n} of {len(frame)} cells suppressed. "
            "Aggregates only: no patient-level rows.")


def export_aggregates(warehouse: Path, out_file: Path, min_cell: int = 5) -> tuple[Path, int]:
    """Write the CSV (note line first); return its path and the number of suppressed cells."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        patients = con.execute("SELECT * FROM analysis_patient").fetchdf()
        has_results = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = "
                                  "'analysis_result' AND table_catalog = current_database()").fetchone()[0]
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
