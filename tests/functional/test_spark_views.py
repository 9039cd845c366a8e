"""Every warehouse view runs on Spark over out/parquet and gives DuckDB's answer, cell by cell.

Spark runs in local mode (pyspark; Java 17 is on the machine). Each folder under
out/parquet/ is registered as a table, the view's DuckDB text is translated with
`carpool views --dialect spark` (warehouse.portable), and the result is compared with the
same view in the DuckDB warehouse: same columns, same rows, same values (floats to 1e-12
relative), and DOUBLE stays DOUBLE.
"""
from __future__ import annotations

import math
import shutil

import pytest

from warehouse.portable import view_names, view_sql

pyspark = pytest.importorskip("pyspark", reason="pyspark is a dev dependency (pyproject [dev])")
if shutil.which("java") is None:
    pytest.skip("no java on PATH: Spark needs a JVM (Java 17)", allow_module_level=True)


@pytest.fixture(scope="module")
def spark(demo):
    from pyspark.sql import SparkSession

    cfg, _ = demo
    session = (SparkSession.builder.master("local[1]").appName("carpool-views")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
               .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    for folder in sorted((cfg.out / "parquet").iterdir()):
        session.read.parquet(str(folder.resolve())).createOrReplaceTempView(folder.name)
    yield session
    session.stop()


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12)
    return a == b


@pytest.mark.parametrize("view", view_names())
def test_view_on_spark_matches_duckdb(spark, db, view):
    duck = db.execute(f"SELECT * FROM {view}")
    duck_cols = [d[0] for d in duck.description]
    duck_rows = duck.fetchall()
    frame = spark.sql(view_sql(view, "spark"))
    assert frame.columns == duck_cols
    spark_rows = [tuple(r) for r in frame.collect()]
    key = lambda r: tuple((x is None, str(x)) for x in r)  # noqa: E731
    duck_rows, spark_rows = sorted(duck_rows, key=key), sorted(spark_rows, key=key)
    assert len(spark_rows) == len(duck_rows) > 0
    bad = [(c, d[i], s[i]) for d, s in zip(duck_rows, spark_rows, strict=True)
           for i, c in enumerate(duck_cols) if not _same(d[i], s[i])]
    assert bad == [], bad[:5]
    doubles = {c for c, t in zip(duck_cols, [r[1] for r in db.execute(f"DESCRIBE {view}").fetchall()], strict=True)
               if t == "DOUBLE"}
    assert {f.name for f in frame.schema.fields if f.dataType.typeName() == "double"} == doubles
