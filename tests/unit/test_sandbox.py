"""The SQL sandbox over a warehouse whose tables are views on Parquet beside it
(warehouse/sandbox.py): the run's own parquet/ stays readable, nothing else does."""
from __future__ import annotations

import duckdb
import pytest

from etl.errors import UsageError
from warehouse.sandbox import run_query


@pytest.fixture()
def linked(tmp_path):
    """out/current -> runs/r1 holding warehouse.duckdb and parquet/, as warehouse.publish lays it out."""
    run = tmp_path / "out" / "runs" / "r1"
    (run / "parquet").mkdir(parents=True)
    (tmp_path / "out" / "current").symlink_to("runs/r1")
    (tmp_path / "out" / "warehouse.duckdb").symlink_to("current/warehouse.duckdb")
    (tmp_path / "out" / "parquet").symlink_to("current/parquet")
    con = duckdb.connect(str(run / "warehouse.duckdb"))
    con.execute(f"COPY (SELECT 1 AS a UNION ALL SELECT 2) TO '{run / 'parquet' / 't.parquet'}' (FORMAT PARQUET)")
    con.execute(f"CREATE VIEW by_run AS SELECT * FROM read_parquet('{run / 'parquet' / 't.parquet'}')")
    con.execute(f"CREATE VIEW by_link AS SELECT * FROM read_parquet('{tmp_path / 'out' / 'parquet' / 't.parquet'}')")
    con.close()
    (tmp_path / "secret.csv").write_text("name\nJane Doe\n")
    return tmp_path


def test_views_over_the_runs_own_parquet_still_read(linked):
    db = linked / "out" / "warehouse.duckdb"
    assert run_query(db, "SELECT sum(a) AS s FROM by_run").to_pylist() == [{"s": 3}]
    assert run_query(db, "SELECT sum(a) AS s FROM by_link").to_pylist() == [{"s": 3}]


def test_files_outside_the_warehouse_stay_closed(linked):
    db = linked / "out" / "warehouse.duckdb"
    for sql in (f"SELECT * FROM read_csv('{linked / 'secret.csv'}')",
                f"SELECT * FROM read_csv('{linked / 'out' / 'parquet' / '..' / '..' / '..' / 'secret.csv'}')"):
        with pytest.raises(UsageError, match="(?i)permission|disabled"):
            run_query(db, sql)


def test_a_long_query_is_interrupted(linked):
    with pytest.raises(UsageError, match="ran longer than"):
        run_query(linked / "out" / "warehouse.duckdb", "SELECT sum(x.range * y.range) FROM range(100000000) x, "
                  "range(100000000) y", timeout_s=0.2)
