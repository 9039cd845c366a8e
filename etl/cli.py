"""The `carpool` command: a thin layer over the Python API in etl/, analysis/ and sites/.

Exit codes (also in docs/operations.md):
  0  ok (or no changes)
  1  data-quality errors beyond the threshold, or an export that cannot be read
  2  usage or configuration error, or another refresh holds the lock
A data problem never prints a traceback: it is a quarantine record or a one-line error.
"""
from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from etl.config import DEMO_BANNER
from etl.errors import CarpoolError
from etl.escape import plain

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode="markdown",
                  help="carpool: pooled, validated, pseudonymized CAR-T outcome data.\n\n"
                       "Example: `carpool demo` builds the demo warehouse and report under out/.")
console = Console(stderr=True, soft_wrap=True)  # one problem, one line: greppable logs
stdout = Console()
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
    else:
        console.print(Text(message, style=style or ""), highlight=False)


@app.callback()
def _main(log_json: bool = typer.Option(False, "--log-json", help="Write logs as JSON lines on stderr.")) -> None:
    _State.json_log = log_json


def run(fn):
    """Run a command body; turn carpool errors into their exit code and one message."""
    try:
        return fn()
    except CarpoolError as exc:
        log("error", f"error: {exc}" if not _State.json_log else str(exc), style="red", exit_code=exc.exit_code)
        raise typer.Exit(exc.exit_code) from None


@app.command()
def refresh(config: Path = CONFIG,
            site: list[str] = typer.Option(None, "--site", "-s", help="Only refresh these sites (repeatable)."),
            full: bool = typer.Option(False, "--full", help="Ignore cached site outputs; re-read everything.")) -> None:
    """Read every site's export, validate, and publish the pooled warehouse.

    Example: `carpool refresh --config carpool.yml` (cron: see docs/operations.md)
    """
    from etl.commands import do_refresh

    outcome = run(lambda: do_refresh(config, site or None, full, log))
    raise typer.Exit(outcome.exit_code)


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

    run(lambda: do_sql(config, query, fmt, out, stdout))


@app.command()
def runs(config: Path = CONFIG, limit: int = typer.Option(10, "--limit", "-n", help="How many runs.")) -> None:
    """List recent refreshes from the run log (newest first).

    Example: `carpool runs -n 5`
    """
    from etl.commands import do_runs

    rows = run(lambda: do_runs(config, limit))
    table = Table("run_id", "status", "started_at", "sites", "key", "message")
    for r in rows:
        key = r.get("key_source") or "?"
        table.add_row(*map(plain, (r["run_id"], r["status"], r["started_at"][:19], str(len(r.get("sites", {}))))),
                      Text(DEMO_BANNER, style="bold yellow") if key == "demo" else plain(key),
                      plain(r.get("message", "")))
    if any(r.get("key_source") == "demo" for r in rows):
        stdout.print(Text(DEMO_BANNER, style="bold yellow"))
    stdout.print(table)


@app.command()
def analyze(config: Path = CONFIG,
            plan: Path = typer.Option(None, "--plan", help="Analysis plan YAML (default: the study plan)."),
            snapshot: str = typer.Option(None, "--snapshot", help="Analyze a frozen snapshot instead.")) -> None:
    """Run the analysis plan on the warehouse; write out/report/ (statistics.csv, index.html, audit.html).

    Example: `carpool analyze --plan analysis/plans/study.yml`
    """
    from etl.commands import do_analyze

    run(lambda: do_analyze(config, plan, snapshot, log))


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
def demo(config: Path = CONFIG) -> None:
    """Refresh the demo centers and write the report: what `make demo` runs.

    Example: `carpool demo` then open out/report/index.html
    """
    from etl.commands import do_analyze, do_refresh

    outcome = run(lambda: do_refresh(config, None, False, log))
    if outcome.status == "failed":
        raise typer.Exit(1)
    run(lambda: do_analyze(config, None, None, log))


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

    report, errors = run(lambda: do_profile(paths, dictionary, out, stdout))
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
