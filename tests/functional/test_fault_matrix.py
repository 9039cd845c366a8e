"""Issue 16: the fault-injection matrix. Every fault ends in one clear line, a documented exit
code and a run-log entry, leaves the published warehouse and results unchanged or replaced
whole, leaves no process behind, and the next run succeeds. docs/operations.md ("What each
fault does") describes the same cells.

One demo (refresh + analyze) is built once in `root/w` and stashed; each cell restores it at
the same path, injects its fault, runs the real `carpool` CLI with `--log-json`, and checks. Random points (kill delays,
bytes left free) come from `random.Random(SEED)`. Kills are real `kill -9` of the main pid or
of the process group; `$CARPOOL_FAULT_POINT` (warehouse.durable.fault_point) parks the
process in the phase a kill must hit. Disk-full and read-only cells mount a small tmpfs on
`out/` (root only; skipped with the reason otherwise). Analyze cells use a small plan so they
take seconds; the heavy parts are the module fixture (one full demo) and `carpool demo`
under an open analyst connection. No test asserts on timing.
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest
import yaml

from etl.config import KEY_ENV, load_config
from etl.errors import StaleResultError
from warehouse import publish
from warehouse.runlog import read_runs
from warehouse.verify import verify_current

ROOT = Path(__file__).resolve().parents[2]
CARPOOL = str(Path(sys.executable).parent / "carpool")
SITES = [s["id"] for s in yaml.safe_load((ROOT / "carpool.yml").read_text())["sites"]]
SEED = 16
RNG = random.Random(SEED)
pytestmark = pytest.mark.faults


# ---------------------------------------------------------------- the demo and its restore

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """root/w: carpool.yml, copies of the demo sites, out/ with a published warehouse,
    results and current Data Docs (built once: the heavy part); root/stash: a copy of that
    out/ to restore."""
    root = tmp_path_factory.mktemp("faults")
    w = root / "w"
    for sid in SITES:
        shutil.copytree(ROOT / "sites" / sid, w / "sites" / sid)
    raw = yaml.safe_load((ROOT / "carpool.yml").read_text())
    raw["output_dir"] = "out"
    for s in raw["sites"]:
        s["mapping"] = f"sites/{s['id']}/mapping.yml"
    (w / "carpool.yml").write_text(yaml.safe_dump(raw, allow_unicode=True))
    plan = yaml.safe_load((ROOT / "analysis" / "plans" / "study.yml").read_text())
    plan["table1"].update(compare_by=["crs"], variables=["age"])
    for section in ("response", "survival", "kinetics"):
        plan[section]["compare_by"] = ["crs"]
    plan["response"]["tests"] = {"crs": "fisher"}
    plan["cox"].update(endpoints=["os"], terms=["steroids"], screen={"candidates": ["age", "steroids"],
                                                                     "threshold": 0.1})
    (root / "small_plan.yml").write_text(yaml.safe_dump(plan, allow_unicode=True))
    r = cli("refresh", w)
    assert r.returncode == 0, r.stderr
    r = cli("analyze", w, "--plan", root / "small_plan.yml")
    assert r.returncode == 0, r.stderr
    r = cli("docs", w)                          # as `make demo`: current Data Docs, so no cell starts stale
    assert r.returncode == 0, r.stderr
    shutil.copytree(w / "out", root / "stash", symlinks=True)
    shutil.copytree(w / "sites", root / "stash_sites")
    return root


@pytest.fixture()
def cell(demo):
    """Restore the good demo state (out/, which may be a mount point, and the sites) and return root/w."""
    w = demo / "w"
    _restore(demo)
    yield w
    _restore(demo)


def _restore(root: Path) -> None:
    out = root / "w" / "out"
    if out.is_mount():
        subprocess.run(["umount", str(out)], check=True)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(root / "stash", out, symlinks=True)
    shutil.rmtree(root / "w" / "sites")              # cells touch mappings: back to the built inputs
    shutil.copytree(root / "stash_sites", root / "w" / "sites")


def cli(cmd: str, w: Path, *args, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([CARPOOL, "--log-json", cmd, "--config", str(w / "carpool.yml"), *map(str, args)],
                          capture_output=True, text=True, env=_env(env), timeout=600, cwd=ROOT)


def spawn(cmd: str, w: Path, *args, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([CARPOOL, "--log-json", cmd, "--config", str(w / "carpool.yml"), *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env(env),
                            cwd=ROOT, start_new_session=True)


def _env(extra: dict | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (KEY_ENV, "CARPOOL_FAULT_POINT")}
    return {**env, **(extra or {})}


def events(stderr: str) -> list[dict]:
    out = []
    for line in stderr.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


# ---------------------------------------------------------------- what every cell checks

def published(w: Path) -> tuple[str, str]:
    """(current run, its result set), after checking both against their manifests."""
    out = w / "out"
    verify_current(out)
    run = publish.current(out)
    return run.name, (run / "results").resolve().name


def no_process_left(w: Path) -> None:
    needle = str(w / "carpool.yml").encode()
    left = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if needle in (proc / "cmdline").read_bytes():
                    left.append(proc.name)
            except OSError:
                continue
    assert left == [], f"processes of the faulted run still running: {left}"


def one_line_fault(r: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """No traceback; the documented exit code; exactly one error line, naming the fault."""
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert r.returncode == code, (r.returncode, r.stderr[-2000:])
    errors = [e["message"] for e in events(r.stderr) if e.get("event") == "error"]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    for n in needles:
        assert n in errors[0], (n, errors[0])
    return errors[0]


def next_run_succeeds(w: Path, cmd: str = "refresh", *args) -> subprocess.CompletedProcess:
    r = cli(cmd, w, *args)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    published(w)
    return r


def kill(proc: subprocess.Popen, group: bool) -> None:
    if group:
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()


def wait_for(proc: subprocess.Popen, needle: str) -> None:
    watchdog = threading.Timer(300, lambda: os.killpg(proc.pid, signal.SIGKILL))
    watchdog.start()
    try:
        for line in proc.stderr:
            if needle in line:
                return
        raise AssertionError(f"the process ended before {needle!r}")
    finally:
        watchdog.cancel()


def interrupted_logged(w: Path, command: str, run_id: str | None = None) -> dict:
    rec = [r for r in read_runs(w / "out") if r["status"] == "interrupted" and r.get("command") == command]
    assert rec, f"no interrupted {command} run in the run log"
    if run_id:
        assert rec[-1]["run_id"] == run_id, (rec[-1], run_id)
    return rec[-1]


def touch_mapping(w: Path, site: str) -> None:
    m = w / "sites" / site / "mapping.yml"
    m.write_text(m.read_text() + f"\n# reviewed {RNG.random()}\n")


# ---------------------------------------------------------------- kill -9

@pytest.mark.parametrize("group", [False, True], ids=["main_pid", "process_group"])
def test_kill_during_site_reads_or_build(cell, group):
    """kill -9 at a seeded random point while `refresh --full` reads sites or builds."""
    before = published(cell)
    stage = RNG.choice([f"{s}: reading" for s in SITES] + ["building the pooled warehouse"])
    proc = spawn("refresh", cell, "--full")
    wait_for(proc, stage)
    threading.Event().wait(RNG.uniform(0.0, 0.3))
    lock = json.loads((cell / "out" / ".refresh.lock").read_text())
    kill(proc, group)
    no_process_left(cell)
    assert published(cell) == before
    r = next_run_succeeds(cell)
    assert any("stale lock" in e["message"] and lock["run_id"] in e["message"] for e in events(r.stderr))
    interrupted_logged(cell, "refresh", lock["run_id"])


@pytest.mark.parametrize("group", [False, True], ids=["main_pid", "process_group"])
def test_kill_during_publish_keeps_the_last_published_run(cell, group):
    touch_mapping(cell, RNG.choice(SITES))
    before = published(cell)
    proc = spawn("refresh", cell, env={"CARPOOL_FAULT_POINT": "refresh: publishing"})
    wait_for(proc, "fault point refresh: publishing")
    lock = json.loads((cell / "out" / ".refresh.lock").read_text())
    kill(proc, group)
    no_process_left(cell)
    assert published(cell) == before            # marked and manifested, but never switched in
    r = next_run_succeeds(cell)                 # no --full: the cached sites are reused and published
    assert any(e.get("status") == "ok" for e in events(r.stderr))
    assert published(cell)[0] not in (before[0], lock["run_id"])
    assert not (cell / "out" / "runs" / lock["run_id"]).exists()
    assert interrupted_logged(cell, "refresh", lock["run_id"])["phase"] == "publishing"


@pytest.mark.parametrize("trigger", ["docs", "refresh --docs"])
def test_kill_during_validation_docs_is_said_by_the_next_refresh_and_rebuilt_by_carpool_docs(cell, trigger):
    """Data Docs are built by `carpool docs` or `refresh --docs`, never by a plain refresh. A
    site's inputs change; a plain refresh says its docs are stale (trigger `docs`), then the
    build is killed while it rebuilds that site's docs. The published warehouse is whole (the
    new one, for refresh --docs); the next plain refresh says the docs are still stale and names
    `carpool docs`; the next `carpool docs` rebuilds them, clears the half-built folder, and the
    killed run is logged as interrupted."""
    site = RNG.choice(SITES)
    docs = cell / "out" / "validation" / site / "gx"
    assert (docs / "index.html").exists()       # the demo's docs are current
    touch_mapping(cell, site)
    if trigger == "docs":
        r = next_run_succeeds(cell)             # a plain refresh publishes and says the docs are stale
        assert _stale_docs_warned(r, site), r.stderr[-3000:]
    before = published(cell)
    command, *flags = trigger.split()
    proc = spawn(command, cell, *flags, env={"CARPOOL_FAULT_POINT": f"docs: {site}"})
    wait_for(proc, f"fault point docs: {site}")
    lock = json.loads((cell / "out" / ".refresh.lock").read_text())
    assert lock["command"] == command
    kill(proc, RNG.random() < 0.5)
    no_process_left(cell)
    new = published(cell)                       # replaced whole (refresh --docs) or untouched (docs)
    assert (new[0] != before[0]) == (trigger == "refresh --docs")
    stamp = json.loads((cell / "out" / "sites" / site / "manifest.json").read_text())["input_hash"]
    assert (docs / ".input_hash").read_text().strip() != stamp and (docs / "index.html").exists()  # old docs
    assert list(docs.parent.glob(".gx.tmp*")), "the kill did not land while the docs were being built"
    r = next_run_succeeds(cell)                 # a plain refresh: no changes, and it says so
    assert any(e.get("status") == "no_changes" for e in events(r.stderr))
    assert _stale_docs_warned(r, site), r.stderr[-3000:]
    interrupted_logged(cell, command, lock["run_id"])
    r = cli("docs", cell)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert (docs / ".input_hash").read_text().strip() == stamp and (docs / "index.html").exists()
    assert not list(docs.parent.glob(".gx.*"))
    line = re.search(r'<p id="gx-docs">.*?</p>', (docs.parent / "index.html").read_text(encoding="utf-8"))
    assert line and 'class="warning"' not in line.group(0), line   # the report no longer says stale
    r = next_run_succeeds(cell)
    assert not _stale_docs_warned(r, site)
    assert published(cell)[0] == new[0]


def _stale_docs_warned(r: subprocess.CompletedProcess, site: str) -> bool:
    return any(e["event"] == "warning" and e["message"].startswith(f"warning: {site}: Data Docs")
               and "`carpool docs" in e["message"] for e in events(r.stderr))


def test_kill_during_analyze_keeps_the_published_results(cell, demo):
    before = published(cell)
    proc = spawn("analyze", cell, "--plan", demo / "small_plan.yml", env={"CARPOOL_FAULT_POINT": "analyze: staged"})
    wait_for(proc, "fault point analyze: staged")
    kill(proc, RNG.random() < 0.5)
    no_process_left(cell)
    assert published(cell) == before
    assert list((cell / "out" / "results").glob(".tmp-*")), "the killed analyze had staged a set"
    r = next_run_succeeds(cell, "analyze", "--plan", demo / "small_plan.yml")
    assert any("analyze" in e["message"] and "killed or crashed" in e["message"] for e in events(r.stderr))
    after = published(cell)
    assert after[0] == before[0] and after[1] != before[1]
    assert not list((cell / "out" / "results").glob(".tmp-*"))
    interrupted_logged(cell, "analyze")


# ---------------------------------------------------------------- disk full, read-only out/

def mount_small_tmpfs(w: Path, size: str = "96m") -> Path:
    """out/ moved onto a small tmpfs of its own (same absolute path)."""
    out = w / "out"
    held = w.parent / "held_out"
    shutil.rmtree(held, ignore_errors=True)
    out.rename(held)
    out.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(out)], capture_output=True)
    if r.returncode != 0:
        out.rmdir()
        held.rename(out)
        pytest.skip(f"cannot mount a tmpfs on out/ (needs root): {r.stderr.decode().strip()}")
    for p in held.iterdir():
        (shutil.copytree(p, out / p.name, symlinks=True) if p.is_dir() and not p.is_symlink()
         else shutil.copy2(p, out / p.name, follow_symlinks=False))
    shutil.rmtree(held)
    return out


def fill(out: Path, free: int) -> Path:
    """Leave about `free` bytes free on out/'s file system (0: completely full)."""
    filler = out / ".filler"
    st = os.statvfs(out)
    target = st.f_bavail * st.f_frsize - free
    with filler.open("wb", buffering=0) as fh:
        while target > 0:
            try:
                os.posix_fallocate(fh.fileno(), 0, target)
                break
            except OSError:
                target -= 16 * 1024
        if free == 0:
            fh.seek(0, os.SEEK_END)
            try:
                while True:
                    fh.write(b"\0" * 4096)
            except OSError:
                pass
    st = os.statvfs(out)
    assert st.f_bavail * st.f_frsize <= max(free, 0) + 32 * 1024, "could not fill the tmpfs"
    return filler


