"""`carpool export adam`: CDISC ADaM ADSL and ADTTE as SAS transport v5, with a define-style CSV.

The datasets are SQL over the warehouse (`adsl.sql`, `adtte.sql` beside this module); each
file's `-- Columns:` header gives the variable labels, so the label of a variable is written
in one place. SAS transport v5 limits names to 8 characters and labels to 40; a longer one is
a programming error caught before anything is written.
"""
from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyreadstat

from etl.escape import write_csv
from warehouse.dictionary import view_columns

HERE = Path(__file__).resolve().parent
DATASETS = {"ADSL": "Subject-Level Analysis Dataset", "ADTTE": "Time-to-Event Analysis Dataset"}


def dataset(con: duckdb.DuckDBPyConnection, name: str) -> tuple[pd.DataFrame, dict[str, str], set[str]]:
    """(rows, {variable: label}, date variables) of one ADaM dataset, from its SQL file."""
    sql = (HERE / f"{name.lower()}.sql").read_text(encoding="utf-8")
    labels = {v: d.description for v, d in view_columns(sql).items()}
    frame = con.execute(sql).fetchdf()
    if list(frame.columns) != list(labels):
        raise ValueError(f"{name.lower()}.sql: header documents {list(labels)}, query returns {list(frame.columns)}")
    for var, label in labels.items():
        if len(var) > 8 or len(label) > 40:
            raise ValueError(f"{name}.{var}: SAS v5 allows names of 8 and labels of 40 characters ({label!r})")
    dates = {c for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])}
    for col in dates:  # as datetime.date, so pyreadstat writes SAS dates (DATE9.)
        frame[col] = frame[col].dt.date
    return frame, labels, dates


def export_adam(con: duckdb.DuckDBPyConnection, out: Path) -> list[Path]:
    """Write out/adsl.xpt, out/adtte.xpt and out/define.csv; return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    written, define = [], []
    for name, label in DATASETS.items():
        frame, labels, dates = dataset(con, name)
        path = out / f"{name.lower()}.xpt"
        pyreadstat.write_xport(frame, str(path), file_label=label, table_name=name, file_format_version=5,
                               column_labels=[labels[c] for c in frame.columns])
        written.append(path)
        for order, col in enumerate(frame.columns, 1):
            num = col in dates or pd.api.types.is_numeric_dtype(frame[col])
            define.append({"dataset": name, "variable": col, "label": labels[col], "order": order,
                           "type": "Num" if num else "Char", "format": "DATE9." if col in dates else "",
                           "length": 8 if num else int(max(1, frame[col].dropna().astype(str).str.len().max() or 1)),
                           "source": f"warehouse/exports/{name.lower()}.sql"})
    path = out / "define.csv"
    write_csv(pd.DataFrame(define), path, index=False)
    return [*written, path]

