"""A demo warehouse built once per test session, in a temporary output directory."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
import yaml

from etl.config import load_config
from etl.pipeline import refresh

ROOT = Path(__file__).resolve().parents[2]


def demo_config(tmp: Path, **overrides) -> Path:
    """A copy of carpool.yml with absolute mapping paths and its own output dir."""
    raw = yaml.safe_load((ROOT / "carpool.yml").read_text())
    raw["output_dir"] = str(tmp / "out")
    for s in raw["sites"]:
        s["mapping"] = str(ROOT / s["mapping"])
    raw.update(overrides)
    path = tmp / "carpool.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return path


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """(config, refresh outcome) of one full demo refresh."""
    tmp = tmp_path_factory.mktemp("demo")
    cfg = load_config(demo_config(tmp))
    outcome = refresh(cfg, datetime(2026, 1, 1, tzinfo=UTC))
    assert outcome.status == "ok", outcome.message
    return cfg, outcome


@pytest.fixture()
def db(demo):
    cfg, _ = demo
    con = duckdb.connect(str(cfg.out / "warehouse.duckdb"), read_only=True)
    yield con
    con.close()
