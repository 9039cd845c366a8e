"""Command bodies behind the CLI: each takes plain arguments and returns plain results.

The CLI in `etl.cli` only parses arguments and prints; everything testable lives here or
below. The clock is read here (the run time), never inside a computation.
"""
from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from etl.config import load_config, pseudonym_key
from etl.errors import UsageError
from etl.pipeline import RefreshOutcome, refresh
from etl.runlog import read_runs
from etl.validation_report import write_validation_report


def do_refresh(config: Path, only: list[str] | None, full: bool, log) -> RefreshOutcome:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    cfg = load_config(config)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  transient=True, disable=not _tty()) as bar:
        task = bar.add_task("refresh", total=None)
        outcome = refresh(cfg, datetime.now(UTC), only=only, full=full,
                          progress=lambda m: (bar.update(task, description=m), log("progress", m)),
                          warn=lambda m: log("warning", f"[yellow]warning:[/yellow] {m}"))
    for s in outcome.sites:
        if not s.reused:
            _gx(cfg, s)
    for s in outcome.sites:
        log("site", f"{s.site_id}: {s.patients_loaded} patients loaded, {s.patients_quarantined} quarantined, "
                    f"{s.warnings} warnings{' (reused)' if s.reused else ''}", site=s.site_id, **s.counts())
    for site, msg in outcome.failures.items():
        log("error", f"[red]{site}: {msg}[/red]", site=site)
    style = {"ok": "green", "no_changes": "green", "data_errors": "yellow", "failed": "red"}[outcome.status]
    text = outcome.message or outcome.status
    log("run", f"[{style}]run {outcome.run_id}: {text}[/{style}]", run_id=outcome.run_id, status=outcome.status)
    return outcome


def _gx(cfg, site_output) -> None:
    """Dataset expectations (Great Expectations, on pandas batches) + Data Docs per site."""
    from schemas.gx_docs import validate_site

    docs = cfg.out / "validation" / site_output.site_id / "gx"
    shutil.rmtree(docs, ignore_errors=True)
    tables = {n: f.rename(columns={"study_id": "local_id"}) for n, f in site_output.tables.items()}
    validate_site(site_output.site_id, tables, docs)


def do_validate(config: Path, site_id: str, log) -> int:
    from etl.site import run_site

    cfg = load_config(config)
    site = cfg.site(site_id)
    key, _ = pseudonym_key(cfg)
    result = run_site(cfg, site, key)
    out_dir = cfg.out / "validation" / site_id
    report = write_validation_report(out_dir, result, config)
    from etl.sitecache import SiteOutput

    _gx(cfg, SiteOutput(site_id, "", result.tables, result.quarantine, result.files,
                        result.patients_read, result.patients_quarantined, result.warnings))
    log("validate", f"{site_id}: {result.patients_read} patients read, "
                    f"{result.patients_read - result.patients_quarantined} would load, "
                    f"{result.patients_quarantined} would be quarantined, {result.warnings} warnings")
    errors = result.quarantine[result.quarantine["severity"] == "error"]
    for (rule, n) in errors["rule_id"].value_counts().head(8).items():
        example = errors[errors["rule_id"] == rule].iloc[0]
        log("problem", f"  {rule} x{n}: {example['source_file']} row {example['source_row']}"
                       f"{' column ' + example['column_name'] if example['column_name'] else ''}: {example['message']}")
    log("validate", f"report: {report}\nrerun: carpool validate --site {site_id} --config {config}")
    return 1 if result.quarantined_pct > cfg.quality.max_quarantined_pct else 0


def warehouse_path(cfg) -> Path:
    path = cfg.out / "warehouse.duckdb"
    if not path.exists():
        raise UsageError(f"no warehouse at {path}: run `carpool refresh --config {cfg.path}` first")
    return path


def do_sql(config: Path, query: str) -> pd.DataFrame:
    cfg = load_config(config)
    con = duckdb.connect(str(warehouse_path(cfg)), read_only=True)
    try:
        return con.execute(query).fetchdf()
    except duckdb.Error as exc:
        raise UsageError(f"SQL error: {exc}") from None
    finally:
        con.close()


def do_runs(config: Path, limit: int) -> list[dict]:
    cfg = load_config(config)
    return list(reversed(read_runs(cfg.out)))[:limit]


def do_analyze(config: Path, plan: Path | None, snapshot: str | None, log) -> Path:
    from etl.analyze import analyze_warehouse

    cfg = load_config(config)
    return analyze_warehouse(cfg, plan, snapshot, log)


def do_twin(out: Path | None, seed: int | None, log) -> None:
    from sites.twin.generate import generate

    paths = generate(out, seed)
    log("twin", f"wrote {len(paths)} files (synthetic patients, not real)")


def _tty() -> bool:
    import sys

    return sys.stderr.isatty()
