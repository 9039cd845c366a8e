"""What every audit rule shares: the published table in a `Context`, constants, formatting.

Split out of `analysis.audit_rules` so rule modules can import it without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from analysis.formatting import format_number

CONTRADICTION = "contradiction in the paper"
KEYS = ["analysis", "comparison", "endpoint", "group", "level", "term", "statistic"]

ALPHA = 0.05
FLAG_COMPARISON = {"crs_any": "crs", "icans_any": "icans", "crs_icans_concurrent": "concurrent"}
NAMES = {"crs": "CRS", "icans": "ICANS", "concurrent": "concurrent CRS+ICANS",
         "tox_group": "toxicity group", "tocilizumab": "tocilizumab", "steroids": "steroids"}


@dataclass(frozen=True, eq=False)
class Context:
    pub: pd.DataFrame
    groups: pd.DataFrame
    integer_endpoints: set
    resolution: dict  # endpoint -> recorded precision; Table 1 drops trailing zeros ("2" = 2.0)

    @cached_property
    def _columns(self) -> dict[str, np.ndarray]:
        """The published table's columns as arrays, taken once: `rows` runs ~300 times."""
        return {k: self.pub[k].to_numpy() for k in self.pub.columns}

    def rows(self, **where) -> pd.DataFrame:
        """The published rows whose columns equal (or, for a list, are in) the given values."""
        mask = np.ones(len(self.pub), dtype=bool)
        for k, v in where.items():
            col = self._columns[k]
            mask &= np.isin(col, list(v)) if isinstance(v, (list, tuple, set)) else (col == v)
        return self.pub[mask]

    def bounds(self, i: int) -> tuple[float, float]:
        """The interval the true value lies in, given the printed rounding."""
        r = self.pub.loc[i]
        v = float(r["value"])
        if r["relation"] == "<":
            return (-np.inf, v)
        exact = r["statistic"] in ("n", "count") or (
            r["endpoint"] in self.integer_endpoints and r["statistic"] in ("median", "min",
                                                                             "max"))
        h = 0.0 if exact else half_unit(r["printed"])
        if not exact and r["endpoint"] in self.resolution and r["statistic"] in (
                "median", "min", "max"):
            h = min(h, self.resolution[r["endpoint"]] / 2)
        return (v - h, v + h)

    def group_n(self, comparison: str, group: str) -> tuple[int | None, float | None]:
        hit = self.rows(source="table1", comparison=comparison, group=group, statistic="n",
                        endpoint="")
        return (None, None) if hit.empty else (int(hit.index[0]), float(hit["value"].iloc[0]))

    def cohort_n(self) -> tuple[int | None, float]:
        hit = self.rows(analysis="cohort", comparison="all", statistic="n", endpoint="")
        return (None, np.nan) if hit.empty else (int(hit.index[0]), float(hit["value"].iloc[0]))


def half_unit(printed: str) -> float:
    """Half the last printed digit: '5.3' -> 0.05, '0.962' -> 0.0005, '70' -> 0.5."""
    s = str(printed).replace(",", "").replace("%", "").lstrip("<").strip()
    decimals = len(s.split(".")[1]) if "." in s else 0
    return 0.5 * 10.0 ** -decimals


def fmt(x: float) -> str:
    """A number for a message: up to 3 decimals, no trailing zeros."""
    return format_number(x, decimals=3)


def _finding(rule, status, rows, message, comparison="", endpoint="") -> dict:
    return {"rule": rule, "status": status, "comparison": comparison, "endpoint": endpoint,
            "rows": [int(i) for i in rows if i is not None], "message": message}


def _p_status(ctx: Context, i: int, p: float) -> str:
    """A computed p against printed row i: consistent, within tolerance (truncated), or not."""
    lo, hi = ctx.bounds(i)
    if lo - 1e-9 <= p <= hi + 1e-9 or (ctx.pub.loc[i, "relation"] == "<" and p < hi):
        return "consistent"
    h = half_unit(ctx.pub.loc[i, "printed"])
    value = float(ctx.pub.loc[i, "value"])
    if value <= p < value + 2 * h:  # truncated instead of rounded
        return "within tolerance"
    return CONTRADICTION


def _subsets(ctx: Context):
    for _, s in ctx.groups.iterrows():
        parent_comp, parent_group = s["subset_of"].split(":")
        yield (s["comparison"], s["group"]), (parent_comp, parent_group), s["why"]


def _label(cg) -> str:
    return f"{NAMES.get(cg[0], cg[0])} {cg[1]}"
