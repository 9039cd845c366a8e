"""`carpool synth` writes a consortium that `carpool refresh` loads unchanged, on either path.

Small sizes here (the scale itself is `make bench`): 400 patients over 4 sites, one per
demo export format, 12 lab rows each. The lab files go through the in-DuckDB validation path
whatever their size.
"""
from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
import yaml

from etl.config import load_config
from etl.pipeline import refresh
from etl.scale.synth import synth

CARPOOL = str(Path(sys.executable).parent / "carpool")
PATIENTS, SITES, LABS = 400, 4, 12


@pytest.fixture(scope="module")
def consortium(tmp_path_factory) -> Path:
    return synth(tmp_path_factory.mktemp("synth"), patients=PATIENTS, sites=SITES, labs_per_patient=LABS)


def _facts(db: Path) -> dict:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            "patients": con.execute("SELECT count(*) FROM patient").fetchone()[0],
            "labs": con.execute("SELECT count(*) FROM lab").fetchone()[0],
            "lab_sum": con.execute("SELECT round(sum(value), 3) FROM lab").fetchone()[0],
            "quarantine": sorted(con.execute(
                "SELECT site_id, source_file, source_row, rule_id, column_name, value, message FROM quarantine"
            ).fetchall()),
            "files": sorted(con.execute(
                "SELECT site_id, path, rows_read, rows_loaded, rows_quarantined FROM etl_file").fetchall()),
        }
    finally:
        con.close()


def test_synth_layout(consortium: Path):
    cfg = load_config(consortium)
    assert [s.id for s in cfg.sites] == [f"synth_{i:02d}" for i in range(1, SITES + 1)]
    formats = {yaml.safe_load(cfg.resolve(s.mapping).read_text(encoding="utf-8"))["sources"]["labs"]["format"]
               for s in cfg.sites}
    assert formats == {"csv"}
    lines = sum(len(p.read_text().splitlines()) - 1 for p in consortium.parent.glob("sites/*/export/labs.csv"))
    assert lines == PATIENTS * LABS


def test_refresh_runs_unchanged_via_the_cli(consortium: Path):
    r = subprocess.run([CARPOOL, "refresh", "--config", str(consortium)], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    facts = _facts(consortium.parent / "out" / "warehouse.duckdb")
    assert facts["patients"] == PATIENTS
    planted = {q[3] for q in facts["quarantine"] if q[1] == "labs.csv"}
    assert planted <= {"NEGATIVE_LAB", "UNKNOWN_CODE", "DATE_UNPARSEABLE"}
    for _site, _path, read, loaded, quarantined in facts["files"]:
        assert read == loaded + quarantined


def test_lab_files_run_in_duckdb_whatever_their_size(consortium: Path):
    """No size threshold: the plain lab tables take the in-DuckDB validation path at 12 rows
    per patient as at 100 (the equivalence with frame validation: tests/unit/test_duckpath.py)."""
    raw = yaml.safe_load(consortium.read_text(encoding="utf-8"))
    raw["output_dir"] = "out_sql"
    cfg = consortium.parent / "out_sql.yml"
    cfg.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    sql = refresh(load_config(cfg), datetime(2026, 1, 1, tzinfo=UTC))
    assert sql.status == "ok"
    assert all(isinstance(s.tables["lab"], Path) for s in sql.sites)
    a = _facts(sql.warehouse)
    assert a["labs"] == PATIENTS * LABS - sum(1 for q in a["quarantine"] if q[1] == "labs.csv")


def test_parquet_layout_is_hive_partitioned_by_site(consortium: Path):
    """What Spark (`spark.read.parquet(dir)`) and Trino (Hive connector, partitioned_by site_id)
    read: <table>/site_id=<id>/*.parquet with plain Parquet types. Checked here with pyarrow's
    Hive partitioning, the same discovery rules."""
    import pyarrow.dataset as ds

    out = consortium.parent / "out"
    if not (out / "warehouse.duckdb").exists():
        subprocess.run([CARPOOL, "refresh", "--config", str(consortium)], check=True, capture_output=True)
    lab = ds.dataset(out / "parquet" / "lab", format="parquet", partitioning="hive")
    assert "site_id" in lab.schema.names
    sites = set(lab.to_table(columns=["site_id"]).column("site_id").to_pylist())
    assert sites == {f"synth_{i:02d}" for i in range(1, SITES + 1)}
    con = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
    assert lab.count_rows() == con.execute("SELECT count(*) FROM lab").fetchone()[0]
    con.close()
    types = {f.name: str(f.type) for f in lab.schema}
    assert types["sample_date"] == "date32[day]" and types["value"] == "double"
