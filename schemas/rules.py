"""Cross-field and cross-table rules over one site's mapped tables.

One function per check *type* of the catalog (`schemas/checks.csv`): duplicates, orphan
rows, missing child records, date order, test records, MRD flag consistency and study
eligibility; id text and limits come from `schemas.id_text` and `schemas.limits`. A
date-order check names `later,earlier` columns; `earlier` is either a column of the same
table or a per-patient reference date (`infusion_date`, `cr_date`).
All return `Finding`s; none drops or changes a row.
"""
from __future__ import annotations

import re
from datetime import date

import pandas as pd

from schemas.catalog import Check, Finding, catalog, finding
from schemas.id_text import id_text_findings
from schemas.limits import limit_findings
from schemas.model import common_schema

TEST_NAME = re.compile(r"\btest\b|\bdummy\b|\bfake\b|测试|試験", re.IGNORECASE)
CHILD_RULES = {"infusion": "MISSING_INFUSION", "response": "MISSING_RESPONSE", "outcome": "MISSING_OUTCOME"}


def cross_table_findings(tables: dict[str, pd.DataFrame], names: pd.Series | None = None,
                         cutoff: date | None = None) -> list[Finding]:
    """All cross-field/cross-table findings for one site. `names`: local_id -> person name;
    `cutoff`: the study cut-off (rule DATE_AFTER_CUTOFF)."""
    out: list[Finding] = id_text_findings(tables) + limit_findings(tables, cutoff)
    for name, frame in tables.items():
        out += duplicates(name, frame)
    out += orphans(tables)
    out += missing_children(tables)
    refs = reference_dates(tables)
    for check in catalog().values():
        if check.check_type == "date_order" and check.table in tables:
            out += date_order(check, tables[check.table], refs)
    out += relapse_without_cr(tables, refs)
    if "response" in tables:
        out += mrd_flag(tables["response"])
    if "patient" in tables:
        out += eligibility(tables["patient"])
        if names is not None:
            out += test_records(tables["patient"], names)
    return out


def duplicates(name: str, frame: pd.DataFrame) -> list[Finding]:
    keys = [k for k in common_schema()[name].keys if k in frame.columns]
    values = [c for c in common_schema()[name].column_names if c in frame.columns and c not in keys]
    out = []
    dup = frame[frame.duplicated(keys, keep=False) & frame[keys].notna().all(axis=1)]
    for _, group in dup.groupby(keys, sort=False):
        as_text = group[values].astype(str)
        rows = ", ".join(str(r) for r in group["_source_row"])
        if len(as_text.drop_duplicates()) > 1:
            differ = [c for c in values if as_text[c].nunique() > 1]
            for rec in group.to_dict("records"):
                out.append(finding("DUPLICATE_CONFLICT", name, int(rec["_row_id"]), ",".join(differ), "",
                                   local_id=rec["local_id"],
                                   detail=f"same patient/key on source rows {rows} with different {', '.join(differ)}"))
        else:
            first = group.iloc[0]["_source_row"]
            for rec in group.iloc[1:].to_dict("records"):
                out.append(finding("DUPLICATE_EXACT", name, int(rec["_row_id"]), "", "", local_id=rec["local_id"],
                                   detail=f"exact copy of source row {first}, which is loaded"))
    return out


def orphans(tables: dict[str, pd.DataFrame]) -> list[Finding]:
    if "patient" not in tables:
        return []
    known = set(tables["patient"]["local_id"].dropna())
    out = []
    for name, frame in tables.items():
        if name == "patient":
            continue
        bad = frame[frame["local_id"].notna() & ~frame["local_id"].isin(known)]
        for rid, lid in zip(bad["_row_id"], bad["local_id"], strict=True):
            out.append(finding("ORPHAN_ROW", name, int(rid), "local_id", lid, local_id=lid))
    return out


