"""Reading the committed R golden files (tests/golden/, written by `make golden`).

`read(name)` gives a golden CSV (its comment lines name the R version and the
R call of every id); `dataset(name)` the data set an id was computed on, as R
saw it: the public data sets from tests/golden/data_*.csv, the twin from
tests/golden/twin_analysis.csv (with the derived columns the R script adds).
`twin_csv_frame(df)` is what twin_frame.py writes for an analysis_patient
frame, `read_twin()` the committed file as the analysis sees it.

Imported as `golden_files` (pytest's pythonpath has tests/golden): a package
installed with vantage6 is called `tests`, so `tests.…` imports are not ours.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

GOLDEN = Path(__file__).resolve().parent
TWIN_CSV = GOLDEN / "twin_analysis.csv"
KEYS = ["site_id", "study_id"]


def read(name: str) -> pd.DataFrame:
    return pd.read_csv(GOLDEN / name, comment="#", keep_default_na=False,
                       na_values=["NA"], dtype={"group": str, "term": str})


def _integral_to_int(df: pd.DataFrame) -> pd.DataFrame:
    """R prints 1 where pandas reads 1.0: integral float columns become Int64, so labels agree."""
    out = df.copy()
    for col in out.columns:
        v = out[col]
        if v.dtype.kind == "f" and v.notna().any() and np.all(v.dropna() == np.round(v.dropna())):
            out[col] = v.astype("Int64")
    return out


@cache
def dataset(name: str) -> pd.DataFrame:
    if name in ("twin", "twin_cr"):
        twin = _integral_to_int(pd.read_csv(GOLDEN / "twin_analysis.csv"))
        twin["bm_blasts_ge20"] = (twin["bm_blasts_pct"] >= 20).astype("Int64")
        return twin[twin["cr_d30"] == 1].reset_index(drop=True) if name == "twin_cr" else twin
    return _integral_to_int(pd.read_csv(GOLDEN / f"data_{name.removesuffix('2')}.csv"))


def rel_close(actual, expected, rel: float) -> bool:
    """Equal within `rel` relative (NaN equals NaN, as R's NA)."""
    a, e = float(actual), float(expected)
    if np.isnan(e) or np.isnan(a):
        return bool(np.isnan(e) and np.isnan(a))
    return abs(a - e) <= rel * abs(e) or a == e


def twin_csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The study plan's columns of an analysis_patient frame, booleans as 0/1 (R reads numbers)."""
    from analysis.plan import load_plan
    from analysis.runner import required_columns

    out = df[KEYS + sorted(required_columns(load_plan()) - set(KEYS))].copy()
    for col in out.columns:
        if out[col].notna().any() and out[col].dropna().map(lambda v: isinstance(v, bool)).all():
            out[col] = out[col].map(lambda v: v if pd.isna(v) else int(v)).astype("Int64")
    return out.sort_values(KEYS, ignore_index=True)


def read_twin(path: Path = TWIN_CSV) -> pd.DataFrame:
    """The committed twin frame as the analysis sees it: 0/1-only columns back to booleans."""
    df = pd.read_csv(path)
    for col in df.columns:
        v = df[col].dropna()
        if len(v) and v.isin([0, 1]).all() and df[col].dtype.kind in "if":
            df[col] = df[col].map(lambda x: x if pd.isna(x) else bool(x)).astype(object)
    return df
