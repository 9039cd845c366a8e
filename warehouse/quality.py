"""Dataset-level quality checks in the style of OHDSI DQD: the warehouse table `quality_check`.

Row rules (pandera, SQL) judge one row at a time; these judge a site's data as a whole.
Every check is a row of the check catalog (`schemas/checks.csv`) and takes its threshold
from there, the one place it is written; every result has the same shape (`COLUMNS`).

- `row_count_change` (ROW_COUNT_DROP): per table, the rows the site's export mapped to it
  (before quarantine) against the output it replaces (the previous refresh of that site,
  kept in the site cache). Fewer by more than `threshold_pct` percent fails.
- `completeness` (COMPLETENESS and per-column rows): per column, the share of mapped rows
  (before quarantine) that have a value. The `*` row's `threshold_pct` (largest share
  missing) applies to every required column; an optional column is held to a threshold only
  when a row names it (e.g. COMPLETENESS_ECOG), otherwise it is reported and passes.
- `site_rate` (SITE_RATE_CRS, _ICANS, _CR): the site's rate of the named `analysis_patient`
  column (patients with a value) against the pooled rate p0 of all sites. Method: binomial
  funnel limits p0 ± z·√(p0(1−p0)/n) for the site's n, z the normal quantile of the catalog's
  `limit` (a two-sided level in %); equivalently, the pooled rate lies in the site's Wilson
  score interval. The pooled rate includes the site itself, as in a funnel plot.
"""
from __future__ import annotations

import math
from statistics import NormalDist

import duckdb
import pandas as pd

from schemas.catalog import Check, catalog
from schemas.model import common_schema
from schemas.rules import q

TABLE = "quality_check"
COLUMNS = [
    ("check_id", "VARCHAR", "Check catalog rule (schemas/checks.csv) whose threshold this result is held to."),
    ("check_type", "VARCHAR", "row_count_change, completeness or site_rate."),
    ("kahn_category", "VARCHAR", "Kahn category of the check: conformance, completeness or plausibility."),
    ("site_id", "VARCHAR", "Center the result is about."),
    ("table_name", "VARCHAR", "Table (or view, for rates) the check looked at."),
    ("column_name", "VARCHAR", "Column the check looked at; empty for a whole-table check."),
    ("value", "DOUBLE", "What was measured: mapped rows (row_count_change), share of rows with a value "
                        "(completeness, 0-1), or the site's rate (site_rate, 0-1)."),
    ("lower", "DOUBLE", "Smallest value that passes; null when there is no lower bound."),
    ("upper", "DOUBLE", "Largest value that passes; null when there is no upper bound."),
    ("threshold", "VARCHAR", "The threshold in words, as the catalog states it (null: reported only)."),
    ("num_violated_rows", "BIGINT", "Rows violating the check (rows missing since the previous refresh; rows "
                                    "without a value); null for rates."),
    ("num_denominator_rows", "BIGINT", "Rows the check looked at (previous refresh's rows; mapped rows; patients "
                                       "with a value, for rates)."),
    ("passed", "BOOLEAN", "Whether the value lies within lower..upper."),
    ("severity", "VARCHAR", "Catalog severity of a failure (warning: flagged, nothing quarantined)."),
    ("message", "VARCHAR", "The catalog's message for a failed check; empty when passed."),
]
NAMES = [c for c, _, _ in COLUMNS]


def _checks(check_type: str) -> list[Check]:
    return [c for c in catalog().values() if c.check_type == check_type]


def _row(check: Check, site: str, table: str, column: str, value: float, lower: float | None,
         upper: float | None, threshold: str | None, violated: int | None, denominator: int | None,
         shown: dict) -> dict:
    passed = (lower is None or value >= lower - 1e-12) and (upper is None or value <= upper + 1e-12)
    return {"check_id": check.rule_id, "check_type": check.check_type, "kahn_category": check.kahn_category,
            "site_id": site, "table_name": table, "column_name": column, "value": float(value),
            "lower": lower, "upper": upper, "threshold": threshold, "num_violated_rows": violated,
            "num_denominator_rows": denominator, "passed": bool(passed), "severity": check.severity,
            "message": "" if passed else check.format(column=column or table, **shown)}


def row_count_checks(site: str, rows: dict[str, int], previous: dict[str, int]) -> list[dict]:
    """ROW_COUNT_DROP per table the site maps; a table without a previous count passes."""
    check = _checks("row_count_change")[0]
    out = []
    for table, n in sorted(rows.items()):
        before = previous.get(table)
        if before is None:
            out.append(_row(check, site, table, "", n, None, None, None, None, None, {}))
            continue
        lower = before * (1 - check.threshold_pct / 100)
        drop = 100.0 * (before - n) / before if before else 0.0
        out.append(_row(check, site, table, "", n, lower, None, f">= {100 - check.threshold_pct:g}% of the "
                        f"previous refresh's {before} rows", max(before - n, 0), before,
                        {"value": n, "expected": before, "detail": f"{-drop:+.0f}%"}))
    return out


