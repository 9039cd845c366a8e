"""Write the pooled warehouse: site-partitioned Parquet, and a DuckDB file of views over it.

Rows are written once. A site's clinical tables arrive as Parquet files already in the
warehouse layout (`warehouse.layout`, written by the site cache) and are hard-linked
into `parquet/<table>/site_id=<id>/`; carpool's own tables (quarantine, etl_file,
etl_run, study_config, the code lists `codelist_<name>`, data_dictionary) are written
there too, each with its schema even when empty. `analysis_result` is the run's result
set (`warehouse.results`), linked in as `parquet/analysis_result/data_0.parquet`.
`warehouse.duckdb` holds no rows: one view per table over its Parquet folder, relative to
the file's own folder, with `COMMENT ON` descriptions; `data_dictionary`
(`warehouse.dictionary`) documents every column. Views come from
`warehouse/views/*.sql`, one view per file, named after the file. The file is written
for DuckDB 1.4 (the LTS line) and later (`storage_compatibility_version`). Everything is
written into a fresh directory; publishing it atomically is `warehouse.publish`'s job.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from schemas.model import common_schema
from warehouse import layout, quality, results
from warehouse.dictionary import (
    CODELIST_PREFIX,
    ColumnDoc,
    codelist_names,
    codelist_select,
    documented,
    write_dictionary,
)

VIEWS_DIR = Path(__file__).resolve().parent / "views"
STORAGE_VERSION = "v1.4.0"  # the oldest DuckDB that must open the file: the 1.4 LTS line
META_TABLES: dict[str, list[tuple[str, str, str]]] = {
    "quarantine": [
        ("run_id", "VARCHAR", "Run that found the problem."), ("site_id", "VARCHAR", "Center."),
        ("study_id", "VARCHAR", "Pseudonymous study id of the patient the row belongs to (the same keyed hash "
         "as in the clinical tables, also for a patient who is not loaded); NULL where the row names no "
         "patient (an unmapped row, a missing patient id)."),
        ("source_file", "VARCHAR", "Export file (and sheet) the row came from."),
        ("source_row", "INTEGER", "Row as a person sees it: CSV line (header = 1), sheet row, SPSS case."),
        ("target_table", "VARCHAR", "Common-schema table the row was mapped to."),
        ("rule_id", "VARCHAR", "Check catalog rule (schemas/checks.csv)."),
        ("severity", "VARCHAR", "error (row quarantined) or warning (row loaded, flagged)."),
        ("column_name", "VARCHAR", "Column the rule looked at."),
        ("source_column", "VARCHAR", "The export's own column that value came from (empty: a constant, "
                                     "derived or row-level finding)."),
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
    quality.TABLE: quality.COLUMNS,   # dataset-level checks (warehouse.quality)
}
LINEAGE_DOCS = {"study_id": ColumnDoc("Pseudonymous patient id: keyed HMAC of site and local id."),
                "source_file": ColumnDoc("Export file (and sheet) of the row."),
                "source_row": ColumnDoc("Row in that file as a person sees it.")}


@dataclass(frozen=True)
class WarehouseInput:
    run_id: str
    site_ids: list[str]                      # every site gets a partition of every site table
    tables: dict[str, dict[str, Path]]       # clinical table -> site -> its Parquet in layout shape
    quarantine: pd.DataFrame
    files: pd.DataFrame
    runs: pd.DataFrame
    settings: dict[str, str]
    quality: pd.DataFrame | None = None      # site-level quality_check rows; the rates are added here


def clinical_ddl(name: str) -> str:
    return f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t in layout.clinical_columns(name))})"


def table_columns() -> dict[str, list[tuple[str, str]]]:
    """Every stored warehouse table (a Parquet folder; not the .sql views, not data_dictionary)
    with its (column, SQL type): clinical, carpool's own, analysis_result and the code lists."""
    cols = {name: layout.clinical_columns(name) for name in common_schema()}
    cols |= {name: [(c, t) for c, t, _ in spec] for name, spec in META_TABLES.items()}
    cols["analysis_result"] = results.columns()
    return cols | codelist_columns()


