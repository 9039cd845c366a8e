"""Write the pooled warehouse: a DuckDB file plus site-partitioned Parquet, with views.

Tables are created from the common schema with explicit SQL types and `COMMENT ON`
descriptions; `data_dictionary` holds the same text as a table. Views come from
`warehouse/views/*.sql`, one view per file, named after the file. Everything is written
into a fresh directory; publishing it atomically is `warehouse.publish`'s job.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from schemas.model import common_schema
from warehouse import results
from warehouse.dictionary import ColumnDoc, documented, load_codelists, write_dictionary
from warehouse.durable import sql_path

VIEWS_DIR = Path(__file__).resolve().parent / "views"
MEMORY_LIMIT = os.environ.get("CARPOOL_DUCKDB_MEMORY", "512MB")  # bounded; DuckDB spills beyond it
SORT_MAX_ROWS = 1_000_000
SQL_TYPES = {"string": "VARCHAR", "int": "INTEGER", "float": "DOUBLE", "bool": "BOOLEAN", "date": "DATE"}
META_TABLES: dict[str, list[tuple[str, str, str]]] = {
    "quarantine": [
        ("run_id", "VARCHAR", "Run that found the problem."), ("site_id", "VARCHAR", "Center."),
        ("source_file", "VARCHAR", "Export file (and sheet) the row came from."),
        ("source_row", "INTEGER", "Row as a person sees it: CSV line (header = 1), sheet row, SPSS case."),
        ("target_table", "VARCHAR", "Common-schema table the row was mapped to."),
        ("rule_id", "VARCHAR", "Check catalog rule (schemas/checks.csv)."),
        ("severity", "VARCHAR", "error (row quarantined) or warning (row loaded, flagged)."),
        ("column_name", "VARCHAR", "Column the rule looked at."),
        ("value", "VARCHAR", "Offending value (direct identifiers masked as ***)."),
        ("message", "VARCHAR", "What is wrong and what was expected."),
    ],
    "etl_file": [
        ("run_id", "VARCHAR", "Run."), ("site_id", "VARCHAR", "Center."),
        ("path", "VARCHAR", "Export file (and sheet)."), ("sha256", "VARCHAR", "Content hash of the file."),
        ("rows_read", "INTEGER", "Data rows read."), ("rows_loaded", "INTEGER", "Rows fully loaded."),
        ("rows_quarantined", "INTEGER", "Rows with at least one quarantined part. read = loaded + quarantined."),
    ],
    "etl_run": [
        ("run_id", "VARCHAR", "Run id."), ("started_at", "TIMESTAMP", "Start (UTC)."),
        ("finished_at", "TIMESTAMP", "End (UTC)."), ("status", "VARCHAR", "ok, data_errors or failed."),
        ("code_version", "VARCHAR", "carpool version + hash of its sources (etl.version)."),
        ("config_hash", "VARCHAR", "Hash of the config file."),
        ("sites", "VARCHAR", "Per-site counts (JSON)."), ("message", "VARCHAR", "Failure reason, if any."),
        ("key_source", "VARCHAR", "Where the pseudonymization key came from: env, file or demo (never the key)."),
    ],
    "study_config": [("key", "VARCHAR", "Setting."), ("value", "VARCHAR", "Value (e.g. cutoff_date).")],
}


LINEAGE_DOCS = {"study_id": ColumnDoc("Pseudonymous patient id: keyed HMAC of site and local id."),
                "source_file": ColumnDoc("Export file (and sheet) of the row."),
                "source_row": ColumnDoc("Row in that file as a person sees it.")}


@dataclass(frozen=True)
class WarehouseInput:
    run_id: str
    tables: dict[str, pd.DataFrame | list]  # pooled clinical tables (study_id, site_id, ..., source_file,
    #                                         source_row); a list mixes DataFrames and Parquet paths
    quarantine: pd.DataFrame
    files: pd.DataFrame
    runs: pd.DataFrame
    settings: dict[str, str]


def clinical_ddl(name: str) -> str:
    t = common_schema()[name]
    cols = ["study_id VARCHAR NOT NULL"] + [
        f"{c.name} {SQL_TYPES[c.type]}" for c in t.columns if c.name != "local_id"
    ] + ["source_file VARCHAR", "source_row INTEGER"]
    return f"CREATE TABLE {name} ({', '.join(cols)})"


def build(dest: Path, data: WarehouseInput) -> Path:
    """Write dest/warehouse.duckdb and dest/parquet/<table>/site_id=<id>/; return the db path."""
    dest.mkdir(parents=True, exist_ok=True)
    db_path = dest / "warehouse.duckdb"
    con = duckdb.connect(str(db_path), config={"memory_limit": MEMORY_LIMIT,
                                               "temp_directory": str(dest / ".spill")})
    try:
        for name, table in common_schema().items():
            con.execute(clinical_ddl(name))
            cols = ["study_id"] + [c for c in table.column_names if c != "local_id"] + ["source_file", "source_row"]
            parts = data.tables.get(name)
            for part in parts if isinstance(parts, list) else [parts]:
                if isinstance(part, Path):  # a DuckDB-path table: straight from its Parquet file
                    con.execute(f"INSERT INTO {name} SELECT {', '.join(cols)} FROM read_parquet('{sql_path(part)}')")
                elif part is not None and len(part):
                    con.register("_frame", part[cols])
                    con.execute(f"INSERT INTO {name} SELECT * FROM _frame")
                    con.unregister("_frame")
            _comment(con, name, table.description, [(c.name, c.description + (f" [{c.unit}]" if c.unit else ""))
                                                     for c in table.columns if c.name != "local_id"]
                     + [(c, d.description) for c, d in LINEAGE_DOCS.items()])
        for name, cols in META_TABLES.items():
            con.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t, _ in cols)})")
            _comment(con, name, f"carpool {name.replace('_', ' ')}", [(c, d) for c, _, d in cols])
        _insert(con, "quarantine", data.quarantine.assign(run_id=data.run_id))
        _insert(con, "etl_file", data.files.assign(run_id=data.run_id))
        _insert(con, "etl_run", data.runs)
        _insert(con, "study_config", pd.DataFrame(sorted(data.settings.items()), columns=["key", "value"]))
        load_codelists(con)
        create_views(con)
        results.attach_empty(con, dest)   # the `analysis_result` view: filled by `carpool analyze`
        write_dictionary(con, documented(_table_docs(), VIEWS_DIR))
        _parquet(con, dest / "parquet")
        con.execute("CHECKPOINT")
    finally:
        con.close()
        shutil.rmtree(dest / ".spill", ignore_errors=True)
    return db_path


def create_views(con: duckdb.DuckDBPyConnection, views_dir: Path = VIEWS_DIR) -> list[str]:
    """Create one view per .sql file, retrying until dependencies between views resolve."""
    pending = {p.stem: p.read_text(encoding="utf-8") for p in sorted(views_dir.glob("*.sql"))}
    done, last_error = [], {}
    while pending:
        progressed = False
        for name, sql in list(pending.items()):
            try:
                con.execute(f"CREATE OR REPLACE VIEW {name} AS\n{sql.rstrip().rstrip(';')}")
            except duckdb.CatalogException as exc:
                last_error[name] = exc
                continue
            comment = _header_comment(sql)
            if comment:
                con.execute(f"COMMENT ON VIEW {name} IS {_literal(comment)}")
            done.append(name)
            del pending[name]
            progressed = True
        if not progressed:
            raise RuntimeError("cannot create views: " + "; ".join(f"{n}: {e}" for n, e in last_error.items()))
    return done


def _header_comment(sql: str) -> str:
    lines = []
    for line in sql.splitlines():
        if not line.startswith("--"):
            break
        lines.append(line[2:].strip())
    return " ".join(x for x in lines if x)


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    if frame is None or frame.empty:
        return
    cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
    con.register("_frame", frame.reindex(columns=cols))
    con.execute(f"INSERT INTO {table} SELECT * FROM _frame")
    con.unregister("_frame")


def _comment(con, table: str, description: str, columns: list[tuple[str, str]]) -> None:
    con.execute(f"COMMENT ON TABLE {table} IS {_literal(description)}")
    for col, text in columns:
        con.execute(f"COMMENT ON COLUMN {table}.{col} IS {_literal(text)}")


def _literal(text: str) -> str:
    """A SQL string literal (COMMENT ON takes no parameters)."""
    return "'" + text.replace("'", "''") + "'"


def _table_docs() -> dict[str, dict[str, ColumnDoc]]:
    """Docs of carpool's own tables and of the lineage columns every clinical table carries."""
    docs = {name: {c: ColumnDoc(d) for c, _, d in cols} for name, cols in META_TABLES.items()}
    docs["analysis_result"] = {c: ColumnDoc(d) for c, _, d in results.COLUMNS}
    for name in common_schema():
        docs[name] = dict(LINEAGE_DOCS)
    return docs


