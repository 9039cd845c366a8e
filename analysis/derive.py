"""Derived variables and population filters from a small registry of named operations.

A plan never holds code: a derived variable or a population condition is
`{column: bm_blasts_pct, op: ge, value: 20}`, and `op` must name an entry of
`OPERATIONS`. Each operation takes the column (a Series) and the plan's
`value`, and returns a boolean Series. A missing input stays missing in a
derived variable (so a patient without a blast count is not silently put in
the "< 20%" group); a population keeps only rows where every condition is true.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

Operation = Callable[[pd.Series, Any], pd.Series]

OPERATIONS: dict[str, Operation] = {
    "ge": lambda s, v: s >= v,
    "gt": lambda s, v: s > v,
    "le": lambda s, v: s <= v,
    "lt": lambda s, v: s < v,
    "eq": lambda s, v: s == v,
    "ne": lambda s, v: s != v,
    "in": lambda s, v: s.isin(list(v)),
    "not_in": lambda s, v: ~s.isin(list(v)),
    "is_true": lambda s, v: s.astype("boolean") == True,  # noqa: E712 (nullable)
    "is_false": lambda s, v: s.astype("boolean") == False,  # noqa: E712
    "not_null": lambda s, v: s.notna(),
    "is_null": lambda s, v: s.isna(),
}

#: Operations that take no `value` (everything else needs one).
NO_VALUE = frozenset({"is_true", "is_false", "not_null", "is_null"})


def evaluate(df: pd.DataFrame, column: str, op: str, value: Any = None) -> pd.Series:
    """Apply operation `op` to `df[column]`; missing inputs give <NA>."""
    if op not in OPERATIONS:
        raise ValueError(f"unknown operation {op!r}; known: {sorted(OPERATIONS)}")
    if column not in df.columns:
        raise KeyError(f"column {column!r} not in the data")
    source = df[column]
    result = OPERATIONS[op](source, value).astype("boolean")
    if op not in ("not_null", "is_null"):
        result = result.mask(source.isna())
    return result


def select(df: pd.DataFrame, conditions: Sequence[tuple[str, str, Any]]) -> pd.DataFrame:
    """Rows where every (column, op, value) condition is true (missing counts as false)."""
    keep = pd.Series(True, index=df.index)
    for column, op, value in conditions:
        keep &= evaluate(df, column, op, value).fillna(False).astype(bool)
    return df.loc[keep]
