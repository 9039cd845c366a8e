"""The data dictionary: every warehouse table and view column, with type, UCUM unit, code list
and description, each from the one place that states it.

- Clinical tables: `schemas/common.yml` (description, unit, code list).
- carpool's own tables: `META_TABLES` in `warehouse.build`.
- Code-list tables (`codelist_<name>`): `codelist_columns` in `schemas/common.yml`.
- Views: the `-- Columns:` block of the view's `.sql` header, one line per column:
  `--   name [ucum] {codelist}: description` (unit and code list optional).

`missing_descriptions()` lists every column without one; a test keeps that list empty.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb
import pandas as pd

from schemas.model import HERE as SCHEMAS_DIR
from schemas.model import raw_common_schema
from warehouse import layout

COLUMN_LINE = re.compile(r"^--\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?:\[(?P<unit>[^\]]+)\])?\s*"
                         r"(?:\{(?P<codelist>[a-z_]+)\})?\s*:\s*(?P<text>.+)$")
CODELIST_PREFIX = "codelist_"
COLUMNS = [("table", "VARCHAR", "Table or view name."),
           ("column", "VARCHAR", "Column name."),
           ("kind", "VARCHAR", "table, view or codelist."),
           ("type", "VARCHAR", "DuckDB type of the column."),
           ("unit_ucum", "VARCHAR", "Unit as a UCUM code; null for unitless columns."),
           ("codelist", "VARCHAR", "Code list (warehouse table codelist_<name>) the values come from."),
           ("description", "VARCHAR", "What the column means.")]


@dataclass(frozen=True)
class ColumnDoc:
    description: str
    unit_ucum: str | None = None
    codelist: str | None = None


def ucum(unit: str | None) -> str | None:
    """The UCUM code of a carpool unit (schemas/common.yml `units:`); an unlisted unit is an error."""
    if not unit:
        return None
    units = raw_common_schema().get("units", {})
    if unit not in units:
        raise KeyError(f"schemas/common.yml: unit {unit!r} has no UCUM code under `units:`")
    return units[unit]


def view_columns(sql: str) -> dict[str, ColumnDoc]:
    """The `-- Columns:` block of a view's header comment."""
    docs, inside = {}, False
    for line in sql.splitlines():
        if not line.startswith("--"):
            break
        if line.strip() == "-- Columns:":
            inside = True
            continue
        m = COLUMN_LINE.match(line) if inside else None
        if m:
            docs[m["name"]] = ColumnDoc(m["text"].strip(), m["unit"], m["codelist"])
    return docs


@cache
def codelist_names() -> list[str]:
    return sorted(p.stem for p in (SCHEMAS_DIR / "codelists").glob("*.csv"))


def codelist_select(name: str) -> str:
    """The query reading schemas/codelists/<name>.csv (types detected: is_steroid is BOOLEAN)."""
    path = str(SCHEMAS_DIR / "codelists" / f"{name}.csv").replace("'", "''")
    return f"SELECT * FROM read_csv('{path}', header=true, all_varchar=false)"


def load_codelists(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Create one in-memory table `codelist_<name>` per schemas/codelists/<name>.csv (a site's own
    database in federated mode; the warehouse stores them as Parquet); return the names."""
    tables = []
    for name in codelist_names():
        table = CODELIST_PREFIX + name
        con.execute(f"CREATE TABLE {table} AS {codelist_select(name)}")
        tables.append(table)
    return tables


def documented(table_docs: dict[str, dict[str, ColumnDoc]], views_dir: Path) -> dict[str, dict[str, ColumnDoc]]:
    """All column docs by table: the clinical and meta tables given, code lists, and views."""
    raw = raw_common_schema()
    docs = {t: dict(cols) for t, cols in table_docs.items()}
    for tname, t in raw["tables"].items():
        cols = docs.setdefault(tname, {})
        for cname, c in t["columns"].items():
            cols.setdefault(cname, ColumnDoc(c.get("description", ""), ucum(c.get("unit")), c.get("codelist")))
    meanings = raw.get("codelist_columns", {})
    for name in codelist_names():
        docs[CODELIST_PREFIX + name] = {c: ColumnDoc(text) for c, text in meanings.items()}
    for path in sorted(views_dir.glob("*.sql")):
        docs[path.stem] = view_columns(path.read_text(encoding="utf-8"))
    docs["data_dictionary"] = {c: ColumnDoc(d) for c, _, d in COLUMNS}
    return docs


def write_dictionary(con: duckdb.DuckDBPyConnection, docs: dict[str, dict[str, ColumnDoc]],
                     stored: set[str], root: Path) -> None:
    """`data_dictionary` from the catalog's columns and the docs, written to root (the run's
    parquet/) and exposed as a view like every table. Every relation in the file is a view, so
    `kind` comes from `stored`, the tables kept as Parquet: codelist, table, else view."""
    cols = [(c, t) for c, t, _ in COLUMNS]
    target = layout.table_file(root, "data_dictionary")
    layout.write_frame(None, cols, target)  # so that the dictionary lists its own columns too
    con.execute(layout.view_sql("data_dictionary", cols))
    rows = con.execute("""
        SELECT c.table_name, c.column_name, c.data_type,
               CASE WHEN starts_with(c.table_name, 'codelist_') THEN 'codelist'
                    WHEN list_contains($stored, c.table_name) THEN 'table' ELSE 'view' END AS kind
        FROM duckdb_columns() c
        WHERE c.database_name = current_database() AND c.schema_name = 'main'
        ORDER BY kind, c.table_name, c.column_index
    """, {"stored": sorted(stored)}).fetchall()
    out = []
    for table, column, dtype, kind in rows:
        doc = docs.get(table, {}).get(column, ColumnDoc(""))
        out.append((table, column, kind, dtype, doc.unit_ucum, doc.codelist, doc.description))
    layout.write_frame(pd.DataFrame(out, columns=[c for c, _ in cols]), cols, target)


def missing_descriptions(con: duckdb.DuckDBPyConnection) -> list[str]:
    """`table.column` of every dictionary row without a description."""
    return [f"{t}.{c}" for t, c in con.execute(
        "SELECT \"table\", \"column\" FROM data_dictionary WHERE coalesce(description, '') = '' ORDER BY 1, 2"
    ).fetchall()]


def _q(name: str) -> str:
    return f'"{name}"'
