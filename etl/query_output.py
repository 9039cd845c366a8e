"""Writing a `carpool sql` result: a terminal table, CSV, JSON (an array of objects) or Parquet.

NULL is `NULL` in the terminal table, an empty cell in CSV and `null` in JSON; never
`nan` or `<NA>`. Integers stay integers (a NULL does not turn a column into floats).
Values are data everywhere: the table shows `[b]x[/b]` as typed, CSV cells that a
spreadsheet would run as formulas are neutralized (`etl.escape`), JSON is JSON.
"""
from __future__ import annotations

import json
import math
import sys
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table
from rich.text import Text

from etl.errors import UsageError
from etl.escape import plain, write_csv

FORMATS = ("table", "csv", "json", "parquet")


def check_format(fmt: str, out: Path | None) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r} is not known: use one of {', '.join(FORMATS)}")
    if fmt == "parquet" and out is None:
        raise UsageError("--format parquet writes a file: give it with --out FILE")


def write_result(result: pa.Table, fmt: str, out: Path | None, console: Console) -> None:
    """Write `result` in `fmt` to `out` (a file) or standard output."""
    check_format(fmt, out)
    if fmt == "parquet":
        pq.write_table(result, out)
        return
    if fmt == "table":
        if out is None:
            console.print(_table(result))
        else:
            with Path(out).open("w", encoding="utf-8") as fh:
                Console(file=fh, width=200).print(_table(result))
        return
    fh = Path(out).open("w", encoding="utf-8", newline="") if out is not None else sys.stdout
    try:
        if fmt == "csv":
            write_csv(_frame(result), fh)
        else:
            rows = [{k: _json(v) for k, v in row.items()} for row in result.to_pylist()]
            fh.write(json.dumps(rows, ensure_ascii=False) + "\n")
    finally:
        if out is not None:
            fh.close()


def _table(result: pa.Table) -> Table:
    table = Table(highlight=False)
    for c in result.column_names:
        table.add_column(plain(c))
    for row in zip(*[c.to_pylist() for c in result.columns], strict=True) if result.num_columns else []:
        table.add_row(*[Text("NULL", style="dim") if v is None else plain(v) for v in row])
    return table


def _frame(result: pa.Table) -> pd.DataFrame:
    """Python values in object columns: None stays empty, 3 stays 3 (not 3.0)."""
    frame = pd.DataFrame({i: pd.Series(c.to_pylist(), dtype=object) for i, c in enumerate(result.columns)})
    frame.columns = result.column_names
    return frame


def _json(v):
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, datetime | date | time):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, list):
        return [_json(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _json(x) for k, x in v.items()}
    return str(v)
