"""The twin's input to the R goldens: analysis_patient columns of the demo warehouse.

`tests/golden/data/twin_analysis_patient.csv` is what the R scripts read as "the twin".
It is written from a demo warehouse with
    python -m tests.golden.twin_input out/warehouse.duckdb
and `tests/functional/test_golden_twin_input.py` checks that the committed file still
equals the demo warehouse's view (so a changed twin or view cannot leave stale goldens).
Numbers are written with 17 significant digits, so R and Python read the same doubles.
"""
from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pandas as pd

PATH = Path(__file__).parent / "data" / "twin_analysis_patient.csv"
COLUMNS = ["site_id", "os_months", "os_event", "lfs_months", "lfs_event", "lfs_cause",
           "crs_any", "icans_any", "tox_group", "steroids", "tocilizumab", "bm_blasts_pct"]


def twin_frame(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    cols = ", ".join(COLUMNS)
    return con.execute(f"SELECT {cols} FROM analysis_patient ORDER BY site_id, study_id").fetchdf()


def to_csv(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, float_format="%.17g", lineterminator="\n")


if __name__ == "__main__":
    con = duckdb.connect(sys.argv[1], read_only=True)
    try:
        PATH.write_text(to_csv(twin_frame(con)), encoding="utf-8")
    finally:
        con.close()
    print(f"wrote {PATH}")
