"""The `carpool` command: a thin layer over the Python API in etl/, analysis/ and sites/.

Exit codes (also in docs/operations.md):
  0  ok (or no changes)
  1  data-quality errors beyond the threshold, an export that cannot be read, a failed
     build, or a warehouse/snapshot that does not match its manifest
  2  usage or configuration error, another refresh holds the lock, or analyze results
     superseded by a refresh that published meanwhile (run analyze again)
  3  the output folder is full, read-only or failing (nothing published was changed)
  130 stopped by Ctrl-C (refresh, docs, analyze, demo): at once, as a kill would
A data problem or a storage fault never prints a traceback: it is a quarantine record or
a one-line error.
"""
from __future__ import annotations

import functools
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import typer

from etl.config import DEMO_BANNER
from etl.errors import CarpoolError
from etl.escape import plain

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode="markdown",
                  help="carpool: pooled, validated, pseudonymized CAR-T outcome data.\n\n"
                       "Example: `carpool demo` builds the demo warehouse and report under out/.")


# rich is loaded on first use: a command that prints to no terminal and no table (a scheduled
# refresh) never loads it
@functools.cache
def console():
    """rich on stderr, for a terminal: one problem, one line (greppable logs)."""
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


@functools.cache
def stdout():
    """rich on stdout: the tables of `runs`, `quality`, `sql`, `profile`."""
    from rich.console import Console

    return Console()


# what rich's Text drops from a line (rich.control.strip_control_codes): bell, backspace,
# vertical tab, form feed, carriage return; a line written without rich drops the same
_CONTROL = dict.fromkeys((7, 8, 11, 12, 13))

CONFIG = typer.Option(Path("carpool.yml"), "--config", "-c", help="Run configuration file.")


class _State:
    json_log = False


def log(event: str, message: str, style: str | None = None, **fields) -> None:
    """Human line on stderr, or a JSON line for a log collector (`--log-json`).

    The message is printed as written (data from exports can hold `[b]`-like markup);
    `style` colours the whole line.
    """
    if _State.json_log:
        rec = {"ts": datetime.now(UTC).isoformat(timespec="seconds"), "event": event, "message": message, **fields}
        print(json.dumps(rec, default=str), file=sys.stderr, flush=True)
    elif _terminal():
        console().print(plain(message, style or ""), highlight=False)
    else:   # a log file or a scheduler's capture: the line without loading rich (~40 ms of a
        # no-change refresh), as rich writes it there but for a tab, kept rather than expanded
        print(message.translate(_CONTROL), file=sys.stderr, flush=True)


def _terminal() -> bool:
    """Colour only where rich would colour: a terminal, or FORCE_COLOR set."""
    return sys.stderr.isatty() or bool(os.environ.get("FORCE_COLOR"))


@app.callback()
def _main(log_json: bool = typer.Option(False, "--log-json", help="Write logs as JSON lines on stderr.")) -> None:
    _State.json_log = log_json


INTERRUPTED = 130   # 128 + SIGINT, as a shell reports it
STOPPED = ("interrupted (Ctrl-C): stopped at once, as a kill would; what is published stays whole, "
           "and the next run records this one as interrupted and clears what it left")


def run(fn, stop_at_once: bool = False):
    """Run a command body; turn carpool errors into their exit code and one message.

    `stop_at_once` (the commands that hold the refresh lock or publish results): Ctrl-C
    ends the process at once, with one line and exit 130, instead of waiting for the sites
    running in threads (minutes at consortium scale). Nothing is unwound: the lock is still
    held when the process ends, exactly as after `kill -9`, which every such command
    survives (docs/operations.md, the fault matrix); the next run takes the lock over."""
    import signal
    import threading

    from etl.errors import storage_error

    main = threading.current_thread() is threading.main_thread()   # only there can a handler be set
    before = signal.signal(signal.SIGINT, _stop_now) if stop_at_once and main else None
    try:
        return fn()
    except CarpoolError as exc:
        log("error", f"error: {exc}" if not _State.json_log else str(exc), style="red", exit_code=exc.exit_code)
        raise typer.Exit(exc.exit_code) from None
    except OSError as exc:   # a storage fault outside a command's own handling: still one line
        err = storage_error(exc, "running the command")
        log("error", f"error: {err}" if not _State.json_log else str(err), style="red", exit_code=err.exit_code)
        raise typer.Exit(err.exit_code) from None
    finally:
        if before is not None:   # the caller's own handler again (a test runner, an embedding program)
            signal.signal(signal.SIGINT, before)


