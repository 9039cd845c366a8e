"""Turn findings into the load/quarantine split, with per-file reconciliation.

Rules of the split:
- a row with an error finding is quarantined;
- if its table's `on_error` is `patient`, the patient's rows in every table go with it
  (rule CASCADE_PATIENT, naming the cause), except for DUPLICATE_EXACT (only the copy goes);
- a source row that no table used is quarantined as UNMAPPED_ROW;
- warnings are recorded and the row is loaded.
Per source file: rows_read = rows_loaded + rows_quarantined, where a source row counts as
quarantined if any row derived from it is. Values containing a direct identifier are masked
(etl.validate.phi).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from etl.read.readers import RawTable
from etl.validate.phi import mask_quarantine
from schemas.catalog import Finding, finding
from schemas.model import common_schema

NO_CASCADE = {"DUPLICATE_EXACT"}
QUARANTINE_COLUMNS = ["site_id", "local_id", "source_file", "source_row", "target_table", "rule_id", "severity",
                      "column_name", "source_column", "value", "message"]
# local_id: the site's own; etl.validate.phi swaps it for the patient's study id (mask_quarantine)
# before anything leaves the site run


@dataclass(frozen=True)
class Split:
    loaded: dict[str, pd.DataFrame]
    quarantine: pd.DataFrame
    files: pd.DataFrame          # source, path, rows_read, rows_loaded, rows_quarantined
    patients_read: int
    patients_quarantined: int


def patient_causes(findings: list[Finding]) -> dict[str, Finding]:
    """local id -> the first error that quarantines the whole patient."""
    causes: dict[str, Finding] = {}
    for f in _dedupe(findings):
        on_error = common_schema()[f.table].on_error if f.table in common_schema() else "row"
        if f.severity == "error" and f.local_id and on_error == "patient" and f.rule_id not in NO_CASCADE:
            causes.setdefault(f.local_id, f)
    return causes


def cascade_detail(tables: dict[str, pd.DataFrame], cause: Finding) -> str:
    """The CASCADE_PATIENT detail naming the cause and where it is."""
    return f"{cause.rule_id} in {cause.table} ({_row_of(tables, cause.table, cause.row_id)})"


def resolve(site_id: str, tables: dict[str, pd.DataFrame], findings: list[Finding],
            raw: dict[str, RawTable], identifier_values: set[str],
            elsewhere: dict[str, tuple[set[int], set[int]]] | None = None) -> Split:
    """`elsewhere`: file label -> (rows used, rows with an error) by tables resolved outside
    (the DuckDB path) that share a file with these tables."""
    findings = _dedupe(findings)
    causes = patient_causes(findings)
    # an exact copy of a row whose patient is quarantined anyway goes with the patient
    findings = [f for f in findings if not (f.rule_id in NO_CASCADE and f.local_id in causes)]
    bad = {(f.table, f.row_id) for f in findings if f.severity == "error" and f.row_id is not None}
    cascade = []
    for name, frame in tables.items():
        hit = frame[frame["local_id"].isin(causes.keys())]
        for rid, lid in zip(hit["_row_id"], hit["local_id"], strict=True):
            if (name, int(rid)) not in bad:
                cause = causes[lid]
                cascade.append(finding("CASCADE_PATIENT", name, int(rid), "", "", local_id=lid,
                                       detail=cascade_detail(tables, cause)))
                bad.add((name, int(rid)))
    findings = findings + cascade

    loaded, q_rows, used = {}, set(), set()
    for name, frame in tables.items():
        is_bad = frame["_row_id"].isin([r for t, r in bad if t == name]).to_numpy(dtype=bool)
        loaded[name] = frame[~is_bad].reset_index(drop=True)
        for rows in frame["_source_rows"]:
            used.update(rows)
        for rows in frame.loc[is_bad, "_source_rows"]:
            q_rows.update(rows)
    where = _source_index(tables, findings)
    records = [r for f in findings for r in _records(site_id, f, where)]
    for label, (other_used, other_bad) in (elsewhere or {}).items():
        used.update((label, n) for n in other_used)
        q_rows.update((label, n) for n in other_bad)
    files = []
    for r in raw.values():
        read = {(r.label, int(n)) for n in r.frame["_source_row"]}
        unmapped = sorted(read - used)
        records += unmapped_records(site_id, r.label, [n for _, n in unmapped])
        q_rows.update(unmapped)
        quarantined = read & q_rows
        loaded_rows = (read & used) - q_rows
        files.append({"source": r.name, "path": r.label, "rows_read": len(read),
                      "rows_loaded": len(loaded_rows), "rows_quarantined": len(quarantined)})
    patient = tables.get("patient")
    n_read = 0 if patient is None else int(patient["local_id"].nunique())
    n_bad = 0 if patient is None else n_read - int(loaded["patient"]["local_id"].nunique())
    quarantine = pd.DataFrame(records, columns=QUARANTINE_COLUMNS).sort_values(
        ["source_file", "source_row", "rule_id"], kind="stable").reset_index(drop=True)
    return Split(loaded, mask_identifiers(quarantine, identifier_values), pd.DataFrame(files), n_read, n_bad)


def unmapped_records(site_id: str, label: str, rows: list[int]) -> list[dict]:
    """UNMAPPED_ROW records for source rows that no table mapping used."""
    f = finding("UNMAPPED_ROW", "", None, detail="no table mapping uses it")
    return [{"site_id": site_id, "local_id": None, "source_file": label, "source_row": int(n), "target_table": "",
             "rule_id": f.rule_id, "severity": f.severity, "column_name": "", "source_column": "", "value": "",
             "message": f.message}
            for n in rows]


def mask_identifiers(q: pd.DataFrame, identifiers: set[str]) -> pd.DataFrame:
    """Quarantine records with direct-identifier values masked, in `value` and inside messages
    (etl.validate.phi: any record containing an identifier, whatever its length)."""
    return mask_quarantine(q, identifiers)


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen, out = set(), []
    for f in findings:
        key = (f.rule_id, f.table, f.row_id, f.column)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def _row_of(tables: dict[str, pd.DataFrame], table: str, row_id: int | None) -> str:
    if row_id is None or table not in tables:
        return "?"
    frame = tables[table]
    row = frame[frame["_row_id"] == row_id]
    if row.empty:
        return "?"
    return f"{row.iloc[0]['_source_file']} row {row.iloc[0]['_source_row']}"


def _source_index(tables: dict[str, pd.DataFrame],
                  findings: list[Finding]) -> dict[tuple[str, int], list[tuple[str, int]]]:
    """(table, row id) -> the source rows it came from (pivots merge several), for the rows
    the findings name: one lookup per table instead of one search per finding."""
    wanted: dict[str, set[int]] = {}
    for f in findings:
        if f.row_id is not None:
            wanted.setdefault(f.table, set()).add(int(f.row_id))
    out = {}
    for name, frame in tables.items():
        frame = frame[frame["_row_id"].isin(wanted.get(name, set()))]
        for rid, rows, file, n in zip(frame["_row_id"], frame["_source_rows"], frame["_source_file"],
                                      frame["_source_row"], strict=True):
            out.setdefault((name, int(rid)), sorted({(str(a), int(b)) for a, b in (rows or ((file, n),))}))
    return out


def _records(site_id: str, f: Finding, where: dict[tuple[str, int], list[tuple[str, int]]]) -> list[dict]:
    """One record per source row the finding's target row came from (pivots merge several)."""
    sources: list[tuple[str, int | None]] = [("", None)]
    if f.row_id is not None and (f.table, int(f.row_id)) in where:
        sources = where[(f.table, int(f.row_id))]
    return [{"site_id": site_id, "local_id": f.local_id or None, "source_file": file, "source_row": n,
             "target_table": f.table, "rule_id": f.rule_id, "severity": f.severity, "column_name": f.column,
             "source_column": f.source_column, "value": f.value,
             "message": f.message} for file, n in sources]