FREE = [0, RNG.randrange(1, 16) * 1024, RNG.randrange(1, 16) * 1024]   # bytes left free


@pytest.mark.parametrize("free", FREE, ids=["0_bytes", "few_KB_a", "few_KB_b"])
def test_disk_full_refresh(cell, free):
    out = mount_small_tmpfs(cell)
    assert cli("refresh", cell).returncode == 0   # a run on this file system: the run log's reserve is here
    touch_mapping(cell, RNG.choice(SITES))
    before = published(cell)
    filler = fill(out, free)
    r = cli("refresh", cell)
    msg = one_line_fault(r, 3, "disk full", "nothing published was changed")
    no_process_left(cell)
    assert published(cell) == before
    last = read_runs(out)[-1]
    assert last["status"] == "failed" and "disk full" in last["message"], (last, msg)
    filler.unlink()
    next_run_succeeds(cell)


def test_disk_full_analyze(cell, demo):
    out = mount_small_tmpfs(cell)
    assert cli("refresh", cell).returncode == 0   # a run on this file system: the run log's reserve is here
    before = published(cell)
    filler = fill(out, RNG.choice(FREE))
    r = cli("analyze", cell, "--plan", demo / "small_plan.yml")
    one_line_fault(r, 3, "disk full")
    no_process_left(cell)
    assert published(cell) == before
    assert not list((out / "results").glob(".tmp-*")) and not (out / "report.tmp").exists()
    last = read_runs(out)[-1]
    assert last["command"] == "analyze" and last["status"] == "failed" and "disk full" in last["message"]
    filler.unlink()
    next_run_succeeds(cell, "analyze", "--plan", demo / "small_plan.yml")


