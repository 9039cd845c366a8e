"""The pre-quarantine hook (etl.validate.prequarantine): every failing row kept, passing rows
sampled, counts over all rows, identifiers masked; the same from pandas and from DuckDB."""
import hashlib

import duckdb
import pandas as pd

from etl.validate import prequarantine
from etl.validate.phi import MASK


def _frame(n: int = 50) -> pd.DataFrame:
    return pd.DataFrame({"_row_id": range(n), "_source_row": range(2, n + 2), "site_id": "s1",
                         "local_id": [f"LOC{i:04d}" for i in range(n)],
                         "sex": ["F"] * (n - 2) + ["Zhang Wei", None], "age_years": [40] * n})


def _masker():
    return prequarantine.Masker({"Zhang Wei", "13800001111"}, _h)


def _h(lid: str) -> str:
    return "sid_" + hashlib.sha256(lid.encode()).hexdigest()[:8]


def test_failing_rows_are_all_kept_and_passing_rows_sampled(monkeypatch):
    monkeypatch.setattr(prequarantine, "PASSING_MAX", 10)
    p = prequarantine.from_frame("patient", _frame(), {3, 48, 49}, _masker())
    assert (p.rows, p.failing_rows, len(p.frame())) == (50, 3, 13)
    assert p.sampled and p.non_null["sex"] == 49 and p.non_null["local_id"] == 50
    ids = set(p.frame()["local_id"])
    assert {_h("LOC0003"), _h("LOC0048"), _h("LOC0049")} <= ids
    assert "_row_id" not in p.frame() and "_source_row" not in p.frame()


def test_identifiers_in_the_sample_are_masked():
    p = prequarantine.from_frame("patient", _frame(), {48}, _masker())
    text = p.frame().to_csv()
    assert "Zhang" not in text and "LOC00" not in text
    assert MASK in set(p.frame()["sex"])


def test_the_duckdb_path_gives_the_same_profile(monkeypatch):
    monkeypatch.setattr(prequarantine, "PASSING_MAX", 10)
    frame = _frame().rename(columns={"_row_id": "_row"})
    con = duckdb.connect()
    con.register("t2", frame)
    con.execute("CREATE TABLE f AS SELECT * FROM (VALUES (3), (48), (49)) v(_row)")
    p = prequarantine.from_duckdb(con, "t2", "SELECT _row FROM f", "patient", _masker())
    q = prequarantine.from_frame("patient", _frame(), {3, 48, 49}, _masker())
    assert (p.rows, p.failing_rows, len(p.frame()), p.non_null) == (q.rows, q.failing_rows, 13, q.non_null)
    assert "Zhang" not in p.frame().to_csv() and {_h("LOC0003"), _h("LOC0049")} <= set(p.frame()["local_id"])
