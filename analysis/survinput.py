"""Checks on survival input shared by KM, log-rank and Cox: one clear error per problem.

* The event column must be 0/1 or boolean. R's own data sets code status 1/2
  (1 censored, 2 dead); read as 0/1 that silently makes every row an event, so
  any other coding is an error unless the caller names it with
  `status_coding=(censored_value, event_value)`, e.g. (1, 2).
* No complete rows is an error naming the columns, not a crash deep inside.

Errors are `SurvivalInputError` (a ValueError) and name the column.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


class SurvivalInputError(ValueError):
    """Survival input that cannot be analysed; the message names the column."""


def complete_rows(df: pd.DataFrame, columns: Sequence[str], what: str) -> tuple[pd.DataFrame, int]:
    """Rows with every column present, and how many were excluded; error if none are left."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise SurvivalInputError(f"{what}: column(s) {missing} not in the data")
    kept = df.dropna(subset=list(columns))
    if kept.empty:
        raise SurvivalInputError(
            f"{what}: no rows to analyse ({len(df)} row(s) in, none complete in columns "
            f"{list(columns)})")
    return kept, len(df) - len(kept)


def event_indicator(values: pd.Series, column: str,
                    status_coding: tuple | None = None) -> pd.Series:
    """0/1 integer events from a status column (no missing values), checked.

    `status_coding=(censored, event)` maps exactly those two values; otherwise
    the column must be boolean or hold only 0 and 1.
    """
    if status_coding is not None:
        censored, event = status_coding
        bad = ~values.isin([censored, event])
        if bad.any():
            raise SurvivalInputError(
                f"column {column!r}: status_coding {tuple(status_coding)} given but found "
                f"value(s) {_show(values[bad])}")
        return (values == event).astype(int)
    if pd.api.types.is_bool_dtype(values) or values.map(
            lambda v: isinstance(v, (bool, np.bool_))).all():
        return values.astype(bool).astype(int)
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.isna() | ~numeric.isin([0, 1])
    if bad.any():
        hint = (" (R's 1 = censored, 2 = event coding? pass status_coding=(1, 2))"
                if set(numeric.dropna().unique()) <= {1, 2} else "")
        raise SurvivalInputError(
            f"column {column!r}: status must be 0/1 or boolean, found value(s) "
            f"{_show(values[bad])}{hint}")
    return numeric.astype(int)


def durations(values: pd.Series, column: str) -> pd.Series:
    """Float times; a non-numeric or infinite value is an error naming the column."""
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.isna() | ~np.isfinite(numeric.astype(float))
    if bad.any():
        raise SurvivalInputError(
            f"column {column!r}: times must be finite numbers, found {_show(values[bad])}")
    return numeric.astype(float)


def _show(values: pd.Series) -> str:
    uniq = list(dict.fromkeys(values.tolist()))
    return ", ".join(repr(v) for v in uniq[:5]) + (" ..." if len(uniq) > 5 else "")
