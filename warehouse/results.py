"""Analysis results, published like the warehouse: staged whole, switched in with one rename.

`carpool analyze` never writes the published DuckDB file (an analyst's read-only
connection would block it, and it would block them). A *result set* is a folder
`out/results/<run_id>.<analyzed-at>/`:
  analysis_result.parquet   the results table, every row tagged with the run id it read
  report/                   index.html, audit.html, statistics.csv, figures/
  result.json               run id, snapshot, plan, analysis time and the sha256 of every file
It is written under a hidden name (`.tmp-<pid>-<set>`) and renamed into place whole, then
attached to the warehouse run it was computed from by one atomic symlink switch,
`out/runs/<run_id>/results -> ../../results/<set>`. Each run's DuckDB file has a view
`analysis_result` over `parquet/analysis_result/data_0.parquet`, a relative link through
*its own run's* `results` link, and `out/report` is `current/results/report`,
so results are never mixed into another run's warehouse: a refresh that publishes while
analyze runs leaves those results with the run they describe. A fresh run starts with an
empty set (`runs/<id>/results.none/`) whose report says it has not been analyzed yet.
A frozen snapshot's analysis is attached as `out/results/snapshots/<name>`.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from warehouse import layout
from warehouse.durable import fsync_dir, sha256_file

COLUMNS: list[tuple[str, str, str]] = [
    ("run_id", "VARCHAR", "Warehouse run the results were computed from."),
    ("analysis", "VARCHAR", "table1, response, survival, followup, kinetics, cox, audit."),
    ("comparison", "VARCHAR", "Grouping compared."), ("endpoint", "VARCHAR", "Variable or endpoint."),
    ("term", "VARCHAR", "Cox term or group level."), ("statistic", "VARCHAR", "p_value, hr, median, ..."),
    ("value", "DOUBLE", "The number."), ("test", "VARCHAR", "Test or method that produced it."),
]
TABLE = "analysis_result.parquet"
META = "result.json"
NONE = "results.none"
NOT_ANALYZED = ("<!doctype html><meta charset='utf-8'><title>carpool: not analyzed yet</title>"
                "<p>Warehouse run {run_id} has not been analyzed yet: run <code>carpool analyze</code>.</p>\n")


def results_root(out: Path) -> Path:
    return out / "results"


def columns() -> list[tuple[str, str]]:
    """(column, SQL type) of `analysis_result`."""
    return [(c, t) for c, t, _ in COLUMNS]


def attach_empty(run_dir: Path) -> None:
    """At build time: the run's empty result set, its `results` link, and the table file
    `parquet/analysis_result/data_0.parquet`, a relative link through `results` (so the
    `analysis_result` view, relative to the database file like every other, reads whatever
    result set the run's `results` link points at, from the run's own file or through
    `out/warehouse.duckdb`, and wherever out/ is moved)."""
    empty = run_dir / NONE
    (empty / "report").mkdir(parents=True, exist_ok=True)
    layout.write_frame(None, columns(), empty / TABLE)
    (empty / "report" / "index.html").write_text(NOT_ANALYZED.format(run_id=run_dir.name), encoding="utf-8")
    _switch(run_dir / "results", Path(NONE))
    table = layout.table_file(run_dir / "parquet", "analysis_result")
    table.parent.mkdir(parents=True, exist_ok=True)
    table.symlink_to(Path("..") / ".." / "results" / TABLE)


def stage(out: Path, set_id: str) -> Path:
    """A fresh hidden folder for one result set (a killed analyze leaves it; `leftovers` finds it)."""
    tmp = results_root(out) / f".tmp-{os.getpid()}-{set_id}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "report" / "figures").mkdir(parents=True)
    return tmp


def seal(tmp: Path, meta: dict) -> Path:
    """Hash every file into result.json, fsync, and rename the staged set into place whole."""
    files = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
    (tmp / META).write_text(json.dumps({**meta, "files": files}, indent=2, sort_keys=True) + "\n")
    for p in tmp.rglob("*"):
        if p.is_file():
            with p.open("rb") as fh:
                os.fsync(fh.fileno())
    final = tmp.with_name(tmp.name.split("-", 2)[2])
    os.rename(tmp, final)
    fsync_dir(final.parent)
    return final


def attach(set_dir: Path, run_dir: Path) -> bool:
    """Point run_dir/results at set_dir atomically; False if that run is gone (pruned meanwhile)."""
    if not (run_dir / ".published").exists():
        return False
    _switch(run_dir / "results", Path("..") / ".." / "results" / set_dir.name)
    return True


def attach_snapshot(out: Path, set_dir: Path, name: str) -> Path:
    link = results_root(out) / "snapshots" / name
    link.parent.mkdir(parents=True, exist_ok=True)
    _switch(link, Path("..") / set_dir.name)
    return link


def verify_set(set_dir: Path) -> list[str]:
    """Problems of a result set against its result.json (missing, changed or extra files)."""
    try:
        files = json.loads((set_dir / META).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{set_dir / META}: unreadable ({exc})"]
    problems = [f"{rel}: missing" if not (set_dir / rel).is_file() else f"{rel}: content changed"
                for rel, digest in sorted(files.items())
                if not (set_dir / rel).is_file() or sha256_file(set_dir / rel) != digest]
    extra = sorted(p.relative_to(set_dir).as_posix() for p in set_dir.rglob("*") if p.is_file())
    return problems + [f"{rel}: not in {META}" for rel in extra if rel != META and rel not in files]


def leftovers(out: Path) -> list[str]:
    """Remove result sets staged by an analyze that died; return their set ids (to log them)."""
    found = []
    for tmp in sorted(results_root(out).glob(".tmp-*")):
        _, pid, set_id = tmp.name.split("-", 2)
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)
            found.append(set_id)
    return found


def prune(out: Path) -> None:
    """Remove result sets that no run or snapshot links to, except ones newer than the linked
    set of their run (an analyze may be between its rename and its switch)."""
    root = results_root(out)
    if not root.is_dir():
        return
    links = list((out / "runs").glob("*/results")) + list((root / "snapshots").glob("*"))
    linked = {link.resolve().name for link in links if link.is_symlink()}
    newest: dict[str, str] = {}
    for name in linked:
        key = name.rsplit(".", 1)[0]
        newest[key] = max(newest.get(key, ""), name)
    live_runs = {d.name for d in (out / "runs").iterdir()} if (out / "runs").is_dir() else set()
    for d in root.iterdir():
        if d.name.startswith(".") or d.name == "snapshots" or d.name in linked or not d.is_dir():
            continue
        key = d.name.rsplit(".", 1)[0]
        gone = not key.startswith("snapshot-") and key not in live_runs
        if gone or d.name < newest.get(key, ""):
            shutil.rmtree(d, ignore_errors=True)


def _switch(link: Path, target: Path) -> None:
    tmp = link.with_name(f".{link.name}.{os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(target)
    os.replace(tmp, link)
    fsync_dir(link.parent)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
