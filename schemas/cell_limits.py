"""Cell size limit (rule CELL_TOO_LONG in checks.csv): an oversized text cell is a finding.

A cell longer than the catalog's limit (32,767 characters, Excel's own cell limit) is a
pasted document or a broken export, never a clinical value. Its row is quarantined with
the rule, naming the column and the length; the finding shows only the cell's start, so
a megabyte cell does not flow into the quarantine, the report or the warehouse.
"""
from __future__ import annotations

import pandas as pd

from schemas.catalog import Finding, catalog, finding

RULE = "CELL_TOO_LONG"
SHOWN = 40


def shown(text: str) -> str:
    """What a finding shows of an oversized cell: its start only."""
    return text[:SHOWN] + "…"


def oversize_findings(table: str, frame: pd.DataFrame) -> list[Finding]:
    """One finding per text cell longer than the limit, in the mapped table `table`."""
    limit = int(catalog()[RULE].limit)
    out = []
    local = frame["local_id"] if "local_id" in frame else None
    for col in frame.columns:
        if col.startswith("_") or frame[col].dtype != object:
            continue
        try:   # vectorized narrowing (.str.len() also measures lists); the loop decides
            long = frame[col].str.len() > limit
        except AttributeError:   # a column holding no text at all
            continue
        for i in long.index[long.to_numpy(dtype=bool, na_value=False)]:
            text = frame.at[i, col]
            if not isinstance(text, str):
                continue
            row_id = int(frame.at[i, "_row_id"]) if "_row_id" in frame else None
            lid = local.at[i] if local is not None and col != "local_id" else None
            out.append(finding(RULE, table, row_id, col, shown(text), local_id=lid,
                               detail=f"{len(text):,}"))
    return out
