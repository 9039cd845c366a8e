"""`carpool analyze`: the study plan on the current warehouse (or a frozen snapshot).

Reads `analysis_patient` read-only, runs the plan (analysis.runner), audits the paper's
published numbers against the recomputed ones (analysis.audit), and writes:
  out/report/index.html       the self-contained report
  out/report/audit.html       the paper-consistency audit
  out/report/statistics.csv   every number (analysis, comparison, endpoint, term, statistic, value, test)
  out/report/figures/*.png|svg
and the warehouse table `analysis_result` (the same rows plus the audit's, with run_id).
The statistics themselves do no I/O; this module is the only place that reads and writes.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pandas as pd

from analysis.audit import audit, load_published, render_audit
from analysis.plan import load_plan
from analysis.report import render_report
from analysis.runner import COLUMNS as RESULT_COLUMNS
from analysis.runner import run_plan
from etl.config import Config
from etl.errors import UsageError
from warehouse import publish
from warehouse.lock import refresh_lock


def load_analysis_input(con: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, dict[str, str]]:
    """The analysis_patient view and study_config settings from an open connection."""
    df = con.execute("SELECT * FROM analysis_patient ORDER BY site_id, study_id").fetchdf()
    settings = dict(con.execute("SELECT key, value FROM study_config").fetchall())
    return df, settings


def analyze_frame(df: pd.DataFrame, plan_path: Path | None, meta: dict):
    """Pure part: plan results, audit and rendered report for one analysis_patient frame."""
    plan = load_plan(plan_path) if plan_path else load_plan()
    results = run_plan(df, plan)
    audited = audit(load_published(), results.table)
    report = render_report(results, df, meta=meta, audit=audited)
    return results, audited, report


def analyze_warehouse(cfg: Config, plan_path: Path | None, snapshot: str | None, log) -> Path:
    if snapshot:
        from warehouse.snapshot import snapshot_connection

        con = snapshot_connection(cfg, snapshot)
        out_dir = cfg.out / "report" / "snapshots" / snapshot
    else:
        db = cfg.out / "warehouse.duckdb"
        if not db.exists():
            raise UsageError(f"no warehouse at {db}: run `carpool refresh --config {cfg.path}` first")
        con = duckdb.connect(str(db.resolve()), read_only=True)  # this run's Parquet, whatever publishes
        out_dir = cfg.out / "report"
    try:
        df, settings = load_analysis_input(con)
    finally:
        con.close()
    if df.empty:
        raise UsageError("analysis_patient is empty: no validated patients to analyze")
    meta = {"run_id": settings.get("run_id", ""), "cutoff_date": settings.get("cutoff_date", ""),
            "study": settings.get("study", ""), "snapshot": snapshot or "",
            "plan": str(plan_path or "analysis/plans/study.yml"), "n_patients": len(df)}
    results, audited, report = analyze_frame(df, plan_path, meta)
    table = results.table[RESULT_COLUMNS]
    write_report(out_dir, report, render_audit(audited, meta), table)
    if not snapshot:
        rows = pd.concat([table, audited.as_results_rows()[RESULT_COLUMNS]], ignore_index=True)
        store_results(cfg, rows.assign(run_id=meta["run_id"]))
    n_contra = len(audited.contradictions)
    log("analyze", f"{len(table)} results for {len(df)} patients; audit: {n_contra} contradictions in the paper")
    log("analyze", f"report: {out_dir / 'index.html'}")
    return out_dir / "index.html"


def write_report(out_dir: Path, report, audit_html: str, table: pd.DataFrame) -> None:
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "figures").mkdir(parents=True)
    (tmp / "index.html").write_text(report.html, encoding="utf-8")
    (tmp / "audit.html").write_text(audit_html, encoding="utf-8")
    table.to_csv(tmp / "statistics.csv", index=False, float_format="%.10g")
    for fig in report.figures:
        (tmp / "figures" / f"{fig.name}.png").write_bytes(fig.png)
        (tmp / "figures" / f"{fig.name}.svg").write_bytes(fig.svg)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)


def store_results(cfg: Config, rows: pd.DataFrame) -> None:
    """Replace `analysis_result` (a Parquet file of the published run), under the refresh lock."""
    from warehouse.build import store_table

    with refresh_lock(cfg.out):
        live = publish.current(cfg.out)
        if live is None:
            raise UsageError(f"no published warehouse under {cfg.out}: run `carpool refresh --config {cfg.path}` first")
        store_table(live, "analysis_result", rows)
