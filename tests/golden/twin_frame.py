"""Write the twin's `analysis_patient` columns the study plan uses to tests/golden/twin_analysis.csv.

The R golden scripts read this file, so R and carpool analyse the same rows.
It is built the way the demo is (carpool.yml, a fresh warehouse in a temporary
directory, refresh at 2026-01-01 UTC, as tests/functional/conftest.py), and
tests/functional/test_golden_twin.py checks that the demo still produces it.

    .venv/bin/python -m tests.golden.twin_frame      # run by `make golden`
"""
from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from analysis.plan import load_plan
from analysis.runner import required_columns
from etl.analyze import load_analysis_input
from etl.config import load_config
from etl.pipeline import refresh
from tests.functional.conftest import demo_config

OUT = Path(__file__).with_name("twin_analysis.csv")
KEYS = ["site_id", "study_id"]


def plan_columns() -> list[str]:
    return KEYS + sorted(required_columns(load_plan()) - set(KEYS))


def frame(df: pd.DataFrame) -> pd.DataFrame:
    """The plan's columns of an analysis_patient frame, booleans as 0/1 (R reads them as numbers)."""
    out = df[plan_columns()].copy()
    for col in out.columns:
        if out[col].dropna().map(lambda v: isinstance(v, bool)).all() and out[col].notna().any():
            out[col] = out[col].map(lambda v: v if pd.isna(v) else int(v)).astype("Int64")
    return out.sort_values(KEYS, ignore_index=True)


def read(path: Path = OUT) -> pd.DataFrame:
    """The committed frame as the analysis sees it: 0/1-only columns back to booleans."""
    df = pd.read_csv(path)
    for col in df.columns:
        v = df[col].dropna()
        if len(v) and v.isin([0, 1]).all() and df[col].dtype.kind in "if":
            df[col] = df[col].map(lambda x: x if pd.isna(x) else bool(x)).astype(object)
    return df


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
    frame(df).to_csv(OUT, index=False, float_format="%.17g")
    print(f"wrote {OUT} ({len(df)} rows)")


if __name__ == "__main__":
    main()
