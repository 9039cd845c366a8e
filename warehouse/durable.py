"""Files that must be right after a crash: content hashes, directory fsync, SQL-safe paths.

Shared by the site runner (file hashes in `etl_file`), the site cache, atomic publish and
frozen snapshots, so each of them hashes and syncs the same way.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's content, read in 1 MiB chunks (exports can be gigabytes)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename, a new file) survive a power loss."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sql_path(path: Path) -> str:
    """A filesystem path as the body of a SQL string literal (COPY / read_parquet take no parameters)."""
    return str(path).replace("'", "''")


FAULT_POINT_ENV = "CARPOOL_FAULT_POINT"


def fault_point(name: str) -> None:
    """Fault injection for tests/functional/test_fault_matrix.py: when $CARPOOL_FAULT_POINT
    names this point, say so on stderr and wait there, so a test's `kill -9` lands exactly
    in this phase (during publish, during the docs, during analyze). A no-op otherwise."""
    if os.environ.get(FAULT_POINT_ENV) == name:
        import sys
        import time

        print(f'{{"event": "fault_point", "message": "fault point {name}"}}', file=sys.stderr, flush=True)
        time.sleep(600)
