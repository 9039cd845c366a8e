"""Pseudonymization: keyed, stable study ids; no local id survives."""
import hashlib
import hmac

import pandas as pd

from etl.validate.pseudonymize import pseudonymize, study_id

KEY, OTHER = b"k" * 32, b"o" * 32


def frame():
    return pd.DataFrame({"site_id": ["center_a"] * 3, "local_id": ["P1", "P2", "P1"], "x": [1, 2, 3]})


def test_stable_under_the_same_key():
    a, b = pseudonymize(frame(), KEY, "center_a"), pseudonymize(frame(), KEY, "center_a")
    assert list(a["study_id"]) == list(b["study_id"])
    assert a["study_id"][0] == a["study_id"][2] != a["study_id"][1]


def test_different_under_another_key_or_site():
    a = pseudonymize(frame(), KEY, "center_a")["study_id"]
    b = pseudonymize(frame(), OTHER, "center_a")["study_id"]
    c = pseudonymize(frame(), KEY, "center_b")["study_id"]
    assert not set(a) & set(b)
    assert not set(a) & set(c)


def test_no_local_id_left_and_rows_kept():
    out = pseudonymize(frame(), KEY, "center_a")
    assert "local_id" not in out.columns
    assert list(out.columns) == ["study_id", "site_id", "x"]
    assert list(out["x"]) == [1, 2, 3]
    assert not out.astype(str).isin(["P1", "P2"]).any().any()
    assert list(frame().columns) == ["site_id", "local_id", "x"]  # input not changed


def test_study_id_is_the_documented_hmac():
    want = "S" + hmac.new(KEY, b"center_a\x1fP1", hashlib.sha256).hexdigest()[:16]
    assert study_id(KEY, "center_a", "P1") == want
    assert len(want) == 17


def test_site_and_id_cannot_collide_by_concatenation():
    assert study_id(KEY, "center_a", "1") != study_id(KEY, "center_a1", "")