@pytest.mark.parametrize("cmd", ["refresh", "analyze", "freeze"])
def test_read_only_out(cell, demo, cmd):
    out = mount_small_tmpfs(cell)
    before = published(cell)
    runs_before = read_runs(out)
    subprocess.run(["mount", "-o", "remount,ro", str(out)], check=True)
    args = {"refresh": [], "analyze": ["--plan", demo / "small_plan.yml"], "freeze": ["paper"]}[cmd]
    try:
        r = cli(cmd, cell, *args)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(out)], check=True)
    # the run log is on the read-only file system too: the line says it could not be written
    one_line_fault(r, 3, "read-only file system", "run log not written")
    no_process_left(cell)
    assert published(cell) == before and read_runs(out) == runs_before
    next_run_succeeds(cell, cmd, *args)


# ---------------------------------------------------------------- corrupt state

def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])


def _drop_key(p: Path) -> None:
    m = json.loads(p.read_text())
    del m["input_hash"]
    p.write_text(json.dumps(m))


CORRUPTIONS = {
    "parquet_cut": ("patient.parquet", _truncate, "unreadable"),
    "parquet_missing": ("quarantine.parquet", Path.unlink, "missing or unreadable"),
    "manifest_missing_key": ("manifest.json", _drop_key, "lacks or has a wrong input_hash"),
    "manifest_not_json": ("manifest.json", lambda p: p.write_bytes(b"{\x00 not json"), "not valid JSON"),
    "manifest_missing": ("manifest.json", Path.unlink, "is missing"),
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_corrupt_site_cache_is_rebuilt_from_the_export(cell, kind):
    name, damage, said = CORRUPTIONS[kind]
    site = RNG.choice(SITES)
    before = published(cell)
    damage(cell / "out" / "sites" / site / name)
    r = cli("refresh", cell)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    warned = [e["message"] for e in events(r.stderr) if e["event"] == "warning"]
    assert any(site in m and said in m and "rebuilding this site from its export" in m for m in warned), warned
    assert any(e.get("site") == site and not e["reused"] for e in events(r.stderr) if e["event"] == "site")
    assert published(cell) == before            # the same inputs: the rebuilt site changes nothing
    assert read_runs(cell / "out")[-1]["status"] == "no_changes"
    no_process_left(cell)
    r = next_run_succeeds(cell)
    assert not [e for e in events(r.stderr) if e["event"] == "warning"]


def test_corrupt_run_log_lines_are_skipped_and_said(cell):
    out = cell / "out"
    good = read_runs(out)
    with (out / "run_log.jsonl").open("ab") as fh:
        fh.write(b"\xff\xfe\x80 latin-1 junk\n" + b"null\n" + b"[1,2]\n")
    r = cli("runs", cell)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert any("skipped 3 unreadable line(s)" in e["message"] for e in events(r.stderr))
    touch_mapping(cell, RNG.choice(SITES))            # a rebuilding refresh reads the log into etl_run
    r = next_run_succeeds(cell)
    assert any("skipped 3 unreadable line(s)" in e["message"] for e in events(r.stderr) if e["event"] == "warning")
    con = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
    ids = {x[0] for x in con.execute("SELECT run_id FROM etl_run").fetchall()}
    con.close()
    assert {g["run_id"] for g in good if g.get("command", "refresh") == "refresh"} <= ids


def test_corrupt_lock_record_and_digest_cache_are_not_fatal(cell):
    out = cell / "out"
    (out / ".refresh.lock").write_bytes(b"[1,2]\xff")
    (out / "sites" / ".digests.json").write_text("[1, 2]")
    next_run_succeeds(cell)


# ---------------------------------------------------------------- analysts and analyze beside refresh

def test_read_only_analyst_connection_through_carpool_demo(cell):
    """An analyst holds a read-only connection open (querying in a loop) while `carpool demo`
    rebuilds and republishes: their queries never fail and demo is never blocked."""
    touch_mapping(cell, RNG.choice(SITES))
    con = duckdb.connect(str(cell / "out" / "warehouse.duckdb"), read_only=True)
    errors, queries, done = [], [0], threading.Event()

    def analyst():
        while not done.is_set():
            try:
                con.execute("SELECT count(*) FROM analysis_patient").fetchone()
                con.execute("SELECT count(*) FROM analysis_result").fetchone()
                queries[0] += 1
            except duckdb.Error as exc:   # pragma: no cover - the failure this test exists for
                errors.append(str(exc))

    t = threading.Thread(target=analyst)
    t.start()
    try:
        r = cli("demo", cell)
    finally:
        done.set()
        t.join()
        con.close()
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert errors == [] and queries[0] > 0
    run, results = published(cell)
    con = duckdb.connect(str(cell / "out" / "warehouse.duckdb"), read_only=True)
    tagged = {x[0] for x in con.execute("SELECT DISTINCT run_id FROM analysis_result").fetchall()}
    con.close()
    assert tagged == {run} and results.startswith(run)


def test_analyze_during_a_refresh_never_tags_old_results_into_the_new_warehouse(cell, demo, monkeypatch):
    """analyze reads run X; a refresh publishes run Y before analyze finishes: the results stay
    with X (its own `results` link), Y's `analysis_result` stays empty, analyze says so (exit 2)."""
    from etl import analyze as analyze_mod

    cfg = load_config(cell / "carpool.yml")
    x = publish.current(cfg.out).name
    touch_mapping(cell, RNG.choice(SITES))
    real = analyze_mod.analyze_frame

    def refresh_meanwhile(*a, **kw):
        r = cli("refresh", cell)
        assert r.returncode == 0, r.stderr
        return real(*a, **kw)

    monkeypatch.setattr(analyze_mod, "analyze_frame", refresh_meanwhile)
    with pytest.raises(StaleResultError, match=f"analyzed warehouse run {x}, but run .* was published") as err:
        analyze_mod.analyze_warehouse(cfg, demo / "small_plan.yml", None, lambda *a, **k: None)
    assert err.value.exit_code == 2
    y = publish.current(cfg.out).name
    assert y != x
    con = duckdb.connect(str(cfg.out / "warehouse.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM analysis_result").fetchone()[0] == 0
    con.close()
    con = duckdb.connect(str(cfg.out / "runs" / x / "warehouse.duckdb"), read_only=True)
    assert {r[0] for r in con.execute("SELECT DISTINCT run_id FROM analysis_result").fetchall()} == {x}
    con.close()
    assert "has not been analyzed yet" in (cfg.out / "report" / "index.html").read_text()
    published(cell)


# ---------------------------------------------------------------- carpool verify

def test_verify_names_a_changed_published_file_and_a_changed_snapshot(cell):
    r = cli("verify", cell)
    assert r.returncode == 0 and "files match manifest.json" in r.stderr, r.stderr
    victim = next((publish.current(cell / "out") / "parquet" / "patient").rglob("*.parquet"))
    good = victim.read_bytes()
    victim.write_bytes(good + b"\0")
    r = cli("verify", cell)
    msg = one_line_fault(r, 1, "does not match its manifest", f"{victim.name}: content changed")
    assert "refresh --full" in msg
    # the rows live only in the Parquet (write once): a damaged file cannot be frozen, and says so
    r = cli("freeze", cell, "paper")
    assert r.returncode != 0 and "Traceback" not in r.stderr and victim.name in r.stderr, r.stderr[-2000:]
    victim.write_bytes(good)
    assert cli("freeze", cell, "paper").returncode == 0
    snap = cell / "out" / "snapshots" / "paper" / "parquet" / "etl_run.parquet"
    assert cli("verify", cell, "paper").returncode == 0
    snap.chmod(0o644)
    snap.write_bytes(b"changed")
    one_line_fault(cli("verify", cell, "paper"), 1, "etl_run.parquet: content changed")
    one_line_fault(cli("verify", cell, "nope"), 2, "no snapshot 'nope'")
