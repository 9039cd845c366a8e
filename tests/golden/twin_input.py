"""The twin's input to the competing-risks and heterogeneity R goldens.

`tests/golden/data/twin_analysis_patient.csv` is what competing.R and heterogeneity.R
read as "the twin": analysis_patient columns of a demo warehouse built the way the demo
is (carpool.yml, fresh output directory, refresh at 2026-01-01 UTC, as
tests/functional/conftest.py). `make golden` runs

    .venv/bin/python -m tests.golden.twin_input

before the R scripts, and tests/functional/test_golden_twin_input.py checks that the demo
still produces the committed file (so a changed twin or view cannot leave stale goldens).
Numbers are written with 17 significant digits, so R and Python read the same doubles.
"""
from __future__ import annotations

import tempfile
from datetime import UTC, datetime
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


def main() -> None:
    from etl.config import load_config
    from etl.pipeline import refresh
    from tests.functional.conftest import demo_config

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(demo_config(Path(tmp)))
        outcome = refresh(cfg, datetime(2026, 1, 1, tzinfo=UTC))
        if outcome.status != "ok":
            raise SystemExit(f"demo refresh failed: {outcome.message}")
        con = duckdb.connect(str(cfg.out / "warehouse.duckdb"), read_only=True)
        try:
            PATH.write_text(to_csv(twin_frame(con)), encoding="utf-8")
        finally:
            con.close()
    print(f"wrote {PATH}")


if __name__ == "__main__":
    main()
