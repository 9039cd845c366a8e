"""Read-only access to the warehouse: the SQL sandbox behind `carpool sql` and every reader.

Two locks, each enough on its own for most attacks, and both always on:
- **The statement.** DuckDB's own parser (`extract_statements`, not a regex) must find
  exactly one statement, of type SELECT (which includes `WITH … SELECT`, `FROM t`,
  `VALUES` and `PIVOT` queries). COPY, EXPORT, ATTACH, INSTALL/LOAD, SET, PRAGMA, CALL,
  any DDL or DML, and a second statement hidden after a `;` or a comment are refused
  before anything runs.
- **The connection.** The database is opened read-only with
  `enable_external_access=false` (no `read_csv('/etc/passwd')`, no COPY to a file, no
  ATTACH of another file, no `getenv`), extension auto-install/auto-load off, a memory
  limit, no spill directory, and `lock_configuration=true`, so no statement can turn any
  of that back on. The only files it may open are the warehouse file itself and the
  run's own `parquet/` and `results/` folders beside it, plus the folders of the Parquet
  files its own views read (`allowed_directories`; carpool wrote those views at build
  time, and a read-only connection cannot add one): the warehouse, never a raw export.

A refused statement is a `UsageError` with one line saying why; the warehouse is never
written. Queries run at most `TIMEOUT_S` seconds (the connection is interrupted).
"""
from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import duckdb
import pyarrow as pa

from etl.errors import UsageError

MEMORY_LIMIT = os.environ.get("CARPOOL_SQL_MEMORY", "1GB")
TIMEOUT_S = float(os.environ.get("CARPOOL_SQL_TIMEOUT", "300"))
ALLOWED_TYPES = {duckdb.StatementType.SELECT}
VIEW_FILE = re.compile(r"read_parquet\(\s*'((?:[^']|'')*)'", re.IGNORECASE)
WAREHOUSE_DIRS = ("parquet", "results")  # beside the DuckDB file: the run's tables and its analysis results


def check_query(sql: str) -> str:
    """The one SELECT statement in `sql`, or a UsageError saying in one line why not."""
    parser = _lock(duckdb.connect(":memory:", config=_CONFIG), [])
    try:
        statements = parser.extract_statements(sql)
    except duckdb.Error as exc:
        raise UsageError(f"SQL refused: it does not parse: {_first_line(exc)}") from None
    finally:
        parser.close()
    if not statements:
        raise UsageError("SQL refused: no statement given")
    if len(statements) > 1:
        kinds = ", ".join(s.type.name for s in statements)
        raise UsageError(f"SQL refused: exactly one statement is allowed, found {len(statements)} ({kinds})")
    stmt = statements[0]
    if stmt.type not in ALLOWED_TYPES:
        raise UsageError(f"SQL refused: carpool sql is read-only: only SELECT or WITH ... SELECT, not {stmt.type.name}")
    return stmt.query


def open_readonly(db_path: Path) -> duckdb.DuckDBPyConnection:
    """A locked, read-only connection to a warehouse file (see the module docstring)."""
    db = Path(db_path).resolve()  # out/warehouse.duckdb is a symlink into runs/<run_id>/
    beside = [folder / sub for folder in (db.parent, Path(db_path).absolute().parent)  # resolved, and as linked
              for sub in WAREHOUSE_DIRS]
    try:
        # temp_directory as DuckDB sets it by default (<file>.tmp): the views find their Parquet
        # folder relative to the database file through it (warehouse.layout.ROOT_SQL)
        con = duckdb.connect(str(db), read_only=True, config={**_CONFIG, "temp_directory": f"{db}.tmp"})
        beside += _view_folders(con)
        beside += [d.resolve() for d in beside if d.is_dir()]  # e.g. results/ links to the result set
        return _lock(con, list(dict.fromkeys(d for d in beside if d.is_dir())))
    except duckdb.Error as exc:
        raise UsageError(f"{db}: cannot open the warehouse read-only: {_first_line(exc)}") from None


def _view_folders(con: duckdb.DuckDBPyConnection) -> list[Path]:
    """Folders of the Parquet files the warehouse's own views read. carpool wrote those views
    at build time (a read-only connection cannot add one), so their files are the warehouse's."""
    out = []
    for (sql,) in con.execute("SELECT sql FROM duckdb_views() WHERE NOT internal AND sql IS NOT NULL").fetchall():
        for literal in VIEW_FILE.findall(sql):
            out.append(Path(literal.replace("''", "'")).parent)
    return out


def run_query(db_path: Path, sql: str, timeout_s: float = TIMEOUT_S) -> pa.Table:
    """Check `sql`, run it on a locked read-only connection, return the result as Arrow."""
    query = check_query(sql)
    con = open_readonly(db_path)
    timer = threading.Timer(timeout_s, con.interrupt)
    timer.start()
    try:
        return con.sql(query).to_arrow_table()
    except duckdb.InterruptException:
        raise UsageError(f"SQL stopped: it ran longer than {timeout_s:g} s (CARPOOL_SQL_TIMEOUT)") from None
    except duckdb.Error as exc:
        raise UsageError(f"SQL error: {_first_line(exc)}") from None
    finally:
        timer.cancel()
        con.close()


_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False,
           "allow_community_extensions": False, "memory_limit": MEMORY_LIMIT}


def _lock(con: duckdb.DuckDBPyConnection, allowed: list[Path]) -> duckdb.DuckDBPyConnection:
    """Allowed folders, then external access off, then the configuration locked (in this
    order: DuckDB takes allowed_directories only on an open database with external access
    still on, and no setting at all once locked)."""
    if allowed:
        con.execute("SET allowed_directories = $dirs", {"dirs": [str(d) + os.sep for d in allowed]})
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _first_line(exc: Exception) -> str:
    lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
    return " ".join(lines[:2]) if lines else type(exc).__name__
