"""`carpool docs`: Great Expectations Data Docs off the refresh's hot path (issue 10 item 5).

A plain refresh imports no GX and builds no docs: per site whose docs are missing or older
than its data it prints one warning naming `carpool docs`, and the site's validation report
says the same, as does `carpool quality`. `carpool docs` builds exactly the stale sites' docs; `refresh --docs` builds
them in the run, as refresh did before.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import yaml
from typer.testing import CliRunner

from etl.cli import app
from tests.functional.conftest import ROOT

runner = CliRunner()
SITES = ("center_a", "center_b")
REFRESH_WITHOUT_GX = """
import sys
from etl.cli import app
try:
    app(["refresh", "--config", sys.argv[1]])
except SystemExit as exc:
    print("EXIT", exc.code, "great_expectations" in sys.modules)
"""


def _consortium(tmp_path, sites=SITES):
    for s in sites:
        shutil.copytree(ROOT / "sites" / s, tmp_path / "sites" / s)
    raw = yaml.safe_load((ROOT / "carpool.yml").read_text())
    raw.update(output_dir="out", sites=[{"id": s, "mapping": f"sites/{s}/mapping.yml"} for s in sites])
    config = tmp_path / "carpool.yml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return config


def _stamp_and_hash(out, site):
    stamp = out / "validation" / site / "gx" / ".input_hash"
    manifest = json.loads((out / "sites" / site / "manifest.json").read_text())
    return (stamp.read_text().strip() if stamp.exists() else None), manifest["input_hash"]


def _report_line(out, site) -> str:
    html = (out / "validation" / site / "index.html").read_text(encoding="utf-8")
    return re.search(r'<p id="gx-docs">.*?</p>', html).group(0)


def _docs_warnings(output: str) -> dict[str, str]:
    return {m.group(1): m.group(0) for m in re.finditer(r"warning: (\w+): Data Docs [^\n]*", output)}


def test_refresh_alone_leaves_the_docs_stale_and_says_so_and_carpool_docs_brings_them_up_to_date(tmp_path):
    config = _consortium(tmp_path)
    out = tmp_path / "out"
    r = runner.invoke(app, ["docs", "--config", str(config)])
    assert r.exit_code == 2 and "no warehouse" in r.output and len(r.output.strip().splitlines()) == 1

    p = subprocess.run([sys.executable, "-c", REFRESH_WITHOUT_GX, str(config)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=600)
    assert "EXIT 0 False" in p.stdout, (p.stdout, p.stderr[-2000:])   # exit 0, Great Expectations never imported
    warned = _docs_warnings(p.stderr)
    assert sorted(warned) == list(SITES), p.stderr
    for site in SITES:
        assert warned[site].endswith("Data Docs missing; rebuild them with `carpool docs`")   # ./carpool.yml
        assert not (out / "validation" / site / "gx").exists()
        line = _report_line(out, site)
        assert 'class="warning"' in line and "<code>carpool docs</code>" in line, line

    r = runner.invoke(app, ["docs", "--config", str(config)])
    assert r.exit_code == 0, r.output
    assert "Data Docs: 2 built, 0 up to date" in r.output
    for site in SITES:
        stamp, input_hash = _stamp_and_hash(out, site)
        assert stamp == input_hash and (out / "validation" / site / "gx" / "index.html").is_file()
        assert 'class="warning"' not in _report_line(out, site)
    index = out / "validation" / "center_b" / "gx" / "index.html"
    built_at = index.stat().st_mtime_ns

    r = runner.invoke(app, ["refresh", "--config", str(config)])   # no changes: nothing stale, nothing said
    assert r.exit_code == 0 and _docs_warnings(r.output) == {}, r.output

    mapping = tmp_path / "sites" / "center_a" / "mapping.yml"
    mapping.write_text(mapping.read_text() + "\n# reviewed\n")   # center_a's inputs change, not its data
    r = runner.invoke(app, ["refresh", "--config", str(config)])
    assert r.exit_code == 0, r.output
    warned = _docs_warnings(r.output)
    assert list(warned) == ["center_a"] and "older than the site's data" in warned["center_a"], r.output
    assert "older than" in _report_line(out, "center_a") and 'class="warning"' not in _report_line(out, "center_b")
    stamp, input_hash = _stamp_and_hash(out, "center_a")
    assert stamp is not None and stamp != input_hash
    r = runner.invoke(app, ["quality", "--config", str(config)])   # its checks are on the docs' index too
    assert r.exit_code == 0 and list(_docs_warnings(r.output)) == ["center_a"], r.output

    r = runner.invoke(app, ["docs", "--site", "center_b", "--config", str(config)])
    assert r.exit_code == 0 and "Data Docs: 0 built, 1 up to date" in r.output, r.output
    r = runner.invoke(app, ["docs", "--config", str(config)])
    assert r.exit_code == 0 and "Data Docs: 1 built, 1 up to date" in r.output, r.output
    assert index.stat().st_mtime_ns == built_at                      # center_b's current docs left alone
    stamp, input_hash = _stamp_and_hash(out, "center_a")
    assert stamp == input_hash and 'class="warning"' not in _report_line(out, "center_a")
    r = runner.invoke(app, ["quality", "--config", str(config)])
    assert r.exit_code == 0 and _docs_warnings(r.output) == {}, r.output
    runs = [json.loads(x) for x in (out / "run_log.jsonl").read_text().splitlines() if x.strip()]
    assert [r["sites"] for r in runs if r.get("command") == "docs" and r["status"] == "ok"][-1] == \
        {"center_a": "built", "center_b": "up to date"}


def test_refresh_with_docs_builds_them_in_the_run(tmp_path):
    config = _consortium(tmp_path, ("center_b",))
    r = runner.invoke(app, ["refresh", "--docs", "--config", str(config)])
    assert r.exit_code == 0, r.output
    assert _docs_warnings(r.output) == {}, r.output
    stamp, input_hash = _stamp_and_hash(tmp_path / "out", "center_b")
    assert stamp == input_hash and 'class="warning"' not in _report_line(tmp_path / "out", "center_b")


def test_docs_for_an_unknown_site_is_one_line_exit_2(tmp_path):
    config = _consortium(tmp_path, ("center_b",))
    r = runner.invoke(app, ["docs", "--site", "center_x", "--config", str(config)])
    assert r.exit_code == 2 and "no site 'center_x'" in r.output and len(r.output.strip().splitlines()) == 1


def test_a_refresh_whose_caller_builds_the_docs_next_says_so_once(tmp_path):
    """`carpool demo` (then `carpool docs`, as `make demo` runs them): the sites without
    current Data Docs are one line naming the command, not a warning per site; each site's
    validation report still says its docs are missing."""
    from etl.commands import do_refresh

    config = _consortium(tmp_path)
    said = []
    outcome = do_refresh(config, None, False, lambda event, message, **_: said.append((event, message)),
                         docs_next=True)
    assert outcome.status in ("ok", "data_errors"), outcome.message
    assert not [m for e, m in said if e == "warning" and "Data Docs" in m], said
    lines = [m for e, m in said if e == "docs"]
    assert lines == ["Data Docs not current for center_a, center_b: `carpool docs --config "
                     f"{config}` builds them (as `make demo` does next)"], said
    for site in SITES:
        assert "<code>carpool docs" in _report_line(tmp_path / "out", site)
    r = runner.invoke(app, ["docs", "--config", str(config)])
    assert r.exit_code == 0, r.output
    said.clear()
    do_refresh(config, None, False, lambda event, message, **_: said.append((event, message)), docs_next=True)
    assert not [m for e, m in said if "Data Docs" in m], said
