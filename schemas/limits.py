"""Limit rules of the catalog: dates before a floor year or after the study cut-off
(`date_limit`; a follow-up date after the cut-off is a warning, since exports are taken
after it and the analysis censors there, but an infusion after it is an error), and values
beyond a physiological limit (`value_limit`, optionally for one code only, e.g. ferritin).

The limits are catalog data (`schemas/checks.csv`: `limit`, `scope`); the cut-off comes
from the run's config, never from the clock. Both engines read them from here: the pandas
path through `limit_findings`, the SQL path through `sql_limit_checks`, which returns
(rule, column, failing predicate, shown value, expected) over one table's columns.
"""
from __future__ import annotations

from datetime import date

import pandas as pd

from schemas.catalog import Check, Finding, catalog, finding
from schemas.model import Table, common_schema


def date_columns(table: Table) -> list[str]:
    return [c.name for c in table.columns if c.type == "date"]


def _checks(check_type: str) -> list[Check]:
    return [c for c in catalog().values() if c.check_type == check_type]


def date_checks(table: str, column: str) -> list[Check]:
    """The floor and the ceiling rule of one date column: a row naming the table and column
    (INFUSION_AFTER_CUTOFF) wins over the `*` row of the same kind (DATE_AFTER_CUTOFF)."""
    out = []
    for floor in (True, False):
        kind = [c for c in _checks("date_limit") if _is_floor(c) == floor]
        own = [c for c in kind if c.table == table and column in c.columns]
        out += own[:1] or [c for c in kind if c.table == "*" and (not c.columns or column in c.columns)][:1]
    return out


def _value_checks(table: str) -> list[Check]:
    return [c for c in _checks("value_limit") if c.table in (table, "*")]


def limit_findings(tables: dict[str, pd.DataFrame], cutoff: date | None) -> list[Finding]:
    """Every date or value beyond its catalog limit, one finding per row and column."""
    out: list[Finding] = []
    for name, frame in tables.items():
        if name not in common_schema():
            continue
        for col in date_columns(common_schema()[name]):
            if col not in frame.columns:
                continue
            d = pd.to_datetime(frame[col], errors="coerce", cache=False)
            for check in date_checks(name, col):
                bound = _date_bound(check, cutoff)
                if bound is None:
                    continue
                bad = d.notna() & ((d < bound) if _is_floor(check) else (d > bound))
                out += [finding(check.rule_id, name, int(r), col, day.date().isoformat(),
                                local_id=_lid(lid), expected=bound.date().isoformat())
                        for r, lid, day in zip(frame.loc[bad, "_row_id"], frame.loc[bad, "local_id"], d[bad],
                                               strict=True)]
        for check in _value_checks(name):
            col = check.columns[0]
            if col not in frame.columns:
                continue
            v = pd.to_numeric(frame[col], errors="coerce")
            bad = v.notna() & (v.abs() > check.limit)
            if check.scope:
                scol, sval = check.scope
                bad &= frame[scol].astype("string").eq(sval).fillna(False) if scol in frame.columns else False
            out += [finding(check.rule_id, name, int(r), col, x, local_id=_lid(lid))
                    for r, lid, x in zip(frame.loc[bad, "_row_id"], frame.loc[bad, "local_id"], v[bad], strict=True)]
    return out


def sql_limit_checks(table: Table, cutoff: date | None, ident=lambda n: '"' + n.replace('"', '""') + '"'
                     ) -> list[tuple[str, str, str, str, str]]:
    """The same rules as SQL over one table: (rule_id, column, failing, shown value, expected)."""
    out = []
    for col in date_columns(table):
        q = ident(col)
        for check in date_checks(table.name, col):
            bound = _date_bound(check, cutoff)
            if bound is None:
                continue
            op = "<" if _is_floor(check) else ">"
            day = bound.date().isoformat()
            out.append((check.rule_id, col, f"{q} IS NOT NULL AND CAST({q} AS DATE) {op} DATE '{day}'",
                        f"CAST(CAST({q} AS DATE) AS VARCHAR)", f"'{day}'"))
    names = {c.name for c in table.columns}
    for check in _value_checks(table.name):
        col = check.columns[0]
        if col not in names:
            continue
        q = ident(col)
        cond = f"{q} IS NOT NULL AND abs({q}) > {check.limit!r}"
        if check.scope:
            scol, sval = check.scope
            cond += f" AND {ident(scol)} = '{sval.replace(chr(39), chr(39) * 2)}'"
        out.append((check.rule_id, col, cond, f"CAST({q} AS VARCHAR)", "''"))
    return out


def _is_floor(check: Check) -> bool:
    return check.limit is not None    # a floor year; the ceiling is the cut-off


def _date_bound(check: Check, cutoff: date | None) -> pd.Timestamp | None:
    if _is_floor(check):
        return pd.Timestamp(int(check.limit), 1, 1)
    return pd.Timestamp(cutoff) if cutoff is not None else None


def _lid(v: object) -> str | None:
    return None if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