def completeness_threshold(table: str, column: str) -> Check | None:
    """The completeness row that holds `table.column`: its own row, else the `*` row for a
    required column, else none (reported only)."""
    rows = _checks("completeness")
    own = [c for c in rows if c.table == table and column in c.columns]
    if own:
        return own[0]
    spec = common_schema()[table]
    if spec.column(column).required:
        return next((c for c in rows if c.table == "*"), None)
    return None


def completeness_checks(site: str, rows: dict[str, int], non_null: dict[str, dict[str, int]]) -> list[dict]:
    """One result per column of each mapped table with rows (site_id, a constant, left out)."""
    default = next(c for c in _checks("completeness") if c.table == "*")
    out = []
    for table, n in sorted(rows.items()):
        if not n:
            continue
        for column, have in non_null.get(table, {}).items():
            if column == "site_id":
                continue
            check = completeness_threshold(table, column)
            share = have / n
            lower = None if check is None else 1 - check.threshold_pct / 100
            words = None if check is None else f">= {100 - check.threshold_pct:g}% of rows have a value"
            out.append(_row(check or default, site, table, column, share, lower, None, words, n - have, n,
                            {"value": f"{100 * share:.1f}%", "expected": f"{100 * (lower or 0):g}%"}))
    return out


def site_checks(site: str, profiles: dict, previous: dict[str, int]) -> list[dict]:
    """Row-count and completeness results of one site from its pre-quarantine profiles
    (`etl.validate.prequarantine.TableProfile`) and its previous refresh's row counts."""
    rows = {t: p.rows for t, p in profiles.items()}
    return (row_count_checks(site, rows, previous)
            + completeness_checks(site, rows, {t: p.non_null for t, p in profiles.items()}))


def funnel_limits(p0: float, n: int, level_pct: float) -> tuple[float, float]:
    """Binomial limits p0 ± z·√(p0(1−p0)/n) at a two-sided level, clipped to 0..1."""
    z = NormalDist().inv_cdf(0.5 + level_pct / 200)
    half = z * math.sqrt(p0 * (1 - p0) / n)
    return max(0.0, p0 - half), min(1.0, p0 + half)


def rate_checks(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """SITE_RATE_* for every site with patients, over the warehouse's own view (the rate's
    definition is the view's column, e.g. analysis_patient.crs_any)."""
    out = []
    for check in _checks("site_rate"):
        col = check.columns[0]
        counts = con.execute(f"SELECT site_id, count({q(col)}), count(*) FILTER (WHERE {q(col)}) "
                             f"FROM {q(check.table)} GROUP BY site_id ORDER BY site_id").fetchall()
        total = sum(n for _, n, _ in counts)
        if not total:
            continue
        p0 = sum(k for _, _, k in counts) / total
        for site, n, k in counts:
            if not n:
                continue
            lo, hi = funnel_limits(p0, n, check.limit)
            words = f"within the {check.limit:g}% binomial limits around the pooled rate {p0:.3f} (n = {n})"
            out.append(_row(check, site, check.table, col, k / n, lo, hi, words, None, n,
                            {"value": f"{k / n:.3f}", "expected": f"[{lo:.3f}, {hi:.3f}]",
                             "detail": f"pooled {p0:.3f}, {k} of {n} patients"}))
    return out


def frame(rows: list[dict]) -> pd.DataFrame:
    """Results as a frame in `COLUMNS` order (typed even when empty)."""
    df = pd.DataFrame(rows, columns=NAMES)
    return df.astype({"value": float, "lower": float, "upper": float, "passed": bool})


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """The DQD-style summary: per check, how many results, passed, failed, and its threshold."""
    rows = []
    for check_id, group in results.groupby("check_id", sort=False):
        check = catalog().get(check_id)
        rows.append({"check_id": check_id, "check_type": group["check_type"].iloc[0],
                     "checks": len(group), "passed": int(group["passed"].sum()),
                     "failed": int((~group["passed"]).sum()), "threshold": threshold_text(check)})
    return pd.DataFrame(rows, columns=["check_id", "check_type", "checks", "passed", "failed", "threshold"])


def threshold_text(check: Check | None) -> str:
    """A check's threshold in words, from the catalog."""
    if check is None:
        return ""
    if check.check_type == "row_count_change":
        return f"<= {check.threshold_pct:g}% fewer rows than last refresh"
    if check.check_type == "completeness":
        where = "required columns" if check.table == "*" else f"{check.table}.{', '.join(check.columns)}"
        return f"<= {check.threshold_pct:g}% missing ({where})"
    if check.check_type == "site_rate":
        return f"{check.limit:g}% binomial limits of pooled rate"
    return f"{check.threshold_pct:g}%"
