"""Atomic publish: readers see the previous warehouse or the new one, never a mix.

Each refresh builds into `out/runs/<run_id>/` (warehouse.duckdb + parquet/). Publishing
is one `rename(2)` of a symlink: `out/current -> runs/<run_id>`. The stable paths people
use, `out/warehouse.duckdb` and `out/parquet`, are symlinks through `current`. A refresh
that fails or is killed before the rename leaves `current` untouched; its half-built run
directory is removed by the next refresh. Older runs beyond `KEEP` are pruned.
Before the switch, `manifest.json` records the sha256 of every file of the run, for
`carpool verify`; the run's `results` link (switched by `carpool analyze`) is not part of it.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from warehouse import results
from warehouse.durable import fsync_dir, sha256_file

KEEP = 3
MANIFEST = "manifest.json"


def staging_dir(out: Path, run_id: str) -> Path:
    d = out / "runs" / run_id
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def current(out: Path) -> Path | None:
    link = out / "current"
    return link.resolve() if link.is_symlink() and link.resolve().exists() else None


def publish(out: Path, run_dir: Path) -> None:
    """Point out/current at run_dir atomically; make sure the stable links exist."""
    tmp = out / f".current.{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(run_dir.relative_to(out))
    fsync_dir(run_dir)
    os.replace(tmp, out / "current")
    fsync_dir(out)
    for name in ("warehouse.duckdb", "parquet"):
        link = out / name
        if not link.is_symlink():
            if link.exists():
                shutil.rmtree(link) if link.is_dir() else link.unlink()
            link.symlink_to(Path("current") / name)


def prune(out: Path, keep: int = KEEP) -> None:
    """Remove unpublished leftovers (killed runs) and all but the newest `keep` runs."""
    for leftover in list(out.glob(".current.*")) + list((out / "sites").glob(".*.tmp*")) \
            + list((out / "sites").glob(".*.old*")):
        # left by a refresh killed between writing and renaming: never published, never read
        if leftover.is_symlink() or leftover.is_file():
            leftover.unlink()
        else:
            shutil.rmtree(leftover, ignore_errors=True)
    runs = out / "runs"
    if not runs.is_dir():
        results.prune(out)
        return
    live = current(out)
    dirs = sorted((d for d in runs.iterdir() if d.is_dir()), key=lambda d: d.name)
    published = [d for d in dirs if (d / ".published").exists()]
    for d in dirs:
        if d == live:
            continue
        if live and d.name > live.name:   # built (even marked) but never switched in: a killed publish
            shutil.rmtree(d, ignore_errors=True)
        elif d not in published or d not in published[-keep:]:
            shutil.rmtree(d, ignore_errors=True)
    results.prune(out)


def mark_published(run_dir: Path) -> None:
    """Hash every file of the built run into manifest.json, then mark it complete."""
    files = {p.relative_to(run_dir).as_posix(): sha256_file(p) for p in sorted(run_files(run_dir))}
    (run_dir / MANIFEST).write_text(json.dumps({"run_id": run_dir.name, "files": files}, indent=2) + "\n")
    (run_dir / ".published").write_text("ok\n")


def verify_run(run_dir: Path) -> list[str]:
    """Problems of a published run against its manifest.json (missing, changed or extra files)."""
    try:
        files = json.loads((run_dir / MANIFEST).read_text())["files"]
    except FileNotFoundError:
        return [f"{run_dir / MANIFEST}: missing (run published before manifests existed; refresh --full)"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{run_dir / MANIFEST}: unreadable ({exc})"]
    problems = [f"{rel}: missing" if not (run_dir / rel).is_file() else f"{rel}: content changed"
                for rel, digest in sorted(files.items())
                if not (run_dir / rel).is_file() or sha256_file(run_dir / rel) != digest]
    return problems + [f"{p.relative_to(run_dir).as_posix()}: not in {MANIFEST}"
                       for p in sorted(run_files(run_dir)) if p.relative_to(run_dir).as_posix() not in files]


def run_files(run_dir: Path):
    for p in run_dir.rglob("*"):
        rel = p.relative_to(run_dir)
        if p.is_file() and not p.is_symlink() and rel.parts[0] != "results" \
                and rel.as_posix() not in (MANIFEST, ".published"):
            yield p
