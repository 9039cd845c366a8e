"""Issue 10 item 3: `kill -9` of a refresh's *main process* leaves nothing behind.

A scheduler that kills a stuck task (Airflow's `execution_timeout`, a cron watchdog) sends
SIGKILL to the process it started, not to its process group. When the refresh ran sites
in a process pool, the pool's workers outlived such a kill, held the lock's file
descriptor and blocked every later refresh. The refresh now runs in one process (DuckDB
uses the cores), so this test kills only the main pid, at seeded random points, and then
checks: no process of the killed refresh's session is left; the last good warehouse
opens read-only with the same counts; the next refresh succeeds.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import yaml

from etl.config import KEY_ENV, load_config
from etl.pipeline import refresh

ROOT = Path(__file__).resolve().parents[2]
CARPOOL = str(Path(sys.executable).parent / "carpool")
TABLES = ["patient", "infusion", "toxicity", "toxicity_treatment", "response", "lab", "outcome",
          "quarantine", "etl_file", "analysis_patient"]
KILLS = 6
SEED = 20251121
STAGES = ["center_a: reading", "center_d: reading", "building the pooled warehouse"]


def _config(root: Path) -> Path:
    raw = yaml.safe_load((ROOT / "carpool.yml").read_text())
    raw["output_dir"] = str(root / "out")
    for s in raw["sites"]:
        s["mapping"] = str(ROOT / s["mapping"])
    path = root / "carpool.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return path


def _counts(out: Path) -> dict[str, int]:
    con = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        con.close()


def _session(sid: int) -> list[str]:
    """Processes whose session id is `sid` (the killed refresh was started as a session leader)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()    # after "pid (comm) "
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(f"pid {stat.parent.name} {text[text.index('(') + 1:text.rindex(')')]}")
    return found


def _refresh(cfg_path: Path, full: bool):
    warned: list[str] = []
    outcome = refresh(load_config(cfg_path), datetime.now(UTC), full=full, warn=warned.append)
    return outcome, warned


def _wait_for(proc: subprocess.Popen, wanted: str) -> None:
    for line in proc.stderr:
        if wanted in line:
            return


def test_sigkill_of_the_main_process_leaves_no_process_and_the_next_refresh_runs(tmp_path):
    cfg_path = _config(tmp_path)
    out = load_config(cfg_path).out
    first, _ = _refresh(cfg_path, full=True)
    assert first.status == "ok", first.message
    good = _counts(out)
    rng = random.Random(SEED)
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    killed = 0
    for i in range(KILLS):
        proc = subprocess.Popen([CARPOOL, "--log-json", "refresh", "--full", "--config", str(cfg_path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                                start_new_session=True)
        watchdog = threading.Timer(120, lambda p=proc: os.killpg(p.pid, signal.SIGKILL))
        watchdog.start()
        try:
            if i % 2 == 0:
                time.sleep(rng.uniform(0.5, 4.0))
            else:
                _wait_for(proc, rng.choice(STAGES))
                time.sleep(rng.uniform(0.0, 0.5))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)     # the main process only, as a scheduler does
                killed += 1
            proc.wait()
            time.sleep(0.2)                           # let the kernel reap what it will
            left = _session(proc.pid)
            record = (out / ".refresh.lock").read_text().strip() not in ("", "{}")  # it died holding the lock
        finally:
            watchdog.cancel()
            try:
                os.killpg(proc.pid, signal.SIGKILL)   # clean up whatever a failing run left
            except ProcessLookupError:
                pass
            proc.stderr.close()
        assert left == [], f"kill {i}: processes of the killed refresh still running: {left}"
        assert (out / "current").resolve().joinpath(".published").exists()
        assert _counts(out) == good, f"kill {i}: the published warehouse changed"
        outcome, warned = _refresh(cfg_path, full=(i % 2 == 1))
        assert outcome.status in ("ok", "no_changes"), f"kill {i}: next refresh: {outcome.message}"
        assert _counts(out) == good
        if record:  # the dead holder's lock was taken over, and said so in one line
            assert any("stale lock" in w for w in warned), f"kill {i}: takeover not reported: {warned}"
    assert killed >= KILLS - 1, f"only {killed} of {KILLS} refreshes were still running when killed"


def test_ctrl_c_stops_a_refresh_at_once_with_one_line_and_the_next_refresh_runs(tmp_path):
    """Ctrl-C (SIGINT) while sites are read in threads: the refresh does not wait for them.
    It ends with exit 130 and one line, holding the lock as a killed run would; nothing is
    left running, the published warehouse is unchanged, and the next refresh takes the lock
    over, records the run as interrupted and succeeds."""
    import json

    from warehouse.runlog import read_runs

    cfg_path = _config(tmp_path)
    out = load_config(cfg_path).out
    first, _ = _refresh(cfg_path, full=True)
    assert first.status == "ok", first.message
    good, current = _counts(out), (out / "current").resolve()
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    proc = subprocess.Popen([CARPOOL, "--log-json", "refresh", "--full", "--config", str(cfg_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        _wait_for(proc, "center_a: reading")
        os.kill(proc.pid, signal.SIGINT)
        rest = proc.stderr.read()
        code = proc.wait(timeout=120)                 # a guard against a hang, not a timing
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.stderr.close()
    assert code == 130, rest[-3000:]
    assert "Traceback" not in rest
    errors = [json.loads(line) for line in rest.splitlines() if '"event": "error"' in line]
    assert len(errors) == 1 and errors[0]["exit_code"] == 130 and "Ctrl-C" in errors[0]["message"], errors
    time.sleep(0.2)
    assert _session(proc.pid) == []
    assert (out / "current").resolve() == current and _counts(out) == good
    assert (out / ".refresh.lock").read_text().strip() not in ("", "{}")   # ended holding it, as a kill
    outcome, warned = _refresh(cfg_path, full=False)
    assert outcome.status in ("ok", "no_changes"), outcome.message
    assert any("stale lock" in w for w in warned), warned
    assert any(r.get("status") == "interrupted" for r in read_runs(out)), read_runs(out)[-3:]
    assert _counts(out) == good
