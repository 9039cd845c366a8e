"""An independent solver for published aggregates (issue 15 item 7), shared by the unit and
functional tests: for every suppressed number, the smallest and largest value it can take
given only what was published (scipy.optimize.linprog over the table's margins). It knows
nothing of how `warehouse.suppression` chose the cells."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy.optimize import linprog

from warehouse.aggregates import ALL, CROSSTAB_DIMS

MIN_CELL = 5


def lp_range(n: int, eqs: list[tuple[dict[int, float], float]], target: dict[int, float]) -> tuple[float, float]:
    c = np.zeros(n)
    for i, w in target.items():
        c[i] = w
    a = np.array([[row.get(i, 0.0) for i in range(n)] for row, _ in eqs]) if eqs else None
    b = np.array([v for _, v in eqs]) if eqs else None
    lo = linprog(c, A_eq=a, b_eq=b, bounds=(0, None), method="highs")
    hi = linprog(-c, A_eq=a, b_eq=b, bounds=(0, None), method="highs")
    assert lo.status == 0, "the published numbers must be consistent"
    return lo.fun, (float("inf") if hi.status == 3 else -hi.fun)


def crosstab_ranges(published: pd.DataFrame) -> list[tuple[tuple, float, float]]:
    """(row key, lo, hi) for every suppressed crosstab row, from the published rows only."""
    ct = published[published["section"] == "crosstab"]
    keys = [tuple(r) for r in ct[CROSSTAB_DIMS].itertuples(index=False)]
    interior = [k for k in keys if ALL not in k]
    at = {k: i for i, k in enumerate(interior)}

    def cells(key):
        return {at[c]: 1.0 for c in interior if all(k == ALL or k == x for k, x in zip(key, c, strict=True))}

    eqs = [(cells(k), v) for k, v, s in zip(keys, ct["value"], ct["suppressed"], strict=True) if not s]
    out = []
    for k, s in zip(keys, ct["suppressed"], strict=True):
        if s:
            lo, hi = lp_range(len(interior), eqs, cells(k))
            out.append((k, lo, hi))
    return out


def result_ranges(published: pd.DataFrame, truth: pd.DataFrame) -> list[tuple[tuple, float, float]]:
    """Per (analysis, comparison, endpoint): unknowns = count cells per group x value plus the
    rest (n - counts); equations = published counts, n, percents, and the true column and
    grand totals (known from other comparisons). `truth`: the unsuppressed analysis_result
    rows, matched to the published ones by key."""
    out = []
    res = published[published["section"] == "result"].reset_index(drop=True)
    keys = ["analysis", "comparison", "endpoint", "term", "statistic", "test"]
    truth = truth[truth["section"] == "result"] if "section" in truth else truth
    true_of = {tuple("" if pd.isna(x) else str(x) for x in k): v
               for k, v in zip(truth[keys].itertuples(index=False), truth["value"], strict=True)}
    assert len(true_of) == len(truth), "result rows are unique by analysis..test"
    res["_true"] = [true_of[tuple("" if pd.isna(x) else str(x) for x in k)]
                    for k in res[keys].itertuples(index=False)]
    for key, g in res.groupby(["analysis", "comparison", "endpoint"], dropna=False):
        lv = g["term"].fillna("").str.startswith("level:")
        if not (lv & g["statistic"].eq("n")).any():
            continue
        parts = g["term"].fillna("").str.removeprefix("level:").str.partition("|")
        grp, val = parts[0], parts[2].str.removeprefix("value:").replace("", "yes")
        groups = sorted(set(grp[lv & g["statistic"].eq("n")]))
        counted = lv & g["statistic"].isin(["count", "events"])
        values = sorted(set(val[counted])) + ["__rest"]
        grid = {(x, y): i for i, (x, y) in enumerate(itertools.product(groups, values))}
        eqs, targets = [], []
        for i in g.index[lv]:
            x, y, stat = grp[i], val[i], g.at[i, "statistic"]
            if x not in groups:
                continue
            if stat == "n":
                form = {grid[(x, v)]: 1.0 for v in values}
            elif stat in ("count", "events"):
                form = {grid[(x, y)]: 1.0}
            elif stat == "percent" and not g.at[i, "suppressed"]:
                p = g.at[i, "value"] / 100.0
                form = {grid[(x, v)]: -p for v in values}
                form[grid[(x, y)]] = form[grid[(x, y)]] + 1.0
                eqs.append((form, 0.0))
                continue
            else:
                continue
            if g.at[i, "suppressed"]:
                targets.append(((key, x, y, stat), form, g.at[i, "_true"]))
            else:
                eqs.append((form, g.at[i, "value"]))
        # implicit rest cells (n - count) are targets too when small
        n_true = {grp[i]: g.at[i, "_true"] for i in g.index[lv & g["statistic"].eq("n")]}
        c_true = {(grp[i], val[i]): g.at[i, "_true"] for i in g.index[counted]}
        for x in groups:
            rest = n_true[x] - sum(c_true.get((x, y), 0) for y in values[:-1])
            if 0 < rest < MIN_CELL:
                targets.append(((key, x, "__rest", "n-count"), {grid[(x, "__rest")]: 1.0}, rest))
        col_totals = {y: sum(c_true.get((x, y), 0) for x in groups) for y in values[:-1]}
        col_totals["__rest"] = sum(n_true.values()) - sum(col_totals.values())
        for y, v in col_totals.items():
            eqs.append(({grid[(x, y)]: 1.0 for x in groups}, v))
        for label, form, true in targets:
            if 0 < true < MIN_CELL:
                lo, hi = lp_range(len(grid), eqs, form)
                out.append((label, lo, hi))
    return out
