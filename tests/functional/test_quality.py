"""Issue 13 item 5: GX Data Docs on the mapped rows before quarantine (masked, offline, an
index listing every site's suites), the DQD-style `quality_check` table and `carpool quality`."""
from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime

import duckdb
import yaml
from typer.testing import CliRunner

from etl.cli import app
from etl.compile import convert
from etl.config import load_config
from etl.pipeline import refresh
from etl.site import read_site
from etl.validate.datadocs import build
from etl.validate.docs_offline import remote_references
from schemas.model import common_schema
from tests.functional.conftest import ROOT


def _identifiers(cfg, site) -> set[str]:
    mapping, raw = read_site(cfg, site)
    ids = mapping.identifiers
    frame = raw[ids.source].frame
    return {str(v).strip() for col in [ids.local_id, *ids.columns] for v in frame[col]
            if not convert.is_missing(v) and len(str(v).strip()) >= 3}


def test_data_docs_show_pre_quarantine_failures_masked_and_offline(demo):
    cfg, outcome = demo
    assert not list(cfg.out.glob("validation/*/gx")), "a refresh built Data Docs: they are `carpool docs`'s"
    build(cfg, outcome.sites, lambda m: None)
    failed_suites = 0
    for site in cfg.sites:
        docs = cfg.out / "validation" / site.id / "gx"
        assert remote_references(docs) == [], site.id
        index = (docs / "index.html").read_text(encoding="utf-8")
        for table in common_schema():
            link = re.search(rf'<a href="(validations/{table}/[^"]+\.html)">{table}</a>', index)
            assert link and (docs / link.group(1)).is_file(), (site.id, table)
        failed_suites += index.count('class="fail">Failed')
        assert "Dataset checks" in index and "ROW_COUNT_DROP" in index
        text = "\n".join(p.read_text(encoding="utf-8") for p in docs.rglob("*.html"))
        leaked = sorted(v for v in _identifiers(cfg, site) if v in text)
        assert leaked == [], (site.id, leaked[:5])
    assert failed_suites > 0, "every suite says Succeeded: GX saw the data after quarantine"


def test_quality_check_table_holds_every_check_type_per_site(db):
    got = db.execute("SELECT check_type, count(DISTINCT site_id) FROM quality_check GROUP BY 1").fetchall()
    n_sites = db.execute("SELECT count(DISTINCT site_id) FROM patient").fetchone()[0]
    assert dict(got) == {"row_count_change": n_sites, "completeness": n_sites, "site_rate": n_sites}
    described = db.execute("SELECT count(*) FROM data_dictionary WHERE \"table\" = 'quality_check' "
                           "AND coalesce(description, '') <> ''").fetchone()[0]
    assert described == len(db.execute("DESCRIBE quality_check").fetchall())


def test_a_shrunken_export_is_flagged_and_carpool_quality_says_so(tmp_path):
    site = tmp_path / "center_a"
    shutil.copytree(ROOT / "sites" / "center_a", site)
    raw = yaml.safe_load((ROOT / "carpool.yml").read_text())
    raw.update(output_dir=str(tmp_path / "out"), quality={"max_shrink_pct": 60},
               sites=[{"id": "center_a", "mapping": str(site / "mapping.yml")}])
    config = tmp_path / "carpool.yml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True))
    runner = CliRunner()
    r = runner.invoke(app, ["quality", "--config", str(config)])
    assert r.exit_code == 2 and "no warehouse" in r.output and len(r.output.strip().splitlines()) == 1
    cfg = load_config(config)
    assert refresh(cfg, datetime(2026, 1, 1, tzinfo=UTC)).status == "ok"
    export = site / "export" / "cart_patients.csv"
    lines = export.read_text(encoding="utf-8").splitlines(keepends=True)
    export.write_text("".join(lines[: 1 + (len(lines) - 1) // 2]), encoding="utf-8")  # half the patients
    assert refresh(cfg, datetime(2026, 1, 2, tzinfo=UTC)).status in ("ok", "data_errors")
    con = duckdb.connect(str(cfg.out / "warehouse.duckdb"), read_only=True)
    try:
        drop = con.execute("SELECT passed, value, num_denominator_rows FROM quality_check "
                           "WHERE check_id = 'ROW_COUNT_DROP' AND table_name = 'patient'").fetchone()
    finally:
        con.close()
    assert drop[0] is False and drop[1] < 0.9 * drop[2]
    r = runner.invoke(app, ["quality", "--config", str(config)])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "ROW_COUNT_DROP" in out and "FAILED ROW_COUNT_DROP center_a patient" in out
