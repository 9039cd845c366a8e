"""A site's own `analysis_patient` rows, from that site's Parquet output of carpool's ETL.

Each center runs `carpool refresh` on its own data; its published Parquet is partitioned by
site (`<output_dir>/parquet/<table>/site_id=<site>/`). `site_frame` loads only that one
partition of every clinical table into an in-memory DuckDB, with the study's cut-off date,
creates the warehouse views and returns `analysis_patient`: the very rows the site's own
warehouse holds. This is the node-side data a vantage6 node hands to the partial functions
(see docs/federated.md); it is the only module of `federated/` that knows the warehouse.
"""
from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from schemas.model import common_schema
from warehouse.build import META_TABLES, clinical_ddl, create_views
from warehouse.dictionary import load_codelists
from warehouse.durable import sql_path


def site_frame(parquet_root: Path, site_id: str, cutoff_date: str) -> pd.DataFrame:
    """`analysis_patient` of one site, built from its own Parquet partition only."""
    con = duckdb.connect()
    try:
        for name in common_schema():
            con.execute(clinical_ddl(name))
            part = Path(parquet_root) / name / f"site_id={site_id}"
            files = sorted(part.glob("*.parquet"))
            if files:
                cols = [r[0] for r in con.execute(f"DESCRIBE {name}").fetchall()]
                select = ", ".join(f"'{site_id}' AS site_id" if c == "site_id" else c for c in cols)
                sources = ", ".join(f"'{sql_path(f)}'" for f in files)
                con.execute(f"INSERT INTO {name} SELECT {select} FROM read_parquet([{sources}])")
        for name, cols in META_TABLES.items():  # empty, so that every view resolves
            con.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t, _ in cols)})")
        con.execute("INSERT INTO study_config VALUES ('cutoff_date', ?)", [str(cutoff_date)])
        load_codelists(con)
        create_views(con)
        return con.execute("SELECT * FROM analysis_patient ORDER BY study_id").fetchdf()
    finally:
        con.close()