def codelist_columns() -> dict[str, list[tuple[str, str]]]:
    """(column, SQL type) of each code-list table, as read from its CSV."""
    con = duckdb.connect()
    try:
        return {CODELIST_PREFIX + n: [(r[0], r[1]) for r in con.execute(f"DESCRIBE {codelist_select(n)}").fetchall()]
                for n in codelist_names()}
    finally:
        con.close()


def build(dest: Path, data: WarehouseInput) -> Path:
    """Write dest/parquet/<table>/ and dest/warehouse.duckdb (views only); return the db path."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest / "parquet"
    _clinical_parquet(root, data)
    meta = {"quarantine": data.quarantine.assign(run_id=data.run_id),
            "etl_file": data.files.assign(run_id=data.run_id), "etl_run": data.runs,
            "study_config": pd.DataFrame(sorted(data.settings.items()), columns=["key", "value"]),
            quality.TABLE: quality.frame([]) if data.quality is None else data.quality}
    for name, frame in meta.items():
        _meta_parquet(root, name, frame, data.site_ids)
    _codelist_parquet(root)
    results.attach_empty(dest)   # analysis_result: an empty result set until `carpool analyze`
    db_path = dest / "warehouse.duckdb"
    con = duckdb.connect(str(db_path), config={"memory_limit": layout.MEMORY_LIMIT,
                                               "storage_compatibility_version": STORAGE_VERSION})
    try:
        stored = table_columns()
        for name, cols in stored.items():
            con.execute(layout.view_sql(name, cols))
        for name, table in common_schema().items():
            _comment(con, name, table.description, [(c.name, c.description + (f" [{c.unit}]" if c.unit else ""))
                                                     for c in table.columns if c.name != "local_id"]
                     + [(c, d.description) for c, d in LINEAGE_DOCS.items()])
        for name, cols in META_TABLES.items():
            _comment(con, name, f"carpool {name.replace('_', ' ')}", [(c, d) for c, _, d in cols])
        _comment(con, "analysis_result", "Results of `carpool analyze` on this warehouse run (empty until it "
                 "has run): one row per statistic, from the result set the run's `results` link points at, "
                 "published atomically beside the warehouse.", [(c, d) for c, _, d in results.COLUMNS])
        create_views(con)
        # the per-site rates need the pooled views: quality_check is written again, complete
        checks = quality.frame(meta[quality.TABLE].to_dict("records") + quality.rate_checks(con))
        _meta_parquet(root, quality.TABLE, checks, data.site_ids)
        write_dictionary(con, documented(_table_docs(), VIEWS_DIR), set(stored), root)
        _comment(con, "data_dictionary", "Every warehouse table and view column: type, unit, code list, "
                 "description.", [])
        con.execute("CHECKPOINT")
    finally:
        con.close()
        shutil.rmtree(dest / "warehouse.duckdb.tmp", ignore_errors=True)
    return db_path


def _clinical_parquet(root: Path, data: WarehouseInput) -> None:
    """Each site's table file placed in its partition (no rows copied); an empty typed file
    for a table a site does not map."""
    for name in common_schema():
        cols = layout.file_columns(layout.clinical_columns(name))
        for site in data.site_ids:
            target = layout.partition_file(root, name, site)
            src = data.tables.get(name, {}).get(site)
            if src is not None:
                layout.place(src, target)
            else:
                layout.write_frame(None, cols, target)


def _meta_parquet(root: Path, name: str, frame: pd.DataFrame, site_ids: list[str]) -> None:
    """carpool's own tables: small, sorted (byte-stable files); per site when they have site_id."""
    cols = [(c, t) for c, t, _ in META_TABLES[name]]
    if not layout.partitioned(cols):
        layout.write_frame(frame, cols, layout.table_file(root, name), order=True)
        return
    for site in site_ids:
        part = frame[frame["site_id"] == site] if "site_id" in frame.columns else None
        layout.write_frame(part, layout.file_columns(cols), layout.partition_file(root, name, site), order=True)


def _codelist_parquet(root: Path) -> None:
    """Each schemas/codelists/<name>.csv as the table folder parquet/codelist_<name>/."""
    columns = codelist_columns()
    con = duckdb.connect()
    try:
        for name in codelist_names():  # rows in the CSV's order
            layout.write(con, f"({codelist_select(name)})", columns[CODELIST_PREFIX + name],
                         layout.table_file(root, CODELIST_PREFIX + name))
    finally:
        con.close()


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
