"""Issue 6, "Scheduled refreshes you can trust": atomic publish, single writer, incremental
refreshes, run log and lineage, data freezes, crash safety, access and privacy.

Every test works on its own output directory in tmp_path. Tests that change a site's
files use copies of the demo sites; the crash test uses the repo's sites by absolute path.
Subprocesses run the real `carpool` CLI with `--log-json`, so messages are parsed, not
matched against wrapped console text. No test asserts on timing.
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from etl import pipeline
from etl.analyze import analyze_warehouse, load_analysis_input
from etl.config import KEY_ENV, load_config
from etl.errors import LockError, UsageError
from etl.pipeline import refresh
from warehouse.runlog import read_runs
from warehouse.snapshot import freeze, snapshot_connection, verify

ROOT = Path(__file__).resolve().parents[2]
CARPOOL = str(Path(sys.executable).parent / "carpool")
SITES = [s["id"] for s in yaml.safe_load((ROOT / "carpool.yml").read_text())["sites"]]
CLINICAL = ["patient", "infusion", "toxicity", "toxicity_treatment", "response", "lab", "outcome"]


# ---------------------------------------------------------------- helpers

def write_config(root: Path, **overrides) -> Path:
    """carpool.yml in root with *relative* mapping paths to root/sites (copies of the demo sites)."""
    raw = yaml.safe_load((ROOT / "carpool.yml").read_text())
    raw["output_dir"] = "out"
    for s in raw["sites"]:
        s["mapping"] = f"sites/{s['id']}/mapping.yml"
    raw.update(overrides)
    path = root / "carpool.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return path


def repo_config(root: Path) -> Path:
    """carpool.yml in root using the repo's demo sites by absolute path, output in root/out."""
    raw = yaml.safe_load((ROOT / "carpool.yml").read_text())
    raw["output_dir"] = str(root / "out")
    for s in raw["sites"]:
        s["mapping"] = str(ROOT / s["mapping"])
    path = root / "carpool.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return path


def copy_sites(root: Path) -> None:
    for sid in SITES:
        shutil.copytree(ROOT / "sites" / sid, root / "sites" / sid)


def run_refresh(cfg_path: Path, **kw):
    said, warned = [], []
    outcome = refresh(load_config(cfg_path), datetime.now(UTC), progress=said.append, warn=warned.append, **kw)
    return outcome, said, warned


