"""The warehouse's Parquet layout: written once, read by DuckDB, Spark and Trino alike.

Every warehouse table is a folder under `parquet/`:
- a table with a `site_id` column is Hive-partitioned: `parquet/<table>/site_id=<id>/data_0.parquet`,
  the files without the `site_id` column (it comes from the folder name, as Spark and
  Trino expect; a file that also held it would clash with the partition column);
- any other table is one file: `parquet/<table>/data_0.parquet`.
Every site has a file for every partitioned table, with zero rows if need be, so an
empty table still carries its schema.

A site's clinical table is written once, in this shape, into the site cache
(`out/sites/<site>/<table>.parquet`, see `warehouse.sitecache`); the published run
hard-links that file into its partition instead of copying rows. The DuckDB file holds
only views over these folders. Their paths are relative to the folder of the DuckDB
file, found through DuckDB's default `temp_directory` (`<database file>.tmp`), so the file
opens read-only from any working directory and keeps working when `out/` is moved.
"""
from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from schemas.model import common_schema
from warehouse.durable import sql_path

if TYPE_CHECKING:   # imported by `scratch`: publishing and pruning runs need no DuckDB
    import duckdb

SQL_TYPES = {"string": "VARCHAR", "int": "INTEGER", "float": "DOUBLE", "bool": "BOOLEAN", "date": "DATE"}
FILE = "data_0.parquet"
# The folder of the open database file: DuckDB's default temp_directory is "<database>.tmp".
# (An analyst who overrides temp_directory must open the file with out/ as working folder.)
ROOT_SQL = r"regexp_replace(current_setting('temp_directory'), '[^/\\]*$', '')"


def clinical_columns(name: str) -> list[tuple[str, str]]:
    """(column, SQL type) of a clinical warehouse table, in table order (site_id included)."""
    t = common_schema()[name]
    return ([("study_id", "VARCHAR")] + [(c.name, SQL_TYPES[c.type]) for c in t.columns if c.name != "local_id"]
            + [("source_file", "VARCHAR"), ("source_row", "INTEGER")])


def file_columns(columns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The columns stored in a partition's file: all but the partition column."""
    return [(c, t) for c, t in columns if c != "site_id"]


def partitioned(columns: list[tuple[str, str]]) -> bool:
    return any(c == "site_id" for c, _ in columns)


def typed_select(columns: list[tuple[str, str]], have: set[str] | None = None) -> str:
    """SELECT list casting each column to its warehouse type (NULL where the source lacks it)."""
    return ", ".join(f'CAST({_q(c) if have is None or c in have else "NULL"} AS {t}) AS {_q(c)}'
                     for c, t in columns)


# DuckDB's memory_limit for the large queries (a site's lab table, the warehouse build); it
# spills to disk beyond it. 384 MB keeps a 100,000-patient, 8-site refresh under 1 GB of
# resident memory (512 MB: 1,036 MB, and ~9% less time; docs/performance.md)
MEMORY_LIMIT = os.environ.get("CARPOOL_DUCKDB_MEMORY", "384MB")


_local = threading.local()


def scratch() -> duckdb.DuckDBPyConnection:
    """One in-memory connection per thread for small reads and writes (frames, file schemas):
    opening a connection costs ~20 ms, a small COPY ~3 ms. Per thread: a DuckDB connection
    must not run two statements at once, and a refresh maps its sites in threads."""
    con = getattr(_local, "con", None)
    if con is None:
        import duckdb

        con = _local.con = duckdb.connect()
    return con


def conforms(path: Path, columns: list[tuple[str, str]]) -> bool:
    """Does the Parquet file hold exactly these columns, in this order, with these types?"""
    got = scratch().execute(f"DESCRIBE SELECT * FROM read_parquet('{sql_path(path)}')").fetchall()
    return [(r[0], r[1]) for r in got] == columns


def write(con: duckdb.DuckDBPyConnection, source_sql: str, columns: list[tuple[str, str]], dest: Path,
          have: set[str] | None = None, order: str = "") -> None:
    """COPY `source_sql` (a relation name or a parenthesised query) to `dest`, typed as `columns`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY (SELECT {typed_select(columns, have)} FROM {source_sql} {order}) "
                f"TO '{sql_path(dest)}' (FORMAT PARQUET)")


def write_frame(frame, columns: list[tuple[str, str]], dest: Path, order: bool = False) -> None:
    """A DataFrame (possibly empty, possibly lacking columns) as a typed Parquet file."""
    con = scratch()
    have = set(frame.columns) if frame is not None and len(frame.columns) else set()
    if not have:
        write(con, "(SELECT 1 WHERE false)", columns, dest, set())
        return
    con.register("_frame", frame)
    try:
        write(con, "_frame", columns, dest, have, "ORDER BY ALL" if order else "")
    finally:
        con.unregister("_frame")


def place(source: Path, dest: Path) -> None:
    """Put an already written file at `dest` without copying its rows where the file system
    allows (a hard link: the site cache replaces its files, it never rewrites them in place)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, dest)
    except OSError:  # another device, or no hard links (some network shares): copy the bytes
        shutil.copyfile(source, dest)


def partition_file(root: Path, table: str, site_id: str) -> Path:
    return root / table / f"site_id={site_id}" / FILE


def table_file(root: Path, table: str) -> Path:
    return root / table / FILE


def view_sql(table: str, columns: list[tuple[str, str]]) -> str:
    """The view exposing a table folder, relative to the database file's folder."""
    cols = ", ".join(_q(c) for c, _ in columns)
    if partitioned(columns):
        src = (f"read_parquet({ROOT_SQL} || 'parquet/{table}/*/*.parquet', hive_partitioning = true, "
               "hive_types = {'site_id': VARCHAR})")
    else:
        src = f"read_parquet({ROOT_SQL} || 'parquet/{table}/*.parquet')"
    return f"CREATE VIEW {_q(table)} AS SELECT {cols} FROM {src}"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
