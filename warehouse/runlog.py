"""The run log: one JSON line per run of a writing command (refresh, analyze, freeze),
including failed, interrupted and no-change runs.

`out/run_log.jsonl` survives failed runs, which never publish a warehouse; the
warehouse's `etl_run` table is rebuilt from its refresh lines at every publish. A line
that is not a run record (cut by a crash, not UTF-8, `null`, `[1,2]`, a record without
`run_id`/`status`/`started_at`) is skipped and reported, never fatal.

Space for the next line is reserved past the end of the file (`fallocate` with
KEEP_SIZE, where the file system supports it), so a run that fails because the disk is
full can still record why.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import json
import os
from collections.abc import Callable
from pathlib import Path

NAME = "run_log.jsonl"
REQUIRED = ("run_id", "status", "started_at")
RESERVE = 64 * 1024
_FALLOC_FL_KEEP_SIZE = 1


def append_run(out: Path, record: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True, default=str) + "\n"
    path = out / NAME
    if path.exists() and path.stat().st_size and not _ends_with_newline(path):
        line = "\n" + line  # a line torn by a crash stays alone; this record is kept whole
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())
        _reserve(fh.fileno(), fh.tell())


def try_append_run(out: Path, record: dict) -> str | None:
    """append_run, for a run that is already failing: None, or why the line could not be written."""
    try:
        append_run(out, record)
    except OSError as exc:
        return f"run log not written ({out / NAME}: {exc.strerror or exc})"
    return None


def read_runs(out: Path, on_skip: Callable[[str], None] | None = None) -> list[dict]:
    """Every run record in order; each unusable line is skipped and reported through `on_skip`."""
    path = out / NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    runs, skipped = [], []
    for n, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            skipped.append(f"line {n}: not UTF-8")
            continue
        except ValueError:
            skipped.append(f"line {n}: not JSON (cut by a crash?)")
            continue
        if not isinstance(rec, dict) or not all(isinstance(rec.get(k), str) for k in REQUIRED):
            skipped.append(f"line {n}: not a run record ({raw[:40].decode('utf-8', 'replace')})")
            continue
        runs.append(rec)
    if skipped and on_skip:
        on_skip(f"{path}: skipped {len(skipped)} unreadable line(s), kept {len(runs)} run(s): "
                + "; ".join(skipped[:5]) + ("; ..." if len(skipped) > 5 else ""))
    return runs


def refresh_runs(runs: list[dict]) -> list[dict]:
    """The refresh runs (lines from before `command` existed are refreshes): the `etl_run` table."""
    return [r for r in runs if r.get("command", "refresh") == "refresh"]


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def _reserve(fd: int, end: int) -> None:
    """Best effort: keep RESERVE bytes allocated past `end` without changing the file size."""
    try:
        _libc().fallocate(ctypes.c_int(fd), ctypes.c_int(_FALLOC_FL_KEEP_SIZE),
                       ctypes.c_longlong(end), ctypes.c_longlong(RESERVE))
    except (OSError, AttributeError):
        pass  # not Linux/glibc: no reserve, a disk-full failure may then go unrecorded


@functools.cache
def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