def _stop_now(_signum, _frame) -> None:
    log("error", STOPPED if _State.json_log else f"error: {STOPPED}", style="red", exit_code=INTERRUPTED)
    sys.stderr.flush()
    os._exit(INTERRUPTED)


@app.command()
def refresh(config: Path = CONFIG,
            site: list[str] = typer.Option(None, "--site", "-s", help="Only refresh these sites (repeatable)."),
            full: bool = typer.Option(False, "--full", help="Ignore cached site outputs; re-read everything."),
            allow_shrink: bool = typer.Option(False, "--allow-shrink",
                                              help="Publish even if a site lost more patients than "
                                                   "quality.max_shrink_pct against its last good run."),
            docs: bool = typer.Option(False, "--docs", help="Then build the Data Docs of every site whose "
                                                            "docs are stale (as `carpool docs`).")) -> None:
    """Read every site's export, validate, and publish the pooled warehouse.

    Data Docs are not built (a site whose docs are stale says so in one line): run
    `carpool docs` after it, or `carpool refresh --docs`.

    Example: `carpool refresh --config carpool.yml` (cron: see docs/operations.md)
    """
    from etl.commands import do_refresh

    outcome = run(lambda: do_refresh(config, site or None, full, log, allow_shrink, docs), stop_at_once=True)
    raise typer.Exit(outcome.exit_code)


@app.command("docs")
def docs_(config: Path = CONFIG,
          site: list[str] = typer.Option(None, "--site", "-s", help="Only these sites (repeatable).")) -> None:
    """Build the Great Expectations Data Docs (out/validation/SITE/gx/) of every site whose docs
    are missing or older than its data; current ones are left alone. Reads the sites' last
    validated output and the published warehouse, under the refresh lock. Exit 1 when a site
    has no validated output yet.

    Example: `carpool refresh && carpool docs` then open out/validation/center_a/gx/index.html
    """
    from etl.commands import do_docs

    raise typer.Exit(run(lambda: do_docs(config, site or None, log), stop_at_once=True))


@app.command()
def validate(site: str = typer.Option(..., "--site", "-s", help="Site id from the config."),
             config: Path = CONFIG) -> None:
    """Dry run for one site: read, map and validate; write out/validation/SITE/, not the warehouse.

    Example: `carpool validate --site center_a`
    """
    from etl.commands import do_validate

    code = run(lambda: do_validate(config, site, log))
    raise typer.Exit(code)


@app.command()
def sql(query: str = typer.Argument(..., help="One SELECT (or WITH ... SELECT) statement."), config: Path = CONFIG,
        fmt: str = typer.Option("table", "--format", "-f", help="table, csv, json or parquet."),
        out: Path = typer.Option(None, "--out", "-o", help="Write to this file (required for parquet).")) -> None:
    """Query the warehouse read-only: one SELECT; no files, settings or extensions (docs/operations.md).

    NULL shows as NULL in the table, an empty CSV cell, JSON null.

    Example: `carpool sql "SELECT tox_group, count(*) FROM analysis_patient GROUP BY 1" -f csv`
    """
    from etl.commands import do_sql

    run(lambda: do_sql(config, query, fmt, out, stdout()))


