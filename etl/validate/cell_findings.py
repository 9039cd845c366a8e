"""Findings for source cells the reader flagged (rules EXCEL_ERROR_CELL, EXCEL_UNCACHED_FORMULA).

A reader cannot give such a cell a value (it reads as empty), so every mapped row built
from that source row is reported, with the source column named, when the mapping reads
that column anywhere; a flagged cell in a column no mapping mentions changes nothing.
With `on_error: patient` the patient goes with it, as for any error.
"""
from __future__ import annotations

import pandas as pd
from pydantic import BaseModel

from etl.read.readers import RawTable
from schemas.catalog import Finding, finding


def mentioned_columns(model: BaseModel) -> set[str]:
    """Every string in the mapping model: a superset of the source columns it reads."""
    out: set[str] = set()

    def walk(v) -> None:
        if isinstance(v, BaseModel):
            walk(v.model_dump(by_alias=True))
        elif isinstance(v, dict):
            for k, x in v.items():
                out.add(str(k))
                walk(x)
        elif isinstance(v, list | tuple | set):
            for x in v:
                walk(x)
        elif isinstance(v, str):
            out.add(v)

    walk(model)
    return out


def cell_findings(mapping: BaseModel, raw: dict[str, RawTable], tables: dict[str, pd.DataFrame]) -> list[Finding]:
    used = mentioned_columns(mapping)
    flagged: dict[tuple[str, int], list[tuple[str, str, str]]] = {}
    for r in raw.values():
        for row, column, rule, shown in r.bad_cells:
            if column in used:
                flagged.setdefault((r.label, int(row)), []).append((column, rule, shown))
    if not flagged:
        return []
    out = []
    for name, frame in tables.items():
        for rid, lid, rows in zip(frame["_row_id"], frame["local_id"], frame["_source_rows"], strict=True):
            for src in sorted({(str(f), int(n)) for f, n in rows}):
                for column, rule, shown in flagged.get(src, []):
                    out.append(finding(rule, name, int(rid), column, shown,
                                       local_id=None if pd.isna(lid) else str(lid)))
    return out
