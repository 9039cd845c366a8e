"""`carpool export omop`: the warehouse as OMOP CDM v5.4 tables (Parquet and CSV).

Each table is one SQL file in `omop/`, over the warehouse and `omop/concept_map.csv`. The
concept map is data: for each carpool code (sex, toxicity type and grade, analyte, unit,
agent) it names the source vocabulary code (ICD-10-CM, LOINC, UCUM, RxNorm), the OMOP
concept_id, and where that id comes from. A concept_id of 0 ("no matching concept", the
CDM convention) marks a code whose standard concept the map has not resolved; with
`--vocabulary DIR` (an Athena download: CONCEPT.csv, CONCEPT_RELATIONSHIP.csv) each such
code is resolved through its 'Maps to' relationship, and the export says how many remain.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from warehouse.durable import sql_path

HERE = Path(__file__).resolve().parent / "omop"
TABLES = ("person", "observation_period", "visit_occurrence", "condition_occurrence", "measurement",
          "drug_exposure", "death")


@dataclass(frozen=True)
class OmopExport:
    paths: list[Path]
    rows: dict[str, int]
    unresolved: list[str]      # "vocabulary code" of map rows still at concept_id 0


def concept_map(con: duckdb.DuckDBPyConnection, vocabulary: Path | None = None) -> list[str]:
    """Create temp table concept_map (resolved through an Athena vocabulary when given)."""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE concept_map AS
                    SELECT * FROM read_csv('{sql_path(HERE / "concept_map.csv")}', header=true,
                                           all_varchar=true)""")
    con.execute("ALTER TABLE concept_map ALTER concept_id TYPE INTEGER")
    if vocabulary is not None:
        _resolve(con, vocabulary)
    return [f"{v} {c}" for v, c in con.execute(
        "SELECT vocabulary_id, concept_code FROM concept_map WHERE concept_id = 0 AND concept_code IS NOT NULL "
        "ORDER BY 1, 2").fetchall()]


def _resolve(con: duckdb.DuckDBPyConnection, vocabulary: Path) -> None:
    opts = "delim='\\t', header=true, quote='', all_varchar=true"
    concept, rel = vocabulary / "CONCEPT.csv", vocabulary / "CONCEPT_RELATIONSHIP.csv"
    for path in (concept, rel):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not found (an Athena vocabulary folder has CONCEPT.csv and "
                                    "CONCEPT_RELATIONSHIP.csv)")
    con.execute(f"""
        UPDATE concept_map m SET concept_id = CAST(s.target AS INTEGER)
        FROM (SELECT c.vocabulary_id, c.concept_code, min(r.concept_id_2) AS target
              FROM read_csv('{sql_path(concept)}', {opts}) c
              JOIN read_csv('{sql_path(rel)}', {opts}) r
                ON r.concept_id_1 = c.concept_id AND r.relationship_id = 'Maps to'
                   AND coalesce(r.invalid_reason, '') = ''
              GROUP BY 1, 2) s
        WHERE m.concept_id = 0 AND m.vocabulary_id = s.vocabulary_id AND m.concept_code = s.concept_code
    """)


def export_omop(con: duckdb.DuckDBPyConnection, out: Path, vocabulary: Path | None = None) -> OmopExport:
    """Write out/<table>.parquet and out/<table>.csv for every CDM table."""
    out.mkdir(parents=True, exist_ok=True)
    unresolved = concept_map(con, vocabulary)
    con.execute("""CREATE OR REPLACE TEMP TABLE person_ids AS
                   SELECT study_id, CAST(row_number() OVER (ORDER BY study_id) AS INTEGER) AS person_id
                   FROM analysis_patient""")
    paths, rows = [], {}
    for table in TABLES:
        sql = (HERE / f"{table}.sql").read_text(encoding="utf-8").rstrip().rstrip(";")
        con.execute(f"CREATE OR REPLACE TEMP TABLE omop_{table} AS {sql}")
        rows[table] = con.execute(f"SELECT count(*) FROM omop_{table}").fetchone()[0]
        for ext, opts in (("parquet", "FORMAT PARQUET"), ("csv", "FORMAT CSV, HEADER")):
            path = out / f"{table}.{ext}"
            con.execute(f"COPY omop_{table} TO '{sql_path(path)}' ({opts})")
            paths.append(path)
    return OmopExport(paths, rows, unresolved)
