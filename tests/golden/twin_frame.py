"""Write the twin's `analysis_patient` columns the study plan uses to tests/golden/twin_analysis.csv.

The R golden scripts read this file, so R and carpool analyse the same rows.
It is built the way the demo is (carpool.yml, a fresh warehouse in a temporary
directory, refresh at 2026-01-01 UTC, as tests/functional/conftest.py), and
tests/functional/test_golden_twin.py checks that the demo still produces it.

    .venv/bin/python tests/golden/twin_frame.py      # run by `make golden`
"""
from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "functional")]  # golden_files; conftest's demo_config

from conftest import demo_config  # noqa: E402
from golden_files import TWIN_CSV, twin_csv_frame  # noqa: E402

from etl.analyze import load_analysis_input  # noqa: E402
from etl.config import load_config  # noqa: E402
from etl.pipeline import refresh  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(demo_config(Path(tmp)))
        outcome = refresh(cfg, datetime(2026, 1, 1, tzinfo=UTC))
        if outcome.status != "ok":
            raise SystemExit(f"demo refresh failed: {outcome.message}")
        con = duckdb.connect(str(cfg.out / "warehouse.duckdb"), read_only=True)
        try:
            df, _ = load_analysis_input(con)
        finally:
            con.close()
    twin_csv_frame(df).to_csv(TWIN_CSV, index=False, float_format="%.17g")
    print(f"wrote {TWIN_CSV} ({len(df)} rows)")


if __name__ == "__main__":
    main()
