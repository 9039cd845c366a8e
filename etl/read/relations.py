"""Sources as DuckDB relations: every cell as text, plus the row number a person sees.

A reader (`etl.read.readers`) hands over one `RawTable`; here it becomes an Arrow table
registered in a DuckDB connection, so that the compiled mapping (`etl.compile.compiler`)
runs on it in SQL. Each source column becomes VARCHAR holding the cell as Python's
`str()` writes it (`2.0` for an SPSS or Excel number; `etl.compile.convert.norm_text`
strips the `.0` where codes are matched). A column where the workbook or SPSS file holds
real dates also gets a DATE twin (`<column>__carpool_date`), because a native date passes
any date format. Blank cells and NaN are NULL. `_source_row` and `_pos` (the row's place
in the file) travel with every row.
"""
from __future__ import annotations

import math
from datetime import date, datetime

import duckdb
import pandas as pd
import pyarrow as pa

from etl.read.readers import ROW, RawTable

DATE_TWIN = "__carpool_date"


def _text(v: object) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v if isinstance(v, str) else str(v)


def _native_date(v: object) -> date | None:
    if isinstance(v, datetime | pd.Timestamp):
        return v.date()
    return v if isinstance(v, date) else None


def to_arrow(raw: RawTable) -> pa.Table:
    """The raw frame as text columns (+ DATE twins), `_source_row` and `_pos`."""
    frame = raw.frame
    arrays, names = [], []
    for col in frame.columns:
        if col == ROW:
            continue
        values = frame[col].tolist()
        if all(isinstance(v, str) for v in values):
            arrays.append(pa.array(values, pa.string()))
        else:
            arrays.append(pa.array([_text(v) for v in values], pa.string()))
            dates = [_native_date(v) for v in values]
            if any(d is not None for d in dates):
                arrays.append(pa.array(dates, pa.date32()))
                names.append(col)
                names.append(col + DATE_TWIN)
                continue
        names.append(col)
    arrays += [pa.array(frame[ROW].astype("int64").to_numpy()), pa.array(range(len(frame)), pa.int64())]
    names += [ROW, "_pos"]
    return pa.Table.from_arrays(arrays, names=names)


def register(con: duckdb.DuckDBPyConnection, relation: str, raw: RawTable) -> list[str]:
    """Register `raw` as `relation`; return its source column names."""
    con.register(relation, to_arrow(raw))
    return [c for c in raw.frame.columns if c != ROW]
