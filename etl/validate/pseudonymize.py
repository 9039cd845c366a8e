"""Pseudonymization: the center's patient id becomes a keyed HMAC `study_id`.

`study_id` = first 16 hex digits of HMAC-SHA256(key, "<site_id>\\x1f<local_id>"): stable
across runs under the same key, different under another key, and not reversible
without it. `local_id` and every direct identifier column are dropped before anything
is written; date of birth survives only as age at infusion.
"""
from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

import pandas as pd

STUDY_ID_HEX = 16


@lru_cache(maxsize=1 << 17)   # a site's ids are hashed by several steps of one run
def study_id(key: bytes, site_id: str, local_id: str) -> str:
    msg = f"{site_id}\x1f{local_id}".encode()
    return "S" + hmac.new(key, msg, hashlib.sha256).hexdigest()[:STUDY_ID_HEX]


def pseudonymize(frame: pd.DataFrame, key: bytes, site_id: str) -> pd.DataFrame:
    """Replace `local_id` by `study_id` (first column after site_id)."""
    out = frame.copy()
    local = out["local_id"].astype(str)
    ids = local.map({v: study_id(key, site_id, v) for v in local.unique()})
    out = out.drop(columns=["local_id"])
    out.insert(0, "study_id", ids)
    return out
