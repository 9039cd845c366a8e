"""The twin file the competing-risks / heterogeneity R goldens read is what the demo produces."""
from __future__ import annotations

from tests.golden.twin_input import PATH, to_csv, twin_frame


def test_committed_twin_input_equals_the_demo_warehouse(db):
    assert to_csv(twin_frame(db)) == PATH.read_text(encoding="utf-8"), (
        "the demo's analysis_patient changed: run `make golden` and review the diff")
