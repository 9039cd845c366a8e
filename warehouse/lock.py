"""Single writer: one refresh at a time per output directory.

The lock is an `fcntl.flock` on `out/.refresh.lock`, so the kernel releases it when the
holder dies (even by SIGKILL): a lock left by a dead process is never "held". The file
records the holder's pid and start time for the message a second refresh prints, and
a leftover record from a dead process is reported as stale and overwritten.
"""
from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from etl.errors import LockError


@contextmanager
def refresh_lock(out: Path, on_stale=None):
    out.mkdir(parents=True, exist_ok=True)
    path = out / ".refresh.lock"
    fh = path.open("a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()                       # not ours: leave the holder's record as it is
        holder = _holder(path)
        raise LockError(f"another refresh is running on {out} (pid {holder.get('pid', '?')}, "
                        f"started {holder.get('started', '?')}); try again when it has finished") from None
    try:
        previous = _holder(path)
        if previous.get("pid") and not _alive(previous["pid"]) and on_stale:
            on_stale(f"cleared a stale lock left by pid {previous['pid']} (started {previous.get('started', '?')})")
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "started": datetime.now(UTC).isoformat(timespec="seconds")}))
        fh.flush()
        yield
    finally:
        try:
            fh.seek(0)
            fh.truncate()
            fh.flush()
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()


def _holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


def _alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
