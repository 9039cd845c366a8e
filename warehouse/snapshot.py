"""Data freezes: `carpool freeze NAME` keeps an immutable copy of the published warehouse.

A snapshot is `out/snapshots/NAME/`:
  parquet/<table>.parquet   every warehouse table, in its stored row order
  views/<view>.sql          the view definitions (warehouse/views/) at freeze time
  manifest.json             name, frozen_at, run_id, code versions, config hash and the
                            config (without the key section), and the sha256 of every file
Files are made read-only (0444, folders 0555), the snapshot is built in a hidden folder and
renamed into place, and an existing name is never overwritten. `snapshot_connection()`
verifies every hash, then serves the snapshot through a read-only DuckDB database that
cannot touch any file, so `carpool analyze --snapshot NAME` reruns on exactly the frozen
data, bit for bit. The freeze time comes in as an argument; nothing here reads the clock.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from etl.compile.sqlcompile import ident
from etl.config import Config
from etl.errors import IntegrityError, UsageError
from etl.version import code_version
from warehouse import publish
from warehouse.build import VIEWS_DIR, create_views
from warehouse.durable import fsync_dir, sha256_file, sql_path
from warehouse.lock import refresh_lock
from warehouse.sandbox import open_readonly

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MANIFEST = "manifest.json"


def snapshot_dir(cfg: Config, name: str) -> Path:
    if not NAME.match(name or ""):
        raise UsageError(f"snapshot name {name!r} must match {NAME.pattern} "
                         "(letters, digits, '_', '-', '.'; e.g. paper-2024-submission)")
    return cfg.out / "snapshots" / name


def freeze(cfg: Config, name: str, now: datetime, on_stale=None) -> Path:
    """Freeze the published warehouse as snapshot NAME; return its folder. A stale lock left by
    a killed run is reported through `on_stale` and logged in the run log, never cleared silently."""
    final = snapshot_dir(cfg, name)
    # no refresh may publish or prune while we copy
    with refresh_lock(cfg.out, on_stale=on_stale, command="freeze", run_id=f"freeze-{name}"):
        if final.exists() or final.is_symlink():
            raise UsageError(f"snapshot {name!r} already exists at {final}; snapshots are immutable, "
                             "choose another name")
        live = publish.current(cfg.out)
        if live is None or not (live / "warehouse.duckdb").exists():
            raise UsageError(f"no published warehouse under {cfg.out}: run `carpool refresh --config {cfg.path}` first")
        for left in final.parent.glob(".*.tmp*"):   # a killed freeze's half copy: never visible, discard
            _discard(left)
        tmp = final.with_name(f".{name}.tmp{os.getpid()}")
        try:
            _copy(cfg, live, tmp, name, now)
            os.rename(tmp, final)             # same folder: atomic; the name appears complete or not at all
        except duckdb.Error as exc:           # a damaged published file: the rows live only in the Parquet
            _discard(tmp)
            text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            raise IntegrityError(f"cannot freeze the published warehouse: {text[:400]}; "
                                 f"`carpool verify` names the damaged file, `carpool refresh --full` rebuilds it"
                                 ) from None
        except BaseException:
            _discard(tmp)
            raise
        final.chmod(0o555)
        fsync_dir(final.parent)
    return final


def manifest(cfg: Config, name: str) -> dict:
    path = snapshot_dir(cfg, name) / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        folder = cfg.out / "snapshots"
        known = sorted(p.name for p in folder.glob("[!.]*")) if folder.is_dir() else []
        raise UsageError(f"no snapshot {name!r} under {cfg.out / 'snapshots'}"
                         f" (known: {', '.join(known) or 'none'}); make one with `carpool freeze {name}`") from None
    except ValueError as exc:
        raise IntegrityError(f"{path}: manifest is not valid JSON ({exc}); the snapshot is damaged") from None


def verify(cfg: Config, name: str) -> dict:
    """Check every file against the manifest (and that nothing was added); return the manifest."""
    m = manifest(cfg, name)
    root = snapshot_dir(cfg, name)
    if not isinstance(m, dict) or not isinstance(m.get("files"), dict) or not isinstance(m.get("tables"), list):
        raise IntegrityError(f"{root / MANIFEST}: not a carpool snapshot manifest (no files/tables); the snapshot "
                         "is damaged")
    problems = []
    for rel, digest in sorted(m["files"].items()):
        p = root / rel
        if not p.is_file():
            problems.append(f"{rel}: missing")
        elif sha256_file(p) != digest:
            problems.append(f"{rel}: content changed (sha256 differs from the manifest)")
    extra = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                   if p.is_file() and p.name != MANIFEST and p.relative_to(root).as_posix() not in m["files"])
    problems += [f"{rel}: not in the manifest" for rel in extra]
    if problems:
        raise IntegrityError(f"snapshot {name!r} at {root} does not match its manifest: " + "; ".join(problems))
    return m


def snapshot_connection(cfg: Config, name: str) -> duckdb.DuckDBPyConnection:
    """A read-only DuckDB connection over the verified snapshot: its tables plus its views.

    The tables are loaded from the snapshot's Parquet into a private temporary database
    (deleted at once; the connection keeps it open), the frozen views are created on top,
    and the database is reopened read-only with file access disabled: queries can read
    the frozen data and nothing else, and can change nothing.
    """
    m = verify(cfg, name)
    root = snapshot_dir(cfg, name)
    folder = tempfile.mkdtemp(prefix="carpool-snapshot-")
    path = Path(folder) / f"{name}.duckdb"
    try:
        con = duckdb.connect(str(path))
        try:
            for table in m["tables"]:
                src = root / "parquet" / f"{table}.parquet"
                con.execute(f"CREATE TABLE {ident(table)} AS SELECT * FROM read_parquet('{sql_path(src)}')")
            create_views(con, root / "views")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        return open_readonly(path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _copy(cfg: Config, live: Path, tmp: Path, name: str, now: datetime) -> None:
    """Every table as Parquet, the views and the manifest into tmp, made read-only."""
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "parquet").mkdir(parents=True)
    (tmp / "views").mkdir()
    con = duckdb.connect(str(live / "warehouse.duckdb"), read_only=True)
    try:
        # every stored table (analyze's results included): a folder under parquet/
        tables = sorted(d.name for d in (live / "parquet").iterdir() if d.is_dir())
        for table in tables:
            target = tmp / "parquet" / f"{table}.parquet"
            # Identifiers come from the warehouse catalog, the path from our own folder.
            con.execute(f"COPY (SELECT * FROM {ident(table)}) TO '{sql_path(target)}' (FORMAT PARQUET)")
        settings = dict(con.execute("SELECT key, value FROM study_config").fetchall())
        run = con.execute("SELECT code_version, config_hash FROM etl_run WHERE run_id = ?",
                          [settings.get("run_id")]).fetchone()
    finally:
        con.close()
    for sql in sorted(VIEWS_DIR.glob("*.sql")):
        shutil.copyfile(sql, tmp / "views" / sql.name)
    manifest = {
        "name": name, "frozen_at": now.astimezone(UTC).isoformat(), "run_id": settings.get("run_id"),
        "run_code_version": run[0] if run else None, "run_config_hash": run[1] if run else None,
        "freeze_code_version": code_version(), "config_hash": cfg.config_hash(),
        "config": cfg.model_dump(mode="json", exclude={"pseudonym_key"}),
        "study_config": settings, "tables": tables,
        "files": {p.relative_to(tmp).as_posix(): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()},
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    _make_read_only(tmp)


def _discard(tmp: Path) -> None:
    if not tmp.exists():
        return
    for p in [tmp, *tmp.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)
    shutil.rmtree(tmp, ignore_errors=True)


def _make_read_only(root: Path) -> None:
    """Files 0444 and subfolders 0555 (the top folder is locked after its rename), all fsynced."""
    for p in sorted(root.rglob("*"), key=lambda q: len(q.parts), reverse=True):
        if p.is_file():
            with p.open("rb") as fh:
                os.fsync(fh.fileno())
            p.chmod(0o444)
        else:
            fsync_dir(p)
            p.chmod(0o555)
    fsync_dir(root)
