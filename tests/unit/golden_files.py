"""Reading the committed R goldens (tests/golden/*.csv; '#' lines name R, packages, calls)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def read_golden(name: str) -> pd.DataFrame:
    return pd.read_csv(GOLDEN / name, comment="#")


def twin() -> pd.DataFrame:
    return read_golden("data/twin_analysis_patient.csv")
