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
        lengths = frame[col].map(lambda v: len(v) if isinstance(v, str) else 0)
        for i in lengths.index[lengths > limit]:
            text = frame.at[i, col]
            row_id = int(frame.at[i, "_row_id"]) if "_row_id" in frame else None
            lid = local.at[i] if local is not None and col != "local_id" else None
            out.append(finding(RULE, table, row_id, col, shown(text), local_id=lid,
                               detail=f"{len(text):,}"))
    return out
