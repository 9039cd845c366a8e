"""The demo still produces the twin frame the R goldens were computed on.

If this fails the twin or the pipeline changed: run `make golden` (rebuilds
tests/golden/twin_analysis.csv from the demo and reruns R) and review the diff.
"""
from __future__ import annotations

from golden_files import TWIN_CSV, twin_csv_frame

from etl.analyze import load_analysis_input


def test_demo_analysis_frame_equals_the_golden_input(db):
    df, _ = load_analysis_input(db)
    assert twin_csv_frame(df).to_csv(index=False, float_format="%.17g") == TWIN_CSV.read_text()