@app.command()
def views(name: str = typer.Argument(None, help="One view (default: all)."),
          dialect: str = typer.Option("duckdb", "--dialect", "-d", help="duckdb, spark or trino.")) -> None:
    """Print the warehouse views' SQL, translated for another engine.

    Example: `carpool views analysis_patient --dialect spark`
    """
    from etl.commands import do_views

    for view, text in run(lambda: do_views(name, dialect)):
        sys.stdout.write(f"-- {view} ({dialect})\n{text};\n\n")


@app.command()
def runs(config: Path = CONFIG, limit: int = typer.Option(10, "--limit", "-n", help="How many runs.")) -> None:
    """List recent refreshes from the run log (newest first).

    Example: `carpool runs -n 5`
    """
    from etl.commands import do_runs

    rows = run(lambda: do_runs(config, limit, log))
    from rich.table import Table

    table = Table("run_id", "status", "started_at", "sites", "key", "message")
    for r in rows:
        sites = r.get("sites")
        key = r.get("key_source") or "?"
        table.add_row(*map(plain, (r["run_id"], r["status"], r["started_at"][:19],
                                   str(len(sites)) if isinstance(sites, dict) else "")),
                      plain(DEMO_BANNER, "bold yellow") if key == "demo" else plain(key),
                      plain(str(r.get("message") or "")))
    if any(r.get("key_source") == "demo" for r in rows):
        stdout().print(plain(DEMO_BANNER, "bold yellow"))
    stdout().print(table)


@app.command()
def quality(config: Path = CONFIG,
            failed: int = typer.Option(20, "--failed", "-n", help="How many failed results to list.")) -> None:
    """Dataset-level quality checks of the last refresh (OHDSI DQD style): per check, how many
    results, passed, failed, and the threshold (schemas/checks.csv); then the failed results.
    Reads the warehouse table `quality_check`; a failed check is a warning (exit 0). A site
    whose Data Docs (which show these checks) are missing or stale is one warning line.

    Example: `carpool quality --config carpool.yml`
    """
    from etl.commands import do_quality

    summary, bad, run_id = run(lambda: do_quality(config))
    from rich.table import Table

    table = Table("check", "type", "checks", "passed", "failed", "threshold", title=f"quality checks, run {run_id}")
    for r in summary.itertuples():
        table.add_row(plain(r.check_id), plain(r.check_type), str(r.checks), str(r.passed),
                      plain(str(r.failed), "red" if r.failed else ""), plain(r.threshold))
    stdout().print(table)
    for r in bad.head(failed).itertuples():
        stdout().print(plain(f"FAILED {r.check_id} {r.site_id} {r.table_name}"
                              f"{'.' + r.column_name if r.column_name else ''}: {r.message}", "red"))
    if len(bad) > failed:
        stdout().print(f"... {len(bad) - failed} more failed results: "
                       "carpool sql \"SELECT * FROM quality_check WHERE NOT passed\"")
    from etl.commands import do_docs_status

    for line in run(lambda: do_docs_status(config)):   # the Data Docs index shows these checks too
        log("warning", f"warning: {line}", style="yellow")


@app.command()
def analyze(config: Path = CONFIG,
            plan: Path = typer.Option(None, "--plan", help="Analysis plan YAML (default: the study plan)."),
            snapshot: str = typer.Option(None, "--snapshot", help="Analyze a frozen snapshot instead.")) -> None:
    """Run the analysis plan on the warehouse; write out/report/ (statistics.csv, index.html, audit.html).

    Example: `carpool analyze --plan analysis/plans/study.yml`
    """
    from etl.commands import do_analyze

    run(lambda: do_analyze(config, plan, snapshot, log), stop_at_once=True)


@app.command()
def freeze(name: str = typer.Argument(..., help="Snapshot name, e.g. paper-2024-submission."),
           config: Path = CONFIG) -> None:
    """Freeze the published warehouse as an immutable snapshot under out/snapshots/NAME/.

    Parquet of every table, the views, and a manifest (file hashes, run id, config);
    files are read-only and an existing name is never overwritten.

    Example: `carpool freeze paper-2024-submission` then `carpool analyze --snapshot paper-2024-submission`
    """
    from etl.commands import do_freeze

    run(lambda: do_freeze(config, name, log))


