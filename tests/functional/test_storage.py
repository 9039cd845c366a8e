"""Issue 10 item 4 and issue 14 items 1 and 3: the warehouse is written once, as Parquet.

- Every warehouse table, `study_config` and empty tables included, is a Parquet folder
  with a schema; site tables are Hive-partitioned by site with one file per site.
- A site's table file in the published run is the site cache's file itself (a hard
  link), not a copy of its rows; the DuckDB file holds views only.
- `warehouse.duckdb` opens read-only from another working folder and after `out/` is moved.
- DuckDB 1.4 (the LTS line) opens it read-only: a test venv with a `duckdb==1.4.*` wheel,
  in a subprocess.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pytest

from schemas.model import common_schema
from warehouse.build import table_columns

CLINICAL = list(common_schema())
COUNTS = ["patient", "lab", "quarantine", "etl_file", "analysis_patient", "study_config", "data_dictionary",
          "analysis_result", "codelist_agent"]


def _counts(db: Path, cwd: Path | None = None, python: str = sys.executable) -> str:
    code = ("import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
            f"print({{t: con.execute(f'SELECT count(*) FROM {{t}}').fetchone()[0] for t in {COUNTS!r}}})")
    r = subprocess.run([python, "-c", code, str(db)], capture_output=True, text=True, cwd=cwd, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.strip()


def test_every_table_is_a_parquet_folder_with_its_schema(demo):
    cfg, outcome = demo
    root = cfg.out / "parquet"
    assert sorted(d.name for d in root.iterdir()) == sorted(table_columns() | {"data_dictionary": []})
    sites = [s.site_id for s in outcome.sites]
    for name, cols in table_columns().items():
        if any(c == "site_id" for c, _ in cols):
            assert sorted(p.name for p in (root / name).iterdir()) == sorted(f"site_id={s}" for s in sites), name
            dataset = ds.dataset(root / name, format="parquet", partitioning="hive")
        else:
            dataset = ds.dataset(root / name, format="parquet")
        assert set(dataset.schema.names) == {c for c, _ in cols}, name
    # analysis_result is the run's result set, linked in; before `carpool analyze` the set is
    # empty and still has its schema (another test may have analyzed this demo meanwhile)
    con = duckdb.connect()
    got = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{root / 'analysis_result'}/*.parquet')").fetchall()
    assert [(r[0], r[1]) for r in got] == table_columns()["analysis_result"]
    empty = (cfg.out / "current").resolve() / "results.none" / "analysis_result.parquet"
    assert con.execute(f"SELECT count(*) FROM read_parquet('{empty}')").fetchone() == (0,)
    assert (root / "analysis_result" / "data_0.parquet").is_symlink()


def test_site_rows_are_written_once_and_the_duckdb_file_holds_views_only(demo):
    cfg, outcome = demo
    run = (cfg.out / "current").resolve()
    for name in CLINICAL:
        for s in outcome.sites:
            published = run / "parquet" / name / f"site_id={s.site_id}" / "data_0.parquet"
            cached = cfg.out / "sites" / s.site_id / f"{name}.parquet"
            if cached.exists():
                assert os.path.samefile(published, cached), f"{name}/{s.site_id} was copied, not linked"
    con = duckdb.connect(str(run / "warehouse.duckdb"), read_only=True)
    try:
        stored = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database()")
        assert stored.fetchone() == (0,)
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    finally:
        con.close()
    assert set(table_columns()) <= views and "analysis_patient" in views


def test_warehouse_opens_read_only_from_elsewhere_and_after_out_is_moved(demo, tmp_path):
    cfg, _ = demo
    here = _counts(cfg.out / "warehouse.duckdb")
    assert _counts(cfg.out / "warehouse.duckdb", cwd=tmp_path) == here
    moved = tmp_path / "elsewhere" / "carpool-out"
    shutil.copytree(cfg.out, moved, symlinks=True)
    assert _counts(Path(os.path.relpath(moved / "warehouse.duckdb", tmp_path)), cwd=tmp_path) == here
    assert _counts(moved / "current" / "warehouse.duckdb", cwd=moved / "parquet") == here


@pytest.fixture(scope="module")
def duckdb14(tmp_path_factory) -> str:
    """python of a fresh venv holding a duckdb 1.4 wheel (the LTS line)."""
    env_dir = tmp_path_factory.mktemp("duckdb14") / "venv"
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    r = subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "duckdb==1.4.*"],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        pytest.skip("pip could not install duckdb==1.4.* from the package index "
                    f"(offline?), so DuckDB 1.4 compatibility was not checked: {r.stderr.strip()[-300:]}")
    return python


def test_duckdb_1_4_opens_the_warehouse_read_only(demo, duckdb14, tmp_path):
    cfg, _ = demo
    version = subprocess.run([duckdb14, "-c", "import duckdb; print(duckdb.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert version.startswith("1.4."), version
    assert _counts(cfg.out / "warehouse.duckdb", cwd=tmp_path, python=duckdb14) == _counts(cfg.out / "warehouse.duckdb")


def test_analysis_result_follows_its_run_through_relative_links_when_out_is_moved(demo, tmp_path):
    """The `analysis_result` view reads parquet/analysis_result/, a relative link through the
    run's `results` link (warehouse.results): a result set attached to the run shows through
    out/warehouse.duckdb and the run's own file, in a copy of out/ elsewhere, and the run's
    manifest (carpool verify) does not hash through the link."""
    import pandas as pd

    from warehouse import layout, publish, results

    cfg, _ = demo
    out = tmp_path / "a" / "out"
    shutil.copytree(cfg.out, out, symlinks=True)
    run = publish.current(out)
    tmp = results.stage(out, f"{run.name}.test")
    rows = pd.DataFrame({"run_id": [run.name] * 3, "analysis": ["cox"] * 3, "statistic": ["hr", "p_value", "n"],
                         "value": [1.5, 0.04, 93.0]})
    layout.write_frame(rows, results.columns(), tmp / results.TABLE)
    assert results.attach(results.seal(tmp, {"run_id": run.name}), run)
    moved = tmp_path / "b" / "carpool-out"
    shutil.move(out, moved)
    code = ("import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
            "print(con.execute('SELECT count(*), round(sum(value), 6) FROM analysis_result').fetchone())")
    for db in (moved / "warehouse.duckdb", moved / "runs" / run.name / "warehouse.duckdb"):
        r = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True, cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-2000:]
        assert r.stdout.strip() == "(3, 94.54)", db
    assert publish.verify_run(moved / "runs" / run.name) == []
