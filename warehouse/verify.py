"""`carpool verify`: check the published warehouse and its results against their manifests.

The current run (`out/current`) is checked file by file against `runs/<id>/manifest.json`
(written before it was published), and its result set, if `carpool analyze` has run,
against its `result.json`. A frozen snapshot is checked by `warehouse.snapshot.verify`.
Every damaged file is named; nothing is repaired (`carpool refresh --full` rebuilds).
"""
from __future__ import annotations

from pathlib import Path

import duckdb

from etl.errors import IntegrityError, UsageError
from warehouse import publish, results


def verify_current(out: Path) -> list[str]:
    """Lines describing what was checked; IntegrityError naming every problem otherwise."""
    run_dir = publish.current(out)
    if run_dir is None:
        raise UsageError(f"no published warehouse under {out}: run `carpool refresh` first")
    problems = [f"run {run_dir.name}: {p}" for p in publish.verify_run(run_dir)]
    n_files = len(list(publish.run_files(run_dir)))
    said = [f"warehouse run {run_dir.name}: {n_files} files match manifest.json"]
    link = run_dir / "results"
    target = link.resolve()
    if link.is_symlink() and target.name != results.NONE:
        problems += [f"results {target.name}: {p}" for p in results.verify_set(target)]
        said.append(f"results {target.name}: match result.json")
    else:
        said.append("results: not analyzed yet")
    if not problems:
        try:
            con = duckdb.connect(str(run_dir / "warehouse.duckdb"), read_only=True)
            try:
                n = con.execute("SELECT count(*) FROM analysis_patient").fetchone()[0]
                con.execute("SELECT count(*) FROM analysis_result").fetchone()
            finally:
                con.close()
        except duckdb.Error as exc:
            problems.append(f"run {run_dir.name}: warehouse.duckdb does not open: {' '.join(str(exc).split())}")
        else:
            said.append(f"warehouse opens read-only: {n} patients in analysis_patient")
    if problems:
        raise IntegrityError(f"the published warehouse under {out} does not match its manifest: "
                             + "; ".join(problems) + " (rebuild with `carpool refresh --full`)")
    return said