export_app = typer.Typer(no_args_is_help=True, rich_markup_mode="markdown",
                         help="Export the warehouse in the field's formats: CDISC ADaM, OMOP CDM.\n\n"
                              "Example: `carpool export adam --out out/adam`")
app.add_typer(export_app, name="export")


@export_app.command("adam")
def export_adam(out: Path = typer.Option(..., "--out", "-o", help="Folder to write adsl.xpt, adtte.xpt, define.csv."),
                config: Path = CONFIG) -> None:
    """CDISC ADaM: ADSL and ADTTE (OS, LFS, time to CRS/ICANS) as SAS transport v5, with define.csv.

    Example: `carpool export adam --out out/adam`
    """
    from etl.commands import do_export_adam

    for path in run(lambda: do_export_adam(config, out)):
        log("export", f"wrote {path}")


@export_app.command("omop")
def export_omop(out: Path = typer.Option(..., "--out", "-o", help="Folder to write the CDM tables to."),
                vocabulary: Path = typer.Option(None, "--vocabulary",
                                                help="Athena vocabulary folder to resolve unmapped codes."),
                config: Path = CONFIG) -> None:
    """OMOP CDM v5.4: person, observation_period, visit_occurrence, condition_occurrence,
    measurement, drug_exposure, death as Parquet and CSV.

    Example: `carpool export omop --out out/omop`
    """
    from etl.commands import do_export_omop

    result = run(lambda: do_export_omop(config, out, vocabulary))
    log("export", ", ".join(f"{t}: {n}" for t, n in result.rows.items()) + f" -> {out}")
    if result.unresolved:
        log("export", f"{len(result.unresolved)} source codes have no standard concept yet (concept_id 0): "
                      f"{', '.join(result.unresolved)}; pass --vocabulary with an Athena download to resolve them")


@app.command("export-aggregates")
def export_aggregates(out: Path = typer.Option(..., "--out", "-o", help="CSV file to write."),
                      min_cell: int = typer.Option(5, "--min-cell", help="Suppress counts below this (1..min-cell-1)."),
                      config: Path = CONFIG) -> None:
    """Export aggregate counts and analysis results for sharing outside the consortium.

    Counts below --min-cell are suppressed (empty value, suppressed=true) and the first line
    of the file says so. No patient-level rows leave.

    Example: `carpool export-aggregates --min-cell 5 --out shared/aggregates.csv`
    """
    from etl.commands import do_export_aggregates

    run(lambda: do_export_aggregates(config, out, min_cell, log))


@app.command()
def federate(config: Path = CONFIG,
             plan: Path = typer.Option(None, "--plan", help="Analysis plan YAML (default: the study plan).")) -> None:
    """Run the plan federated: each site a mock vantage6 node; only aggregates leave a site.

    Needs a refresh first (each site's Parquet output). Writes out/federated/ (report/,
    results.duckdb, disclosure/<site>.jsonl). Disclosure rules: `federated:` in carpool.yml.

    Example: `carpool refresh && carpool federate` then open out/federated/report/index.html
    """
    from etl.config import load_config
    from federated.run import federate_config

    run(lambda: federate_config(load_config(config), plan, log))


@app.command()
def demo(config: Path = CONFIG) -> None:
    """Refresh the demo centers and write the report: what `make demo` runs (then `carpool docs`).

    Example: `carpool demo` then open out/report/index.html
    """
    from etl.commands import do_analyze, do_refresh

    outcome = run(lambda: do_refresh(config, None, False, log, docs_next=True), stop_at_once=True)
    if outcome.status == "failed":
        raise typer.Exit(outcome.exit_code)

    def said(event: str, message: str, **fields) -> None:
        if event != "banner":   # the demo key's banner: the refresh above has said it
            log(event, message, **fields)

    run(lambda: do_analyze(config, None, None, said), stop_at_once=True)
    raise typer.Exit(outcome.exit_code if outcome.storage_fault else 0)


