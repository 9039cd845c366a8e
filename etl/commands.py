"""Command bodies behind the CLI: each takes plain arguments and returns plain results.

The CLI in `etl.cli` only parses arguments and prints; everything testable lives here or
below. The clock is read here (the run time), never inside a computation.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from etl.config import DEMO_BANNER, load_config, pseudonym_key
from etl.errors import CarpoolError, UsageError, storage_error, storage_fault
from etl.outdir import claim
from etl.pipeline import RefreshOutcome, new_run_id, refresh
from etl.validate import datadocs
from etl.validate.datadocs import site_docs
from etl.validate.unmapped import unmapped_text
from warehouse.runlog import read_runs, try_append_run

# pandas and DuckDB are imported by the commands that use them: a no-change refresh and
# `carpool --help` load neither (docs/performance.md)
if TYPE_CHECKING:
    import duckdb
    import pandas as pd


@contextmanager
def recorded(cfg, command: str, now: datetime, doing: str):
    """A writing command other than refresh: its outcome goes to the run log; a storage
    fault (disk full, read-only, I/O error) becomes one StorageError line, exit 3."""
    record = {"command": command, "run_id": f"{command}-{new_run_id(now)}",
              "started_at": now.isoformat(), "sites": {}}
    try:
        yield record
    except CarpoolError as exc:
        _record(cfg, exc, {**record, "status": "failed", "message": str(exc)})
        raise
    except Exception as exc:  # noqa: BLE001 - only storage faults are turned into a line; bugs are raised
        if not (isinstance(exc, OSError) or storage_fault(exc)):
            raise
        err = storage_error(exc, doing)
        _record(cfg, err, {**record, "status": "failed", "message": str(err)})
        raise err from None
    else:
        problem = try_append_run(cfg.out, {**record, "status": "ok", "finished_at": datetime.now(UTC).isoformat(),
                                           "message": ""})
        if problem:
            raise storage_error(OSError(problem), f"recording the {command} run (its output is published)")


def _record(cfg, exc: CarpoolError, record: dict) -> None:
    problem = try_append_run(cfg.out, {**record, "finished_at": datetime.now(UTC).isoformat()})
    if problem:
        exc.args = (f"{exc.args[0]}; {problem}",)


def do_refresh(config: Path, only: list[str] | None, full: bool, log, allow_shrink: bool = False,
               docs: bool = False, docs_next: bool = False) -> RefreshOutcome:
    """`carpool refresh`. `docs_next`: the caller builds the Data Docs next (`make demo`): the
    sites whose docs are not current are one line saying so, not a warning each."""
    cfg = load_config(config)
    warn = lambda m: log("warning", f"warning: {m}", style="yellow")  # noqa: E731
    with _spinner() as show:
        outcome = refresh(cfg, datetime.now(UTC), only=only, full=full,
                          progress=lambda m: (show(m), log("progress", m)),
                          warn=warn, docs=docs, allow_shrink=allow_shrink,
                          docs_warn=(lambda _m: None) if docs_next else None)
    if docs_next and outcome.stale_docs:
        log("docs", f"Data Docs not current for {', '.join(sorted(outcome.stale_docs))}: "
                    f"`{datadocs.command(cfg)}` builds them (as `make demo` does next)",
            sites=sorted(outcome.stale_docs))
    for s in outcome.sites:
        log("site", f"{s.site_id}: {s.patients_loaded} patients loaded, {s.patients_quarantined} quarantined, "
                    f"{s.warnings} warnings{' (reused)' if s.reused else ''}", site=s.site_id, **s.counts())
        if unmapped_text(s.site_id, s.unmapped):
            log("unmapped", unmapped_text(s.site_id, s.unmapped), style="yellow", site=s.site_id,
                unmapped=s.unmapped)
    for site, msg in outcome.failures.items():
        log("error", f"{site}: {msg}", style="red", site=site)
    style = {"ok": "green", "no_changes": "green", "data_errors": "yellow", "failed": "red"}[outcome.status]
    text = outcome.message or outcome.status
    if outcome.storage_fault:
        log("error", f"error: {text}", style="red", exit_code=outcome.exit_code, run_id=outcome.run_id)
    log("run", f"run {outcome.run_id}: {text}", style=style, run_id=outcome.run_id, status=outcome.status)
    if outcome.key_source == "demo":
        log("banner", DEMO_BANNER, style="bold yellow", key_source="demo")
    return outcome


def do_docs(config: Path, only: list[str] | None, log) -> int:
    """`carpool docs`: Data Docs for every site (or `only` these) whose docs are missing or
    older than its data, from the site cache and the published warehouse's dataset checks,
    under the refresh lock (a refresh cannot publish or rewrite a site's cache meanwhile)."""
    from warehouse import sitecache
    from warehouse.lock import refresh_lock

    cfg = load_config(config)
    wanted = [cfg.site(s).id for s in only or []] or [s.id for s in cfg.sites if s.enabled]
    warehouse_path(cfg)      # no warehouse yet: one line, exit 2
    warn = lambda m: log("warning", f"warning: {m}", style="yellow")  # noqa: E731
    now = datetime.now(UTC)
    unusable = []
    with recorded(cfg, "docs", now, "building the validation docs") as record, \
            refresh_lock(cfg.out, on_stale=warn, command="docs", run_id=record["run_id"]) as holder:
        holder.phase("validation docs")
        sites = []
        for sid in wanted:
            manifest, problem = sitecache.check(cfg.out, sid)
            if manifest is None:
                unusable.append(sid)
                warn(f"{sid}: no Data Docs built ({problem or 'no validated output yet'}): "
                     f"run `carpool refresh --site {sid}` first")
                continue
            sites.append(sitecache.summary(cfg.out, sid))
        built = datadocs.build(cfg, sites, warn, lambda m: log("progress", m))
        record["sites"] = {s.site_id: "built" if s.site_id in built else "up to date" for s in sites}
    for s in sites:
        where = datadocs.docs_dir(cfg.out, s.site_id) / "index.html"
        log("docs", f"{s.site_id}: {'built' if s.site_id in built else 'up to date'}: {where}", site=s.site_id)
    log("docs", f"Data Docs: {len(built)} built, {len(sites) - len(built)} up to date"
                + (f", {len(unusable)} without a validated output" if unusable else ""))
    return 1 if unusable else 0


def do_validate(config: Path, site_id: str, log) -> int:
    from etl.compile.mapping import quarantine_threshold, site_mapping
    from etl.site import discard_work, run_site
    from etl.validate.validation_report import write_validation_report
    from etl.validate.where import location

    cfg = load_config(config)
    site = cfg.site(site_id)
    threshold, _ = quarantine_threshold(cfg, site_mapping(cfg, site))
    key, key_source = pseudonym_key(cfg)
    if key_source == "demo":
        log("banner", DEMO_BANNER, style="bold yellow", key_source="demo")
    claim(cfg.out)
    result = run_site(cfg, site, key)
    out_dir = cfg.out / "validation" / site_id
    report = write_validation_report(out_dir, result, config)
    from dataclasses import replace

    from warehouse.sitecache import previous_table_rows

    # a dry run for one site keeps its Data Docs inline: they are what a data manager looks at
    site_docs(cfg, replace(result, previous_rows=previous_table_rows(cfg.out, site_id)))  # rows vs. the last refresh
    discard_work(cfg, site_id)  # the DuckDB path's Parquet: a dry run keeps nothing
    log("validate", f"{site_id}: {result.patients_read} patients read, "
                    f"{result.patients_read - result.patients_quarantined} would load, "
                    f"{result.patients_quarantined} would be quarantined, {result.warnings} warnings")
    q = result.quarantine
    counts = q.groupby(["severity", "rule_id"]).size()   # errors, causes first, cascades last; then warnings
    order = sorted(counts.items(), key=lambda rn: (rn[0][0] != "error", rn[0][1] == "CASCADE_PATIENT", -rn[1]))
    for (severity, rule), n in order[:10]:
        example = q[(q["rule_id"] == rule) & (q["severity"] == severity)].iloc[0]
        log("problem", f"  {rule}{' (warning)' if severity == 'warning' else ''} x{n}: "
                       f"{location(example.to_dict())}: {example['message']}")
    if unmapped_text(site_id, result.unmapped):
        log("unmapped", unmapped_text(site_id, result.unmapped), style="yellow")
    log("validate", f"report: {report}\nrerun: carpool validate --site {site_id} --config {config}")
    return 1 if result.quarantined_pct > threshold else 0


def warehouse_path(cfg) -> Path:
    """The published run's own DuckDB file (symlinks resolved): its views then read that run's
    Parquet for the whole session, even if a refresh publishes meanwhile."""
    path = cfg.out / "warehouse.duckdb"
    if not path.exists():
        raise UsageError(f"no warehouse at {path}: run `carpool refresh --config {cfg.path}` first")
    return path.resolve()


def do_sql(config: Path, query: str, fmt: str = "table", out: Path | None = None, console=None):
    """Run one read-only SELECT in the SQL sandbox (warehouse.sandbox) and write the result."""
    from etl.query_output import check_format, write_result
    from warehouse.sandbox import run_query

    check_format(fmt, out)
    cfg = load_config(config)
    result = run_query(warehouse_path(cfg), query)
    if console is not None:
        write_result(result, fmt, out, console)
    return result


def do_views(name: str | None, dialect: str) -> list[tuple[str, str]]:
    """[(view, SQL in dialect)] for one view or all of them."""
    from warehouse.portable import DIALECTS, view_names, view_sql

    if dialect not in DIALECTS:
        raise UsageError(f"unknown dialect {dialect!r}: use one of {', '.join(DIALECTS)}")
    names = [name] if name else view_names()
    unknown = [n for n in names if n not in view_names()]
    if unknown:
        raise UsageError(f"no view {unknown[0]!r}: views are {', '.join(view_names())}")
    return [(n, view_sql(n, dialect)) for n in names]


def _read_only_warehouse(config: Path) -> duckdb.DuckDBPyConnection:
    import duckdb

    return duckdb.connect(str(warehouse_path(load_config(config))), read_only=True)


def do_export_adam(config: Path, out: Path) -> list[Path]:
    from warehouse.exports.adam import export_adam

    con = _read_only_warehouse(config)
    try:
        return export_adam(con, out)
    finally:
        con.close()


def do_export_omop(config: Path, out: Path, vocabulary: Path | None):
    from warehouse.exports.omop import export_omop

    con = _read_only_warehouse(config)
    try:
        return export_omop(con, out, vocabulary)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    finally:
        con.close()


def do_quality(config: Path) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The last published refresh's dataset checks (warehouse table quality_check): the
    DQD-style summary per check, the failed results, and the run id."""
    import duckdb

    from warehouse.quality import TABLE, summary

    cfg = load_config(config)
    con = duckdb.connect(str(warehouse_path(cfg)), read_only=True)
    try:
        try:
            results = con.execute(f"SELECT * FROM {TABLE}").fetchdf()
        except duckdb.CatalogException:
            raise UsageError(f"the warehouse at {cfg.out / 'warehouse.duckdb'} has no {TABLE} table (built by an "
                             f"older carpool): run `carpool refresh --full --config {cfg.path}`") from None
        row = con.execute("SELECT value FROM study_config WHERE key = 'run_id'").fetchone()
    finally:
        con.close()
    failed = results[~results["passed"]].sort_values(["check_id", "site_id", "table_name", "column_name"])
    return summary(results), failed, row[0] if row else ""


def do_docs_status(config: Path) -> list[str]:
    """One line per site whose Data Docs are missing or older than its data (no GX import)."""
    from warehouse import sitecache

    cfg = load_config(config)
    enabled = [s.id for s in cfg.sites if s.enabled]
    digests = datadocs.site_digests(datadocs.published_quality(cfg.out), enabled)
    lines = []
    for site in (s for s in cfg.sites if s.enabled):
        if sitecache.check(cfg.out, site.id)[0] is not None:
            why = datadocs.staleness(cfg.out, sitecache.summary(cfg.out, site.id), digests)
            lines += [datadocs.stale_line(cfg, site.id, why)] if why else []
    return lines


def do_runs(config: Path, limit: int, log=None) -> list[dict]:
    cfg = load_config(config)
    skipped = (lambda m: log("warning", f"warning: {m}", style="yellow")) if log else None
    return list(reversed(read_runs(cfg.out, skipped)))[:limit]


def do_analyze(config: Path, plan: Path | None, snapshot: str | None, log) -> Path:
    from etl.analyze import analyze_warehouse

    cfg = load_config(config)
    now = datetime.now(UTC)
    with recorded(cfg, "analyze", now, f"analyzing {'snapshot ' + snapshot if snapshot else 'the warehouse'}"):
        return analyze_warehouse(cfg, plan, snapshot, log, now)


def do_verify(config: Path, snapshot: str | None, log) -> list[str]:
    from warehouse.verify import verify_current

    cfg = load_config(config)
    if snapshot:
        from warehouse.snapshot import verify

        m = verify(cfg, snapshot)
        log("verify", f"snapshot {snapshot}: {len(m['files'])} files match manifest.json (run {m['run_id']})")
        return []
    checked = verify_current(cfg.out)
    for line in checked:
        log("verify", line)
    return checked


def do_freeze(config: Path, name: str, log) -> Path:
    from warehouse.snapshot import freeze, verify

    cfg = load_config(config)
    now = datetime.now(UTC)
    with recorded(cfg, "freeze", now, f"freezing snapshot {name}"):
        folder = freeze(cfg, name, now, on_stale=lambda m: log("warning", f"warning: {m}", style="yellow"))
    m = verify(cfg, name)
    log("freeze", f"snapshot {name}: run {m['run_id']}, {len(m['tables'])} tables, {len(m['files'])} files "
                  f"hashed in {folder / 'manifest.json'} (read-only)\n"
                  f"analyze it: carpool analyze --snapshot {name} --config {config}",
        snapshot=name, run_id=m["run_id"], path=str(folder))
    return folder


def do_export_aggregates(config: Path, out_file: Path, min_cell: int, log) -> Path:
    from warehouse.aggregates import export_aggregates

    if min_cell < 1:
        raise UsageError(f"--min-cell must be at least 1 (got {min_cell})")
    cfg = load_config(config)
    path, suppressed = export_aggregates(warehouse_path(cfg), out_file, min_cell)
    log("export", f"wrote {path}: {suppressed} cells suppressed (counts below {min_cell}, plus complementary "
                  "suppression; see the note on its first line)",
        path=str(path), suppressed=suppressed, min_cell=min_cell)
    return path


def do_twin(out: Path | None, seed: int | None, log) -> None:
    from sites.twin.generate import generate

    paths = generate(out, seed)
    log("twin", f"wrote {len(paths)} files (synthetic patients, not real)")


def do_profile(paths: list[Path], dictionary: Path | None, out: Path | None, console) -> tuple[Path, list[str]]:
    """Profile exports; print the summary; write out/profile/<name>/ (index.html, profile.json)."""
    from etl.onboarding.profile import profile_paths
    from etl.onboarding.profile_report import print_summary, write_report

    missing = [p for p in [*paths, *([dictionary] if dictionary else [])] if not Path(p).exists()]
    if missing:
        raise UsageError(f"{missing[0]}: file not found")
    paths = [f for p in map(Path, paths) for f in (sorted(x for x in p.iterdir() if x.is_file())
                                                    if p.is_dir() else [p])]  # a folder: its files
    if not paths:
        raise UsageError("no files to profile")
    tables, errors = profile_paths(paths, dictionary)
    print_summary(tables, errors, console)
    name = Path(paths[0]).stem
    out_dir = out if out is not None else Path("out") / "profile" / name
    return write_report(tables, errors, out_dir, ", ".join(Path(p).name for p in paths)), errors


def do_scaffold(paths: list[Path], site_id: str, sites_dir: Path, dictionary: Path | None, force: bool,
                log) -> list[Path]:
    """Draft sites/<site>/mapping.yml and code lists from the export (a reviewed draft, with TODOs)."""
    from etl.onboarding.scaffold import scaffold

    written, todos = scaffold(paths, site_id, sites_dir, dictionary, force)
    for p in written:
        log("scaffold", f"wrote {p}")
    log("scaffold", f"{len(todos)} TODO(s) to fill in {written[0]}" if todos else "no TODOs left")
    for t in todos[:20]:
        log("todo", f"  TODO {t}")
    log("scaffold", f"next: edit the mapping, then `carpool validate --site {site_id}` "
                    f"(after adding the site to carpool.yml)")
    return written


def _tty() -> bool:
    import sys

    return sys.stderr.isatty()


@contextmanager
def _spinner():
    """A transient progress line on a terminal; under cron or Airflow (no TTY) nothing, and
    rich's progress module is not even imported. Yields `show(message)`."""
    if not _tty():
        yield lambda _m: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task("refresh", total=None)
        yield lambda m: bar.update(task, description=m)
