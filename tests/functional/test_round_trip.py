"""Round trip: truth -> four center exports -> mappings -> warehouse gives back the truth.

`sites.twin.tables.expected_tables(truth)` is what each export carries, in the common
schema; the warehouse must hold exactly that, field by field, for all 93 patients.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from etl.config import pseudonym_key
from etl.validate.pseudonymize import study_id
from schemas.model import common_schema
from sites.twin.cohort import load_truth
from sites.twin.tables import expected_tables

TABLES = ["patient", "infusion", "toxicity", "toxicity_treatment", "lab", "response", "outcome"]
NOT_COMPARED = {"source_value"}  # the raw text as sent; the truth has no opinion about it


@pytest.fixture(scope="module")
def expected(demo):
    cfg, _ = demo
    key, _ = pseudonym_key(cfg)
    out = {}
    for name, frame in expected_tables(load_truth()).items():
        frame = frame.copy()
        frame.insert(0, "study_id", [study_id(key, s, str(lid)) for s, lid in
                                     zip(frame["site_id"], frame["local_id"], strict=True)])
        out[name] = frame.drop(columns=["local_id"])
    return out


def _normalized(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    spec = common_schema()[table]
    cols = ["study_id"] + [c.name for c in spec.columns if c.name != "local_id" and c.name in frame
                           and c.name not in NOT_COMPARED]
    frame = frame[cols].copy()
    for c in spec.columns:
        if c.name not in frame:
            continue
        if c.type == "date":
            frame[c.name] = [None if pd.isna(x) else x.date() for x in pd.to_datetime(frame[c.name])]
        elif c.type in ("int",):
            frame[c.name] = pd.to_numeric(frame[c.name]).astype("Int64")
        elif c.type == "float":
            frame[c.name] = pd.to_numeric(frame[c.name]).astype(float)
        elif c.type == "bool":
            frame[c.name] = frame[c.name].map(lambda v: None if v is None or v is pd.NA
                                              or (isinstance(v, float) and np.isnan(v)) else bool(v))
        else:
            frame[c.name] = frame[c.name].map(lambda v: None if v is None or v is pd.NA
                                              or (isinstance(v, float) and np.isnan(v)) else str(v))
    keys = ["study_id"] + [k for k in spec.keys if k in frame and k not in ("site_id", "local_id")]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("table", TABLES)
def test_warehouse_table_equals_truth(table, db, expected):
    got = _normalized(db.execute(f"SELECT * FROM {table}").fetchdf(), table)
    want = _normalized(expected[table], table)
    assert len(got) == len(want), f"{table}: {len(got)} rows in the warehouse, {len(want)} in the truth"
    for col in [c for c in got.columns if c not in want.columns]:
        # a column the twin does not carry (agent_local: every twin agent is a common code) is empty
        assert got[col].isna().all(), f"{table}.{col}: values where the truth has none"
        got = got.drop(columns=[col])
    assert list(got.columns) == list(want.columns)
    problems = []
    for col in got.columns:
        g, w = got[col], want[col]
        if g.dtype == float:
            same = np.isclose(g.to_numpy(float), w.to_numpy(float), rtol=1e-9, atol=1e-12, equal_nan=True)
        else:
            same = [(a is None and b is None) or (a is pd.NA and b is pd.NA) or bool(a == b)
                    for a, b in zip(g.astype(object), w.astype(object), strict=True)]
        bad = ~np.asarray(same, dtype=bool)
        if bad.any():
            i = int(np.argmax(bad))
            problems.append(f"{col}: {int(bad.sum())} differ, e.g. {got.loc[i, 'study_id']}: "
                            f"warehouse {g.iloc[i]!r} vs truth {w.iloc[i]!r}")
    assert not problems, f"{table}: " + "; ".join(problems)
