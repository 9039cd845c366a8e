"""The run log: one JSON line per refresh (including failed and no-change runs).

`out/run_log.jsonl` survives failed runs, which never publish a warehouse; the
warehouse's `etl_run` table is rebuilt from it at every publish.
"""
from __future__ import annotations

import json
import os
from pathlib import Path


def append_run(out: Path, record: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True, default=str) + "\n"
    path = out / "run_log.jsonl"
    if path.exists() and path.stat().st_size and not _ends_with_newline(path):
        line = "\n" + line  # a line torn by a crash stays alone; this record is kept whole
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def read_runs(out: Path) -> list[dict]:
    path = out / "run_log.jsonl"
    if not path.exists():
        return []
    runs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            runs.append(json.loads(line))
        except ValueError:
            continue  # a line cut by a crash mid-write: skip it, keep the rest
    return runs


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"
