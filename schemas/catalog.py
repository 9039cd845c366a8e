"""The check catalog (`schemas/checks.csv`) and the one shape every finding takes.

A check is data: rule id, check type (the template that implements it), table, columns,
Kahn category, severity, a message template and a "how to fix" line for the data manager.
Every validation layer (pandera row rules, cross-table rules, the DuckDB path) reports
`Finding`s against these rule ids.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

HERE = Path(__file__).parent
SEVERITIES = ("error", "warning")
KAHN = ("conformance", "completeness", "plausibility")
SHOWN_MAX = 200  # characters of an offending value kept in a finding (value and message)


@dataclass(frozen=True)
class Check:
    rule_id: str
    check_type: str
    table: str
    columns: tuple[str, ...]
    kahn_category: str
    severity: str
    threshold_pct: float
    limit: float | None
    message: str
    scope: tuple[str, str] | None = None   # (column, value): the check applies to those rows only
    how_to_fix: str = ""                   # what a data manager does about a finding (reports show it)

    def format(self, **kw) -> str:
        kw.setdefault("column", "")
        kw.setdefault("value", "")
        kw.setdefault("expected", "")
        kw.setdefault("detail", "")
        kw.setdefault("limit", self.limit)   # a site rule's own limit (mapping.yml `rules:`) overrides it
        return self.message.format(**kw)


@dataclass(frozen=True)
class Finding:
    """One rule broken by one row. `row_id` is the row's id within its mapped table."""

    rule_id: str
    severity: str
    table: str
    row_id: int | None
    column: str
    value: str
    message: str
    local_id: str | None = None
    source_column: str = ""      # the export's own column the value came from (etl.validate.where)


@cache
def catalog() -> dict[str, Check]:
    with (HERE / "checks.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = {}
    for r in rows:
        if r["severity"] not in SEVERITIES or r["kahn_category"] not in KAHN:
            raise ValueError(f"schemas/checks.csv: {r['rule_id']}: bad severity or category")
        cols = tuple(c for c in r["columns"].split(",") if c)
        out[r["rule_id"]] = Check(
            r["rule_id"], r["check_type"], r["table"], cols, r["kahn_category"],
            r["severity"], float(r["threshold_pct"] or 0), float(r["limit"]) if r["limit"] else None,
            r["message"], _scope(r.get("scope") or ""), (r.get("how_to_fix") or "").strip(),
        )
    return out


def _scope(text: str) -> tuple[str, str] | None:
    """`analyte=il6` -> ("analyte", "il6"): a limit that holds for one code only."""
    if not text:
        return None
    col, _, value = text.partition("=")
    return col.strip(), value.strip()


def rule_for(check_type: str, table: str, column: str, default: str) -> str:
    """The catalog's table-specific rule for a generic check, e.g. lab.value's range is
    NEGATIVE_LAB rather than OUT_OF_RANGE. pandera, GX and the SQL path all ask here."""
    for c in catalog().values():
        if c.check_type == check_type and c.table == table and column in c.columns:
            return c.rule_id
    return default


def finding(rule_id: str, table: str, row_id: int | None, column: str = "", value: object = "",
            local_id: str | None = None, **kw) -> Finding:
    """Build a Finding with the catalog's severity and message template."""
    check = catalog()[rule_id]
    if isinstance(value, str) and len(value) > SHOWN_MAX:  # a megabyte cell is not repeated in every output
        value = value[:SHOWN_MAX] + "…"
    shown = "" if value is None else str(value)
    msg = check.format(column=column, value=value, **kw)
    return Finding(rule_id, check.severity, table, row_id, column, shown, msg, local_id)
