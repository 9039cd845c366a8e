"""Where a finding is in the export, as the data manager sees it.

A finding names a common-schema column (`sex`); the person fixing it looks at the export's
own column (`Geschlecht`), in a sheet, at a row. `source_columns` reads that from the
mapping (per melt group: a CRS group's `crs_grade`, an ICANS group's `icans_grade`),
`annotate` writes it into each finding, and `location` renders the quarantine record as
`column Geschlecht (sex), sheet Patients, row 12` for the report and the quarantine CSV.
"""
from __future__ import annotations

from dataclasses import replace

import pandas as pd

from etl.compile.mapping import ColumnSpec, SiteMapping
from schemas.catalog import Finding


def source_columns(mapping: SiteMapping, table: str, group: int = 0) -> dict[str, str]:
    """Common column -> the export column it is read from, for one melt group of a table
    (constants and harmonized columns have none; a derivation names its inputs)."""
    tmap = mapping.tables.get(table)
    if tmap is None:
        return {}
    specs: dict[str, ColumnSpec] = dict(tmap.columns)
    if tmap.melt and group < len(tmap.melt):
        specs.update(tmap.melt[group].columns)
    out = {}
    for col, spec in specs.items():
        if spec.from_:
            out[col] = spec.from_
        elif spec.args:
            out[col] = ", ".join(spec.args.values())
        if col == "value" and spec.unit_from:
            out["source_unit"] = spec.unit_from
    if table == "patient" and "age_years" in specs and specs["age_years"].derive and mapping.identifiers.birth_date:
        out["age_years"] = mapping.identifiers.birth_date.from_ or ""
    return out


def annotate(findings: list[Finding], mapping: SiteMapping, groups: dict[str, dict[int, int]]) -> list[Finding]:
    """Each finding with its export column (`groups`: table -> row id -> melt group)."""
    cache: dict[tuple[str, int], dict[str, str]] = {}
    out = []
    for f in findings:
        if f.source_column or not f.column:
            out.append(f)
            continue
        g = groups.get(f.table, {}).get(f.row_id, 0) if f.row_id is not None else 0
        names = cache.setdefault((f.table, g), source_columns(mapping, f.table, g))
        cols = [names.get(c, "") for c in f.column.split(",")]
        out.append(replace(f, source_column=", ".join(c for c in cols if c)) if any(cols) else f)
    return out


def location(record: dict) -> str:
    """`column Geschlecht (sex), sheet Patients, row 12` for one quarantine record."""
    parts = []
    src, col = str(record.get("source_column") or ""), str(record.get("column_name") or "")
    if src and col and src != col:
        parts.append(f"column {src} ({col})")
    elif src or col:
        parts.append(f"column {src or col}")
    file = str(record.get("source_file") or "")
    if file.endswith("]") and "[" in file:       # a workbook sheet: `book.xlsx[Patients]`
        name, _, sheet = file[:-1].partition("[")
        parts.append(f"file {name.strip()}, sheet {sheet}")
    elif file:
        parts.append(f"file {file}")
    row = record.get("source_row")
    if row is not None and not pd.isna(row) and str(row) != "":
        parts.append(f"row {int(row)}")
    return ", ".join(parts)
