"""Every warehouse view transpiles to Spark SQL (sqlglot) and parses as Spark SQL.

A consortium that outgrows one machine runs the same views on Spark or Trino over the
site-partitioned Parquet (docs/performance.md, "Beyond one machine"). These tests keep the
views portable: DuckDB-only syntax that sqlglot cannot carry over fails here. The Spark
text is also translated back to DuckDB and bound against the warehouse schema, so a
transpilation that silently changes column names or structure fails too.
"""
from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

from schemas.model import common_schema
from warehouse.build import META_TABLES, VIEWS_DIR, clinical_ddl
from warehouse.dictionary import load_codelists

VIEWS = sorted(Path(VIEWS_DIR).glob("*.sql"))


def test_there_are_views():
    assert {p.stem for p in VIEWS} >= {"analysis_patient", "site_summary", "quarantine_summary"}


@pytest.mark.parametrize("path", VIEWS, ids=lambda p: p.stem)
@pytest.mark.parametrize("dialect", ["spark", "trino"])
def test_view_transpiles_and_parses(path: Path, dialect: str):
    sql = path.read_text(encoding="utf-8")
    out = sqlglot.transpile(sql, read="duckdb", write=dialect, unsupported_level=ErrorLevel.RAISE)
    assert len(out) == 1
    tree = sqlglot.parse_one(out[0], read=dialect)
    assert tree.find(sqlglot.exp.Select) is not None


def _schema() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name in common_schema():
        con.execute(clinical_ddl(name))
    for name, cols in META_TABLES.items():
        con.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t, _ in cols)})")
    load_codelists(con)
    return con


@pytest.mark.parametrize("path", VIEWS, ids=lambda p: p.stem)
def test_spark_text_round_trips_to_the_same_columns(path: Path):
    """duckdb -> spark -> duckdb still binds against the warehouse tables, with the same columns."""
    sql = path.read_text(encoding="utf-8").rstrip().rstrip(";")
    spark = sqlglot.transpile(sql, read="duckdb", write="spark")[0]
    back = sqlglot.transpile(spark, read="spark", write="duckdb")[0]
    con = _schema()
    original = con.execute(f"DESCRIBE {sql}").fetchall()
    again = con.execute(f"DESCRIBE {back}").fetchall()
    assert [r[0] for r in again] == [r[0] for r in original]


@pytest.mark.parametrize("path", VIEWS, ids=lambda p: p.stem)
@pytest.mark.parametrize("dialect", ["spark", "trino"])
def test_translated_view_has_no_semantic_trap(path: Path, dialect: str):
    """NULL-propagating LEAST/GREATEST, integer division and +/- on dates change results silently."""
    from warehouse.portable import semantic_traps, view_sql

    assert semantic_traps(view_sql(path.stem, dialect), dialect) == []


@pytest.mark.parametrize("sql, trap", [
    ("SELECT least(relapse_date, death_date) FROM outcome", "NULL-propagating LEAST"),
    ("SELECT greatest(crs_grade, icans_grade) FROM t", "NULL-propagating GREATEST"),
    ("SELECT coalesce(least(a, b), a) FROM t", "NULL-propagating LEAST"),  # b alone is lost
    ("SELECT date_diff('day', a, b) / 30 FROM t", "integer division"),
    ("SELECT death_date - infusion_date FROM t", "date arithmetic"),
])
def test_trap_checker_finds_the_traps(sql: str, trap: str):
    """The trap test can fail: the LFS bug of issue 14 (LEAST over a NULL relapse date) is found.
    The SQL is Trino text, as `carpool views --dialect trino` prints it."""
    from warehouse.portable import semantic_traps

    found = semantic_traps(sql, "trino")
    assert any(t.startswith(trap) for t in found), found


def test_null_safe_forms_pass():
    from warehouse.portable import semantic_traps

    sql = ("SELECT coalesce(least(a, b), a, b), greatest(coalesce(x, 0), coalesce(y, 0)), "
           "CAST(n AS DOUBLE) / 12, m / 30.44 FROM t")
    assert semantic_traps(sqlglot.transpile(sql, read="duckdb", write="trino")[0], "trino") == []