def cli(*args, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    full_env.update(env or {})
    return subprocess.run([CARPOOL, "--log-json", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=ROOT)


def events(stderr: str) -> list[dict]:
    out = []
    for line in stderr.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def row_counts(out: Path) -> dict[str, int]:
    con = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in CLINICAL + ["quarantine", "etl_file", "analysis_patient"]}
    finally:
        con.close()


def file_bytes(path: Path) -> bytes:
    return path.resolve().read_bytes()


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A folder with carpool.yml, copies of the four demo sites and a published warehouse."""
    mp = pytest.MonkeyPatch()
    mp.delenv(KEY_ENV, raising=False)
    root = tmp_path_factory.mktemp("ops_base")
    copy_sites(root)
    cfg = write_config(root)
    outcome, _, _ = run_refresh(cfg)
    mp.undo()
    assert outcome.status == "ok", outcome.message
    return root


@pytest.fixture()
def work(base, tmp_path) -> Path:
    """A private copy of `base` (config, sites, out/ with its symlinks); returns its config path."""
    root = tmp_path / "w"
    shutil.copytree(base, root, symlinks=True)
    return root / "carpool.yml"


# ---------------------------------------------------------------- 1. atomic publish

def test_failed_build_keeps_previous_warehouse_and_records_reason(work, monkeypatch):
    out = work.parent / "out"
    before_target, before_bytes = (out / "current").resolve(), file_bytes(out / "warehouse.duckdb")

    def broken_build(dest, data):
        (dest / "warehouse.duckdb").write_bytes(b"half written")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pipeline, "build", broken_build)
    outcome, _, _ = run_refresh(work, full=True)
    assert outcome.status == "failed" and outcome.exit_code == 3          # a storage fault: exit 3
    assert "disk full while building the warehouse" in outcome.message
    assert "No space left on device" in outcome.message
    assert (out / "current").resolve() == before_target
    assert file_bytes(out / "warehouse.duckdb") == before_bytes
    last = read_runs(out)[-1]
    assert last["run_id"] == outcome.run_id and last["status"] == "failed"
    assert "No space left on device" in last["message"]
    assert not (out / "runs" / outcome.run_id).exists()

    def bad_view(dest, data):                 # not a storage fault: the build itself failed, exit 1
        raise RuntimeError("cannot create views: analysis_patient: no such column")

    monkeypatch.setattr(pipeline, "build", bad_view)
    outcome, _, _ = run_refresh(work, full=True)
    assert outcome.status == "failed" and outcome.exit_code == 1
    assert outcome.message.startswith("warehouse build failed, previous warehouse kept: RuntimeError")
    assert (out / "current").resolve() == before_target


def test_unreadable_export_fails_with_exit_1_and_the_failure_reaches_etl_run(work):
    out = work.parent / "out"
    before_bytes = file_bytes(out / "warehouse.duckdb")
    target = next((work.parent / "sites" / "center_c").rglob("cart_events.csv"))
    good = target.read_bytes()
    target.write_bytes(b"")                                   # the export arrives empty
    r = cli("refresh", "--config", str(work))
    assert r.returncode == 1, r.stderr
    assert any(e.get("site") == "center_c" and "empty" in e["message"] for e in events(r.stderr))
    assert file_bytes(out / "warehouse.duckdb") == before_bytes
    failed = read_runs(out)[-1]
    assert failed["status"] == "failed" and "center_c" in failed["message"]

    target.write_bytes(good)             # fixed; the inputs equal the cached ones, so --full to publish
    outcome, _, _ = run_refresh(work, full=True)
    assert outcome.status == "ok", outcome.message
    con = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
    status = dict(con.execute("SELECT run_id, status FROM etl_run").fetchall())
    message = con.execute("SELECT message FROM etl_run WHERE run_id = ?", [failed["run_id"]]).fetchone()[0]
    con.close()
    assert status[failed["run_id"]] == "failed" and "center_c" in message
    assert status[outcome.run_id] == "ok"


# ---------------------------------------------------------------- 2. single writer

HOLDER = """
import sys, time
from pathlib import Path
from warehouse.lock import refresh_lock
with refresh_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_second_refresh_exits_2_naming_the_holder_and_a_dead_holders_lock_is_cleared(work):
    out = work.parent / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = json.loads((out / ".refresh.lock").read_text())["started"]
        r = cli("refresh", "--config", str(work))
        assert r.returncode == 2, r.stderr
        err = [e for e in events(r.stderr) if e["event"] == "error"]
        assert err and f"pid {holder.pid}" in err[0]["message"] and started in err[0]["message"]
        with pytest.raises(LockError):                    # in-process too
            run_refresh(work)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the kernel dropped the flock with the process; its record is left behind: stale
    r = cli("refresh", "--config", str(work))
    assert r.returncode == 0, r.stderr
    warnings = [e["message"] for e in events(r.stderr) if e["event"] == "warning"]
    assert any("stale lock" in w and str(holder.pid) in w for w in warnings), r.stderr
    assert any(e.get("status") == "no_changes" for e in events(r.stderr))


# ---------------------------------------------------------------- 3. incremental

def test_no_change_refresh_says_no_changes_and_reuses_every_site(work):
    out = work.parent / "out"
    before = (out / "current").resolve()
    r = cli("refresh", "--config", str(work))
    assert r.returncode == 0, r.stderr
    evs = events(r.stderr)
    assert any(e["event"] == "run" and "no changes" in e["message"] for e in evs)
    assert {e["site"] for e in evs if e["event"] == "site" and e["reused"]} == set(SITES)
    assert (out / "current").resolve() == before
    assert read_runs(out)[-1]["status"] == "no_changes"


HEAVY = ("pandas", "pyarrow", "duckdb", "numpy", "ibis", "pandera", "jinja2", "great_expectations")


def _loaded(args: list[str], watched: tuple[str, ...], cwd: Path) -> subprocess.CompletedProcess:
    """Run `carpool <args>` in a fresh interpreter; stderr ends with LOADED= and the `watched`
    top-level packages it imported."""
    probe = ("import atexit, sys\n"
             f"atexit.register(lambda: print('LOADED=' + ','.join(sorted({{m.split('.')[0] for m in sys.modules}} "
             f"& set({watched!r}))), file=sys.stderr))\n"
             "from etl.cli import app\n"
             f"app({args!r})\n")
    env = {k: v for k, v in os.environ.items() if k not in (KEY_ENV, "FORCE_COLOR")}
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


def test_no_change_refresh_loads_no_data_engine_and_checks_docs_as_before(work):
    """What a scheduler polls: a no-change refresh decides from the input hashes and the
    published run's build.json (its signature and each site's quality digest), and imports
    none of pandas, pyarrow, DuckDB, numpy or the mapping engine; writing its lines to a
    log rather than a terminal, not rich either. It says the same about each site's Data
    Docs as when the digests are read from the warehouse itself (a run built before
    build.json kept them). `carpool --help`, every command's start, loads no data engine."""
    r = _loaded(["--log-json", "refresh", "--config", str(work)], HEAVY, ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert read_runs(work.parent / "out")[-1]["status"] == "no_changes"
    assert "LOADED=\n" in r.stderr, r.stderr[-3000:]
    said = sorted(e["message"] for e in events(r.stderr) if e["event"] == "warning")
    r = _loaded(["refresh", "--config", str(work)], (*HEAVY, "rich"), ROOT)
    assert r.returncode == 0 and "no changes" in r.stderr, r.stderr[-3000:]
    assert "LOADED=\n" in r.stderr, r.stderr[-3000:]
    build = (work.parent / "out" / "current").resolve() / "build.json"
    recorded = json.loads(build.read_text())
    assert set(recorded["quality_digests"]) == set(SITES)
    build.write_text(json.dumps({k: v for k, v in recorded.items() if k != "quality_digests"}))
    r = cli("refresh", "--config", str(work))
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(e["message"] for e in events(r.stderr) if e["event"] == "warning") == said
    r = _loaded(["--help"], HEAVY, ROOT)
    assert r.returncode == 0 and "LOADED=\n" in r.stderr, r.stderr[-3000:]


def test_full_rereads_every_site_and_publishes(work):
    out = work.parent / "out"
    before = (out / "current").resolve()
    counts = row_counts(out)
    outcome, said, _ = run_refresh(work, full=True)
    assert outcome.status == "ok"
    assert not any(s.reused for s in outcome.sites)
    assert sum("reading, mapping and validating" in m for m in said) == len(SITES)
    assert (out / "current").resolve() != before and row_counts(out) == counts


def test_changed_mapping_file_rereads_only_that_site(work):
    mapping = work.parent / "sites" / "center_b" / "mapping.yml"
    mapping.write_text(mapping.read_text() + "\n# reviewed by the data manager\n")
    outcome, _, _ = run_refresh(work)
    assert outcome.status == "ok"
    assert [s.site_id for s in outcome.sites if not s.reused] == ["center_b"]
    assert len(outcome.sites) == len(SITES)


def test_changed_code_list_rereads_only_that_site(work):
    codes = work.parent / "sites" / "center_d" / "codes" / "disease_status.csv"
    header, *rows = codes.read_text(encoding="utf-8").splitlines()
    codes.write_text("\n".join([header, *reversed(rows)]) + "\n", encoding="utf-8")   # same codes, new bytes
    outcome, _, _ = run_refresh(work)
    assert outcome.status == "ok", outcome.message
    assert [s.site_id for s in outcome.sites if not s.reused] == ["center_d"]


def test_new_code_version_counts_as_a_change_for_every_site(work, monkeypatch):
    monkeypatch.setattr(pipeline, "code_version", lambda: "carpool 9.9.9+different")
    outcome, _, _ = run_refresh(work)
    assert outcome.status == "ok"
    assert not any(s.reused for s in outcome.sites)
    assert read_runs(work.parent / "out")[-1]["code_version"] == "carpool 9.9.9+different"


# ---------------------------------------------------------------- 4. run log and lineage

def test_etl_run_etl_file_and_row_lineage(work):
    out = work.parent / "out"
    con = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
    run = con.execute("SELECT * FROM etl_run ORDER BY started_at DESC LIMIT 1").fetchdf().iloc[0]
    current_run = dict(con.execute("SELECT key, value FROM study_config").fetchall())["run_id"]
    assert run["run_id"] == current_run and run["status"] == "ok"
    assert run["finished_at"] >= run["started_at"]
    assert run["code_version"].startswith("carpool ") and len(run["config_hash"]) == 16
    per_site = json.loads(run["sites"])
    assert set(per_site) == set(SITES)
    patients = dict(con.execute("SELECT site_id, count(*) FROM patient GROUP BY 1").fetchall())
    for sid, c in per_site.items():
        assert c["patients_read"] == c["patients_loaded"] + c["patients_quarantined"]
        assert c["patients_loaded"] == patients[sid]
    files = con.execute("SELECT * FROM etl_file").fetchdf()
    assert set(files["site_id"]) == set(SITES)
    assert (files["rows_read"] == files["rows_loaded"] + files["rows_quarantined"]).all()
    assert files["sha256"].str.fullmatch(r"[0-9a-f]{64}").all()
    for table in CLINICAL:
        bad = con.execute(f"""
            SELECT count(*) FROM {table} t
            WHERE t.site_id IS NULL OR t.source_file IS NULL OR t.source_row IS NULL OR t.source_row < 1
               OR NOT EXISTS (SELECT 1 FROM etl_file f WHERE f.site_id = t.site_id AND f.path = t.source_file)
        """).fetchone()[0]
        assert bad == 0, f"{table}: rows not traceable to site, file and source row"
    # one row traced back to its export line: center_a is a CSV, header = line 1
    file, line = con.execute("SELECT source_file, source_row FROM patient WHERE site_id = 'center_a' "
                                  "ORDER BY source_row LIMIT 1").fetchone()
    con.close()
    raw = next((work.parent / "sites" / "center_a").rglob(file)).read_text(encoding="utf-8-sig").splitlines()
    assert len(raw) >= line and raw[line - 1].strip()


def test_carpool_runs_lists_recent_runs_newest_first(work):
    run_refresh(work)                                    # a no-change run on top of the base's ok run
    runs = read_runs(work.parent / "out")
    r = subprocess.run([CARPOOL, "runs", "--config", str(work), "-n", "5"], capture_output=True, text=True,
                       env={**os.environ, "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if re.search(r"\d{8}T\d{6}\d*Z", ln)]
    ids = [re.search(r"\d{8}T\d{6}\d*Z", ln).group(0) for ln in lines]
    assert ids == [x["run_id"] for x in reversed(runs)][:5]
    assert "no_changes" in lines[0] and "ok" in lines[-1]


# ---------------------------------------------------------------- 5. data freezes

def test_freeze_is_read_only_refuses_overwrite_and_detects_tampering(work):
    cfg = load_config(work)
    r = cli("freeze", "submitted-2026", "--config", str(work))
    assert r.returncode == 0, r.stderr
    snap = cfg.out / "snapshots" / "submitted-2026"
    m = verify(cfg, "submitted-2026")
    assert m["run_id"] == (cfg.out / "current").resolve().name
    assert m["config_hash"] == cfg.config_hash() and "pseudonym_key" not in m["config"]
    assert {"parquet/patient.parquet", "parquet/study_config.parquet", "views/analysis_patient.sql"} <= set(m["files"])
    for p in [snap, *snap.rglob("*")]:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode & 0o222 == 0, f"{p} is writable ({oct(mode)})"

    again = cli("freeze", "submitted-2026", "--config", str(work))
    assert again.returncode == 2 and "already exists" in again.stderr
    assert verify(cfg, "submitted-2026") == m
    assert cli("freeze", "../escape", "--config", str(work)).returncode == 2

    con = snapshot_connection(cfg, "submitted-2026")
    try:
        n = con.execute("SELECT count(*) FROM analysis_patient").fetchone()[0]
        assert n == row_counts(cfg.out)["analysis_patient"]
        for stmt in ["CREATE TABLE x AS SELECT 1", "DELETE FROM patient",
                     f"COPY patient TO '{snap / 'parquet' / 'patient.parquet'}' (FORMAT PARQUET)"]:
            with pytest.raises(duckdb.Error):
                con.execute(stmt)
    finally:
        con.close()

    victim = snap / "parquet" / "patient.parquet"
    victim.chmod(0o644)
    victim.write_bytes(victim.read_bytes() + b"\0")
    with pytest.raises(UsageError, match="patient.parquet: content changed"):
        verify(cfg, "submitted-2026")
    with pytest.raises(UsageError):
        snapshot_connection(cfg, "submitted-2026")
    with pytest.raises(UsageError, match="no snapshot 'nope'"):
        verify(cfg, "nope")


def test_analyze_on_a_snapshot_reproduces_the_frozen_analysis_bit_for_bit(work, monkeypatch):
    cfg = load_config(work)
    said = []

    def log(_event, message, **_):
        said.append(message)

    analyze_warehouse(cfg, None, None, log)
    live_stats = (cfg.out / "report" / "statistics.csv").read_bytes()
    con = duckdb.connect(str(cfg.out / "warehouse.duckdb"), read_only=True)
    live_df, live_settings = load_analysis_input(con)
    con.close()
    freeze(cfg, "frozen", datetime(2026, 5, 1, tzinfo=UTC))

    # the live warehouse moves on: a new key rotates every study id and a new run publishes
    monkeypatch.setenv(KEY_ENV, "rotated-key-after-the-freeze-0123456789")
    outcome, _, _ = run_refresh(work, full=True)
    assert outcome.status == "ok"

    con = snapshot_connection(cfg, "frozen")
    snap_df, snap_settings = load_analysis_input(con)
    con.close()
    pd.testing.assert_frame_equal(snap_df, live_df, check_exact=True)
    assert snap_settings == live_settings

    report = analyze_warehouse(cfg, None, "frozen", log)
    assert (report.parent / "statistics.csv").read_bytes() == live_stats
    html = report.read_text(encoding="utf-8")
    assert "frozen" in html and live_settings["run_id"] in html


# ---------------------------------------------------------------- 6. crash safety

KILLS = 10
SEED = 20240611


def _wait_for_event(proc: subprocess.Popen, wanted: str) -> None:
    """Read the child's JSON log until a progress message contains `wanted` (or it exits)."""
    for line in proc.stderr:
        if wanted in line:
            return


def test_sigkill_at_random_points_never_damages_the_published_warehouse(tmp_path):
    """10 `carpool refresh --full` processes are killed with SIGKILL at seeded random points:
    half after a random delay from process start (0-4 s: start-up, site reads, build, publish,
    the docs check), half up to 0.5 s after a chosen stage began (a site being read, or the
    warehouse build). After every kill the last good
    warehouse opens read-only with the same row counts, and the next refresh succeeds."""
    cfg_path = repo_config(tmp_path)
    out = load_config(cfg_path).out
    first, _, _ = run_refresh(cfg_path, full=True)
    assert first.status == "ok", first.message
    good = row_counts(out)
    rng = random.Random(SEED)
    stages = ["center_a: reading", "center_c: reading"] + ["building the pooled warehouse"] * 3
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    killed = 0
    for i in range(KILLS):
        proc = subprocess.Popen([CARPOOL, "--log-json", "refresh", "--full", "--config", str(cfg_path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                                start_new_session=True)
        watchdog = threading.Timer(60, proc.kill)
        watchdog.start()
        try:
            if i % 2 == 0:
                time.sleep(rng.uniform(0.0, 4.0))
            else:
                _wait_for_event(proc, rng.choice(stages))
                time.sleep(rng.uniform(0.0, 0.5))
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                killed += 1
            proc.wait()
        finally:
            watchdog.cancel()
            proc.stderr.close()
        left = sorted(d.name for d in (out / "runs").iterdir() if not (d / ".published").exists())
        print(f"kill {i}: half-built runs left {left}, lock record {(out / '.refresh.lock').read_text()!r}, "
              f"current {(out / 'current').resolve().name}")     # shown with pytest -s
        # the last good warehouse is intact and opens read-only
        assert (out / "current").resolve().joinpath(".published").exists()
        assert row_counts(out) == good, f"kill {i}: warehouse changed"
        # and the next refresh succeeds (rebuilding every other time)
        outcome, _, _ = run_refresh(cfg_path, full=(i % 2 == 1))
        assert outcome.status in ("ok", "no_changes"), outcome.message
        assert row_counts(out) == good
    assert killed >= KILLS - 2, f"only {killed} of {KILLS} processes were still running when killed"
    leftovers = [d.name for d in (out / "runs").iterdir() if not (d / ".published").exists()]
    assert leftovers == [], f"unpublished run folders left behind: {leftovers}"


# ---------------------------------------------------------------- 7. access and privacy

def test_the_key_never_reaches_out_and_rotating_it_changes_every_study_id(work):
    key = "site-secret-" + os.urandom(12).hex()
    out = work.parent / "out"
    con = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
    old_ids = {r[0] for r in con.execute("SELECT study_id FROM patient").fetchall()}
    con.close()
    r = cli("refresh", "--config", str(work), env={KEY_ENV: key})
    assert r.returncode == 0, r.stderr
    assert cli("freeze", "with-key", "--config", str(work), env={KEY_ENV: key}).returncode == 0
    assert cli("export-aggregates", "--out", str(out / "shared" / "agg.csv"), "--config", str(work),
               env={KEY_ENV: key}).returncode == 0
    con = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
    new_ids = {r[0] for r in con.execute("SELECT study_id FROM patient").fetchall()}
    other = {t: {r[0] for r in con.execute(f"SELECT DISTINCT study_id FROM {t}").fetchall()} for t in CLINICAL}
    con.close()
    assert len(new_ids) == len(old_ids) and not (new_ids & old_ids), "every study_id changes with the key"
    assert all(ids <= new_ids for ids in other.values()), "all tables use the new ids"
    needles = [key.encode(), key.encode("utf-16-le"), key.encode().hex().encode()]
    scanned = 0
    for p in out.rglob("*"):
        if p.is_file() and not p.is_symlink():
            data = p.read_bytes()
            scanned += 1
            for needle in needles:
                assert needle not in data, f"the pseudonymization key is in {p}"
    assert scanned > 20


def test_only_config_py_reads_the_key():
    offenders = []
    patterns = re.compile(r"CARPOOL_PSEUDONYM_KEY|KEY_ENV|pseudonym_key\.(file|env|demo_key)|demo_key"
                          r"|(environ|getenv).*(KEY|key)")
    for d in ("etl", "schemas", "warehouse", "analysis", "sites"):
        for p in sorted((ROOT / d).rglob("*.py")):
            if p.relative_to(ROOT).as_posix() == "etl/config.py":
                continue
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
                if patterns.search(line):
                    offenders.append(f"{p.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == [], "only etl/config.py may read the key:\n" + "\n".join(offenders)


def test_config_values_reach_sql_as_data_not_code(tmp_path):
    """A study name and an output folder with quotes and SQL in them are stored verbatim."""
    copy_sites(tmp_path)
    study = "o'brien\"; DROP TABLE patient; --"
    cfg_path = write_config(tmp_path, study=study, output_dir="it's out")
    outcome, _, _ = run_refresh(cfg_path)
    assert outcome.status == "ok", outcome.message
    out = tmp_path / "it's out"
    con = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
    assert dict(con.execute("SELECT key, value FROM study_config").fetchall())["study"] == study
    assert con.execute("SELECT count(*) FROM patient").fetchone()[0] > 0
    con.close()
    assert any((out / "parquet" / "patient").glob("site_id=*/*.parquet"))
    freeze(load_config(cfg_path), "quoted", datetime(2026, 1, 1, tzinfo=UTC))
    con = snapshot_connection(load_config(cfg_path), "quoted")
    assert con.execute("SELECT count(*) FROM patient").fetchone()[0] > 0
    con.close()


def test_bad_site_id_is_a_config_error_exit_2(tmp_path):
    raw = yaml.safe_load((ROOT / "carpool.yml").read_text())
    raw["sites"][0]["id"] = "a'; DROP TABLE patient; --"
    (tmp_path / "carpool.yml").write_text(yaml.safe_dump(raw))
    r = cli("refresh", "--config", str(tmp_path / "carpool.yml"))
    assert r.returncode == 2
    assert "site id" in r.stderr and "Traceback" not in r.stderr


def test_sql_command_is_read_only(work):
    r = cli("sql", "CREATE TABLE evil AS SELECT 1", "--config", str(work))
    assert r.returncode == 2 and "read-only" in r.stderr.lower()


def test_export_aggregates_suppresses_small_cells_and_says_so(work):
    dest = work.parent / "shared" / "aggregates.csv"
    r = cli("export-aggregates", "--min-cell", "5", "--out", str(dest), "--config", str(work))
    assert r.returncode == 0, r.stderr
    first = dest.read_text().splitlines()[0]
    assert first.startswith("#") and "suppressed" in first and "1 to 4" in first
    frame = pd.read_csv(dest, comment="#")
    assert {"section", "site_id", "tox_group", "cr_d30", "value", "suppressed"} <= set(frame.columns)
    shown = frame[~frame["suppressed"]]
    assert not shown["value"].between(1, 4).any(), "a count below 5 was exported"
    assert frame.loc[frame["suppressed"], "value"].isna().all()
    assert frame["suppressed"].any(), "the demo has small site x group cells"
    assert "study_id" not in frame.columns
    # the threshold is configurable; 1 suppresses nothing
    r = cli("export-aggregates", "--min-cell", "1", "--out", str(dest), "--config", str(work))
    assert r.returncode == 0 and not pd.read_csv(dest, comment="#")["suppressed"].any()
    assert cli("export-aggregates", "--min-cell", "0", "--out", str(dest), "--config", str(work)).returncode == 2


# ---------------------------------------------------------------- 8. operations docs

def test_operations_doc_covers_exit_codes_cron_airflow_and_read_only_access():
    doc = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    for needle in ["crontab", "BashOperator", "--log-json", "duckdb -readonly", "power loss",
                   "| 0 ", "| 1 ", "| 2 ", "carpool freeze", "export-aggregates"]:
        assert needle in doc, needle


def test_new_commands_have_an_example_in_their_help():
    for cmd in ("freeze", "export-aggregates"):
        r = subprocess.run([CARPOOL, cmd, "--help"], capture_output=True, text=True,
                           env={**os.environ, "COLUMNS": "200"})
        assert r.returncode == 0 and "Example:" in r.stdout, cmd