def missing_children(tables: dict[str, pd.DataFrame]) -> list[Finding]:
    if "patient" not in tables:
        return []
    patient = tables["patient"]
    out = []
    for child, rule in CHILD_RULES.items():
        if child not in tables:
            continue
        have = set(tables[child]["local_id"].dropna())
        for rid, lid in zip(patient["_row_id"], patient["local_id"], strict=True):
            if pd.notna(lid) and lid not in have:
                out.append(finding(rule, "patient", int(rid), "", "", local_id=lid))
    return out


def reference_dates(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per patient: first infusion date and first CR assessment date."""
    refs = pd.DataFrame(index=pd.Index([], name="local_id"))
    if "infusion" in tables:
        refs = refs.join(tables["infusion"].groupby("local_id")["infusion_date"].min(), how="outer")
    if "response" in tables:
        r = tables["response"]
        cr = r[r["response"] == "CR"].groupby("local_id")["assessment_date"].min().rename("cr_date")
        refs = refs.join(cr, how="outer")
    return refs


def date_order(check: Check, frame: pd.DataFrame, refs: pd.DataFrame) -> list[Finding]:
    later, earlier = check.columns
    if later not in frame.columns:
        return []
    if earlier in frame.columns:
        ref = frame[earlier]
    elif earlier in refs.columns:
        ref = frame["local_id"].map(refs[earlier])
    else:
        return []
    bad = frame[frame[later].notna() & ref.notna() & (frame[later] < ref)]
    return [finding(check.rule_id, check.table, int(r["_row_id"]), later, _d(r[later]), local_id=r["local_id"],
                    expected=_d(ref.loc[i])) for i, r in bad.iterrows()]


def relapse_without_cr(tables: dict[str, pd.DataFrame], refs: pd.DataFrame) -> list[Finding]:
    if "outcome" not in tables or "cr_date" not in refs.columns:
        return []
    o = tables["outcome"]
    cr = o["local_id"].map(refs["cr_date"])
    bad = o[o["relapse_date"].notna() & cr.isna()]
    return [finding("RELAPSE_WITHOUT_CR", "outcome", int(r["_row_id"]), "relapse_date", _d(r["relapse_date"]),
                    local_id=r["local_id"]) for _, r in bad.iterrows()]


def mrd_flag(frame: pd.DataFrame) -> list[Finding]:
    both = frame[frame["mrd_pct"].notna() & frame["mrd_negative"].notna()]
    bad = both[(both["mrd_pct"] < catalog()["MRD_INCONSISTENT"].limit) != both["mrd_negative"].astype(bool)]
    return [finding("MRD_INCONSISTENT", "response", int(r["_row_id"]), "mrd_negative", r["mrd_negative"],
                    local_id=r["local_id"], expected=r["mrd_pct"]) for _, r in bad.iterrows()]


def eligibility(patient: pd.DataFrame) -> list[Finding]:
    out = []
    for check in (c for c in catalog().values() if c.check_type == "eligibility"):
        rule, col, limit = check.rule_id, check.columns[0], check.limit
        bad = patient[patient[col].notna() & (patient[col] >= limit)]
        out += [finding(rule, "patient", int(r["_row_id"]), col, r[col], local_id=r["local_id"])
                for _, r in bad.iterrows()]
    return out


def test_records(patient: pd.DataFrame, names: pd.Series) -> list[Finding]:
    """A name or id that looks like a test entry. The name itself is never echoed."""
    out = []
    for _, r in patient.iterrows():
        lid = r["local_id"]
        name = names.get(lid) if lid is not None else None
        why = None
        if isinstance(name, str) and TEST_NAME.search(name):
            why = f"name matches the test-record pattern /{TEST_NAME.search(name).group(0).lower()}/"
        elif isinstance(lid, str) and TEST_NAME.search(lid):
            why = "local id contains 'test'"
        if why:
            out.append(finding("TEST_RECORD", "patient", int(r["_row_id"]), "name", "***", local_id=lid, detail=why))
    return out


def _d(v: object) -> str:
    return v.date().isoformat() if isinstance(v, pd.Timestamp) else str(v)
