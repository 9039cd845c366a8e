"""Single writer: one refresh (or freeze) at a time per output directory.

The lock is an `fcntl.flock` on `out/.refresh.lock`, so the kernel releases it when the
holder dies (even by SIGKILL): a lock left by a dead process is never "held". The file
records the holder's command, run id, pid, start time and current phase, for the message
a second run prints. A clean exit blanks the record, so a record found by the next
holder was left by a run that died: that takeover is printed and logged in the run log
as an `interrupted` run, naming the run and the phase it was in.

The record is written in place at a fixed size, so updating it never needs new disk
space (a full disk must not turn a phase change into a crash).
"""
from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from etl.errors import LockError, storage_error
from warehouse.durable import fault_point
from warehouse.runlog import try_append_run

NAME = ".refresh.lock"
SIZE = 1024


class Holder:
    """The running holder's record; `phase()` says what it is doing now."""

    def __init__(self, fd: int, record: dict):
        self.fd, self.record = fd, record

    def phase(self, name: str) -> None:
        self.record["phase"] = name
        _write(self.fd, self.record)
        fault_point(f"{self.record['command']}: {name}")


@contextmanager
def refresh_lock(out: Path, on_stale=None, command: str = "refresh", run_id: str = ""):
    path = out / NAME
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise storage_error(exc, f"taking the lock {path}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)                     # not ours: leave the holder's record as it is
        holder = _holder(path)
        run = f"run {holder['run_id']}, " if holder.get("run_id") else ""
        raise LockError(f"another {holder.get('command', 'refresh')} is running on {out} ({run}pid "
                        f"{holder.get('pid', '?')}, started {holder.get('started', '?')}, phase "
                        f"{holder.get('phase', '?')}); try again when it has finished") from None
    try:
        previous = _holder(path)
        record = {"command": command, "run_id": run_id, "pid": os.getpid(),
                  "started": datetime.now(UTC).isoformat(timespec="seconds"), "phase": "starting"}
        try:
            _write(fd, record)
        except OSError as exc:
            raise storage_error(exc, f"writing the lock record {path}") from None
        if previous.get("pid"):
            _interrupted(out, previous, record, on_stale)
        yield Holder(fd, record)
    finally:
        try:
            _write(fd, {})
        except OSError:
            pass                         # the kernel still drops the lock; the next run calls it stale
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _interrupted(out: Path, previous: dict, now: dict, on_stale) -> None:
    """A record left behind: its run died. Say so and log it as an interrupted run."""
    cmd, rid = previous.get("command", "refresh"), previous.get("run_id") or f"pid-{previous['pid']}"
    phase = previous.get("phase", "?")
    message = (f"{cmd} run {rid} (pid {previous['pid']}, started {previous.get('started', '?')}) was killed or "
               f"crashed during {phase}; its unfinished work was discarded by {now['command']} "
               f"{now['run_id'] or 'pid ' + str(now['pid'])}")
    problem = try_append_run(out, {
        "command": cmd, "run_id": rid, "status": "interrupted", "started_at": str(previous.get("started", "")),
        "finished_at": None, "phase": phase, "sites": {}, "message": message})
    if on_stale:
        on_stale(f"cleared a stale lock: {message}" + (f"; {problem}" if problem else ""))


def _write(fd: int, record: dict) -> None:
    data = json.dumps(record).encode()
    os.pwrite(fd, data.ljust(SIZE - 1)[:SIZE - 1] + b"\n", 0)


def _holder(path: Path) -> dict:
    try:
        rec = json.loads(path.read_text(encoding="utf-8", errors="replace").strip() or "{}")
    except (OSError, ValueError):
        return {}
    return rec if isinstance(rec, dict) else {}