@app.command()
def verify(snapshot: str = typer.Argument(None, help="Snapshot name; default: the published warehouse."),
           config: Path = CONFIG) -> None:
    """Check a frozen snapshot, or the published warehouse and its results, against their manifests.

    Every file's sha256 is compared with the manifest written when it was published or frozen;
    a changed, missing or extra file is named and the exit code is 1.

    Example: `carpool verify` or `carpool verify paper-2024-submission`
    """
    from etl.commands import do_verify

    run(lambda: do_verify(config, snapshot, log))


@app.command()
def synth(out: Path = typer.Option(..., "--out", "-o",
                                   help="Folder to write the consortium (and its carpool.yml) into."),
          patients: int = typer.Option(100_000, "--patients", "-n", min=1, help="Patients in total."),
          sites: int = typer.Option(8, "--sites", "-k", min=1, help="Sites; they cycle the four demo formats."),
          labs_per_patient: int = typer.Option(100, "--labs-per-patient", "-m", min=1, help="Lab rows per patient."),
          seed: int = typer.Option(7, "--seed", help="Seed of the resampling.")) -> None:
    """Write a large synthetic consortium (resampled twin patients) for scale tests.

    Example: `carpool synth --patients 20000 --sites 8 --out /tmp/scale`
    then `carpool refresh --config /tmp/scale/carpool.yml`
    """
    from etl.scale.synth import synth as write

    def go():
        path = write(out, patients, sites, labs_per_patient, seed)
        log("synth", f"{patients} synthetic patients over {sites} sites ({patients * labs_per_patient} lab rows): "
                     f"{path}\nrefresh: carpool refresh --config {path}")
    run(go)


@app.command()
def twin(out: Path = typer.Option(None, "--out", help="Root to write the four exports under (default: sites/)."),
         seed: int = typer.Option(None, "--seed", help="Seed (default: the committed, calibrated one).")) -> None:
    """Regenerate the synthetic twin: truth table and the four demo center exports.

    Example: `carpool twin --out /tmp/twin` (synthetic patients, not real)
    """
    from etl.commands import do_twin

    run(lambda: do_twin(out, seed, log))


@app.command()
def profile(paths: list[Path] = typer.Argument(..., help="Export files: CSV, XLSX, SPSS .sav, REDCap CSV."),
            dictionary: Path = typer.Option(None, "--dictionary", help="REDCap data dictionary CSV."),
            out: Path = typer.Option(None, "--out", help="Report folder (default: out/profile/NAME/).")) -> None:
    """Scan exports nobody has described yet: per column type, nulls, values, date formats, identifiers.

    Values of probable direct identifiers are never printed. Writes index.html + profile.json.

    Example: `carpool profile sites/center_e/export/cart_redcap_raw.csv
    --dictionary sites/center_e/export/cart_redcap_dictionary.csv`
    """
    from etl.commands import do_profile

    report, errors = run(lambda: do_profile(paths, dictionary, out, stdout()))
    log("profile", f"report: {report}")
    raise typer.Exit(1 if errors else 0)


@app.command()
def scaffold(paths: list[Path] = typer.Argument(..., help="The new center's export files."),
             site: str = typer.Option(..., "--site", "-s", help="New site id, e.g. center_e."),
             sites_dir: Path = typer.Option(Path("sites"), "--sites-dir", help="Where site folders live."),
             dictionary: Path = typer.Option(None, "--dictionary", help="REDCap data dictionary CSV."),
             force: bool = typer.Option(False, "--force", help="Overwrite an existing mapping.yml.")) -> None:
    """Draft SITES_DIR/SITE/mapping.yml and code lists from an export, for a person to review.

    Required fields with no match get a `# TODO` line; identifiers are marked for dropping.

    Example: `carpool scaffold sites/center_f/export/data.csv --site center_f`
    """
    from etl.commands import do_scaffold

    run(lambda: do_scaffold(paths, site, sites_dir, dictionary, force, log))
