"""`carpool analyze`: the study plan on the current warehouse (or a frozen snapshot).

Reads `analysis_patient` read-only, runs the plan (analysis.runner), audits the paper's
published numbers against the recomputed ones (analysis.audit), and writes:
  out/report/index.html       the self-contained report
  out/report/audit.html       the paper-consistency audit
  out/report/statistics.csv   every number (analysis, comparison, endpoint, term, statistic, value, test)
  out/report/figures/*.png|svg
and `analysis_result` (the same rows plus the audit's, with the run id read). All of it is one
result set, staged and switched in atomically beside the warehouse run it was computed from
(warehouse.results); the published DuckDB file is only ever opened read-only. `out/report`
is a link to the current warehouse run's report.
The statistics themselves do no I/O; this module is the only place that reads and writes.
"""
from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from analysis.audit import audit, load_published, render_audit
from analysis.figures import draw
from analysis.plan import load_plan
from analysis.report import render_report, report_figure_jobs
from analysis.runner import COLUMNS as RESULT_COLUMNS
from analysis.runner import run_plan
from etl.config import DEMO_BANNER, Config
from etl.errors import StaleResultError, UsageError
from etl.escape import write_csv
from warehouse import layout, publish, results
from warehouse.durable import fault_point
from warehouse.runlog import try_append_run
from warehouse.sandbox import open_readonly


def load_analysis_input(con: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, dict[str, str]]:
    """The analysis_patient view and study_config settings from an open connection."""
    df = con.execute("SELECT * FROM analysis_patient ORDER BY site_id, study_id").fetchdf()
    settings = dict(con.execute("SELECT key, value FROM study_config").fetchall())
    return df, settings


def analyze_frame(df: pd.DataFrame, plan_path: Path | None, meta: dict):
    """Plan results, audit and rendered report for one analysis_patient frame."""
    plan = load_plan(plan_path) if plan_path else load_plan()
    results = run_plan(df, plan)
    audited = audit(load_published(), results.table)
    report = render_report(results, df, meta=meta, audit=audited, figures=draw(report_figure_jobs(results, df)))
    return results, audited, report


def analyze_warehouse(cfg: Config, plan_path: Path | None, snapshot: str | None, log,
                      now: datetime | None = None) -> Path:
    """Analyze the published warehouse (or a snapshot) and publish the result set; return its report.

    The warehouse run is resolved once, before reading, and the results are attached to that
    run only (warehouse.results); the published DuckDB file is opened read-only and never written.
    """
    now = now or datetime.now(UTC)
    for set_id in results.leftovers(cfg.out):
        _log_interrupted(cfg, set_id, log)
    run_dir = None
    if snapshot:
        from warehouse.snapshot import snapshot_connection

        con = snapshot_connection(cfg, snapshot)
    else:
        run_dir = publish.current(cfg.out)
        if run_dir is None or not (run_dir / "warehouse.duckdb").exists():
            raise UsageError(f"no warehouse at {cfg.out / 'warehouse.duckdb'}: "
                             f"run `carpool refresh --config {cfg.path}` first")
        con = open_readonly(run_dir / "warehouse.duckdb")
    try:
        df, settings = load_analysis_input(con)
    finally:
        con.close()
    if df.empty:
        raise UsageError("analysis_patient is empty: no validated patients to analyze")
    run_id = settings.get("run_id", "")
    meta = {"run_id": run_id, "cutoff_date": settings.get("cutoff_date", ""),
            "study": settings.get("study", ""), "snapshot": snapshot or "",
            "plan": str(plan_path or "analysis/plans/study.yml"), "n_patients": len(df),
            "banner": DEMO_BANNER if settings.get("key_source") == "demo" else ""}
    if meta["banner"]:
        log("banner", DEMO_BANNER, style="bold yellow", key_source="demo")
    set_id = f"{'snapshot-' + snapshot if snapshot else run_id}.{now.astimezone(UTC).strftime('%Y%m%dT%H%M%S%fZ')}"
    tmp = results.stage(cfg.out, set_id)        # first: an unwritable out/ fails before minutes of work
    try:
        analysis, audited, report = analyze_frame(df, plan_path, meta)
        table = analysis.table[RESULT_COLUMNS]
        rows = pd.concat([table, audited.as_results_rows()[RESULT_COLUMNS]], ignore_index=True)
        write_report(tmp / "report", report, render_audit(audited, meta), table)
        layout.write_frame(rows.assign(run_id=run_id), results.columns(), tmp / results.TABLE, order=True)
        fault_point("analyze: staged")
        set_dir = results.seal(tmp, {**meta, "set_id": set_id, "analyzed_at": now.isoformat(), "rows": len(rows)})
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)   # never half a result set; the published one is untouched
        raise
    n_contra = len(audited.contradictions)
    log("analyze", f"{len(table)} results for {len(df)} patients; audit: {n_contra} contradictions in the paper")
    if snapshot:
        link = results.attach_snapshot(cfg.out, set_dir, snapshot)
        log("analyze", f"report: {link / 'report' / 'index.html'}")
        return link / "report" / "index.html"
    if not results.attach(set_dir, run_dir):
        raise StaleResultError(f"analyzed warehouse run {run_id}, which a newer refresh replaced and pruned while "
                               f"analyze ran; results kept beside, not published: {set_dir} "
                               "(run `carpool analyze` again)")
    live = publish.current(cfg.out)
    if live != run_dir:
        raise StaleResultError(f"analyzed warehouse run {run_id}, but run {live.name if live else '?'} was "
                               f"published while analyze ran; results attached to run {run_id} only "
                               f"({run_dir / 'results'}), not to the current warehouse (run `carpool analyze` again)")
    ensure_report_link(cfg.out)
    log("analyze", f"report: {cfg.out / 'report' / 'index.html'} (run {run_id}, results {set_dir.name})")
    return cfg.out / "report" / "index.html"


def ensure_report_link(out: Path) -> None:
    """`out/report` -> `current/results/report` (a real folder from an older version is replaced)."""
    link = out / "report"
    if link.is_symlink():
        return
    if link.exists():
        shutil.rmtree(link)
    link.symlink_to(Path("current") / "results" / "report")


def write_report(out_dir: Path, report, audit_html: str, table: pd.DataFrame) -> None:
    """The report files into out_dir (a staged result set's report/ folder)."""
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    (out_dir / "index.html").write_text(report.html, encoding="utf-8")
    (out_dir / "audit.html").write_text(audit_html, encoding="utf-8")
    write_csv(table, out_dir / "statistics.csv", float_format="%.10g")
    for fig in report.figures:
        (out_dir / "figures" / f"{fig.name}.png").write_bytes(fig.png)
        (out_dir / "figures" / f"{fig.name}.svg").write_bytes(fig.svg)


def _log_interrupted(cfg: Config, set_id: str, log) -> None:
    message = (f"analyze {set_id} was killed or crashed before publishing its results; "
               "its staged result set was discarded")
    problem = try_append_run(cfg.out, {"command": "analyze", "run_id": set_id, "status": "interrupted",
                                       "started_at": "", "finished_at": None, "message": message})
    log("warning", f"warning: {message}" + (f"; {problem}" if problem else ""), style="yellow")
