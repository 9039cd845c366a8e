"""Issue 15 item 4: the key's source, never the key, is recorded; a demo-key run says so everywhere."""
from __future__ import annotations

import json

import duckdb
from typer.testing import CliRunner

from etl.cli import app
from etl.config import DEMO_BANNER, pseudonym_key

runner = CliRunner()


def test_key_source_not_key_goes_into_etl_run_and_run_log(demo):
    cfg, outcome = demo
    key, source = pseudonym_key(cfg)
    assert source == outcome.key_source == "demo"
    con = duckdb.connect(str(cfg.out / "warehouse.duckdb"), read_only=True)
    try:
        runs = con.execute("SELECT key_source FROM etl_run").fetchall()
        config = dict(con.execute("SELECT key, value FROM study_config").fetchall())
    finally:
        con.close()
    assert runs and all(r == ("demo",) for r in runs)
    assert config["key_source"] == "demo"
    log = (cfg.out / "run_log.jsonl").read_text(encoding="utf-8")
    records = [json.loads(x) for x in log.splitlines()]
    assert all(r["key_source"] == "demo" and r["banner"] == DEMO_BANNER for r in records)
    assert key.decode() not in log, "the key itself must never be written"


def test_carpool_runs_shows_the_demo_banner(demo):
    cfg, _ = demo
    r = runner.invoke(app, ["runs", "--config", str(cfg.path)])
    assert r.exit_code == 0, r.output
    assert DEMO_BANNER in r.output


def test_empty_env_key_stops_the_refresh_with_exit_2(demo):
    cfg, _ = demo
    r = runner.invoke(app, ["refresh", "--config", str(cfg.path)], env={cfg.pseudonym_key.env: ""})
    assert r.exit_code == 2
    assert "set but empty" in r.output and "Traceback" not in r.output
