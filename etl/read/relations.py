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

from datetime import date, datetime

import duckdb
import pandas as pd
import pyarrow as pa
from pandas.api.types import infer_dtype

from etl.read.readers import ROW, RawTable

DATE_TWIN = "__carpool_date"


DATE_TYPES = (date, datetime, pd.Timestamp)


def _column(values: pd.Series) -> tuple[pa.Array, pa.Array | None]:
    """One source column as text (`str()` of each cell, NULL for None/NaN), and its DATE
    twin when some cells are native dates. pandas' and Arrow's own loops, none in Python."""
    if infer_dtype(values, skipna=False) == "string":
        return pa.array(values.to_numpy(), pa.string()), None
    missing = values.isna().to_numpy()
    text = pa.array(values.astype(str).to_numpy(), pa.string(), mask=missing)
    kinds = values.map(type)
    is_date = kinds.isin([datetime, pd.Timestamp]).to_numpy() | kinds.eq(date).to_numpy()
    if not is_date.any():
        return text, None
    dates = pd.to_datetime(values.where(is_date), errors="coerce").dt.date
    return text, pa.array(dates.to_numpy(), pa.date32(), mask=~is_date)


def to_arrow(raw: RawTable) -> pa.Table:
    """The raw frame as text columns (+ DATE twins), `_source_row` and `_pos`."""
    frame = raw.frame
    arrays, names = [], []
    for col in frame.columns:
        if col == ROW:
            continue
        text, dates = _column(frame[col])
        arrays.append(text)
        names.append(col)
        if dates is not None:
            arrays.append(dates)
            names.append(col + DATE_TWIN)
    arrays += [pa.array(frame[ROW].astype("int64").to_numpy()), pa.array(range(len(frame)), pa.int64())]
    names += [ROW, "_pos"]
    return pa.Table.from_arrays(arrays, names=names)


def register(con: duckdb.DuckDBPyConnection, relation: str, raw: RawTable) -> list[str]:
    """Register `raw` as `relation`; return its source column names."""
    con.register(relation, to_arrow(raw))
    return [c for c in raw.frame.columns if c != ROW]