def _parquet(con: duckdb.DuckDBPyConnection, root: Path) -> None:
    """Every table as Parquet: site tables partitioned by site_id, the others as one file.

    An empty table is still written, as one file that carries the schema, so an engine that
    registers every folder under parquet/ (Spark, Trino, a notebook) finds every table.
    """
    root.mkdir(parents=True, exist_ok=True)
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() ORDER BY 1").fetchall()]
    for name in tables:
        n = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
        cols = [r[0] for r in con.execute(f"DESCRIBE {name}").fetchall()]
        target = root / name
        # ORDER BY ALL makes the files byte-stable; a table too large to sort cheaply keeps its
        # insertion order, which is deterministic too (sites in config order, rows in file order)
        order = "ORDER BY ALL" if n <= SORT_MAX_ROWS else ""
        if n and "site_id" in cols:
            con.execute(f"COPY (SELECT * FROM {name} {order}) TO '{sql_path(target)}' "
                        "(FORMAT PARQUET, PARTITION_BY (site_id), OVERWRITE_OR_IGNORE)")
        else:
            target.mkdir(parents=True, exist_ok=True)
            con.execute(f"COPY (SELECT * FROM {name} {order}) TO '{sql_path(target / 'data_0.parquet')}' "
                        "(FORMAT PARQUET)")
