"""Planted defects: extra bad records the twin's exports carry beyond the 93 valid patients.

Patient-level defects sit on EXTRA fake patients cloned from a valid donor of the same
site (new local id, new identity), so that quarantining them leaves exactly the 93.
Only the NEGATIVE_LAB defect is an extra, non-peak lab row on a valid patient: lab rows
quarantine alone. `PLANTED` is the list the quarantine test checks, one entry per
(site, local id, rule). `extra_patients` gives the truth-like rows the writers render;
a `defect` column tells each writer which presentation-level damage to apply.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyreadstat
from python_calamine import CalamineWorkbook

from sites.twin.tables import normalize_truth

FILES = {"center_a": "cart_patients.csv", "center_b": "cart_export_2023-03.xlsx",
         "center_c": "cart_events.csv", "center_d": "cart_study.sav"}
# The valid center_c patient that carries the extra negative IL-6 sample (not its peak).
NEGATIVE_LAB_HOST = "C-101"
NEGATIVE_LAB_VALUE = -12.5
# The impossible date center_c writes for the unparseable-date defect.
BAD_DATE = "31/02/2021"


# Identities of the extra records, in each center's own style (all fake).
EXTRA_NAMES = {"center_a": ["Zhou Ping", "Lin Hui"], "center_b": ["郭欣", "罗兰", "何波"],
               "center_c": ["HU, Jiehua", "GAO, Lan"], "center_d": ["Bo Sun", "Xin Ma"]}
EXTRA_MRN = {"center_a": "MRN99000{}", "center_b": "ZY99000{}", "center_c": "990-00{}",
             "center_d": "999000{}"}


def fake_identity(site_id: str, k: int) -> dict[str, str]:
    """Name, MRN and phone of the k-th extra record of a site (deterministic, fake)."""
    return {"full_name": EXTRA_NAMES[site_id][k], "mrn": EXTRA_MRN[site_id].format(k + 1),
            "phone": f"170-0000-99{k + 1:02d}"}


@dataclass(frozen=True)
class Defect:
    """One planted defect: where it is and which rule of schemas/checks.csv must catch it."""

    site_id: str
    file: str
    local_id: str
    kind: str
    rule_id: str


def _d(site: str, local_id: str, kind: str, rule: str) -> Defect:
    return Defect(site, FILES[site], local_id, kind, rule)


PLANTED: list[Defect] = [
    _d("center_a", "A9901", "duplicate_conflict", "DUPLICATE_CONFLICT"),
    _d("center_a", "A9902", "test_record", "TEST_RECORD"),
    _d("center_b", "BJ-2099-901", "missing_infusion_date", "REQUIRED_MISSING"),
    _d("center_b", "BJ-2099-902", "death_before_infusion", "DEATH_BEFORE_INFUSION"),
    _d("center_b", "BJ-2099-903", "orphan_toxicity", "ORPHAN_ROW"),
    _d("center_c", "C-901", "unparseable_date", "DATE_UNPARSEABLE"),
    _d("center_c", "C-902", "relapse_before_cr", "RELAPSE_BEFORE_CR"),
    _d("center_c", NEGATIVE_LAB_HOST, "negative_lab", "NEGATIVE_LAB"),
    _d("center_d", "49901", "grade_out_of_scale", "GRADE_OUT_OF_SCALE"),
    _d("center_d", "49902", "unknown_code", "UNKNOWN_CODE"),
]
PATIENT_LEVEL = {d.local_id for d in PLANTED if d.kind != "negative_lab"}


def _donor(site: pd.DataFrame, k: int, mask: pd.Series) -> pd.Series:
    pool = site[mask] if mask.any() else site
    return pool.iloc[k % len(pool)].copy()


def _apply(row: pd.Series, kind: str) -> list[pd.Series]:
    """Make the canonical part of the defect; presentation damage is left to the writer."""
    if kind == "duplicate_conflict":
        twin = row.copy()
        twin["sex"] = "F" if row["sex"] == "M" else "M"
        return [row, twin]
    if kind == "test_record":
        row["full_name"] = "TEST PATIENT"
    elif kind == "death_before_infusion":
        row["death_day"] = -30  # a year typed wrong; last contact stays after infusion
    elif kind == "relapse_before_cr":
        row["relapse_day"] = int(row["response_day"]) - 7
    elif kind == "unparseable_date":
        row["relapse_day"] = int(row["response_day"]) + 30  # written as '31/02/2021'
    elif kind == "grade_out_of_scale":
        row["crs_lee_grade"] = 7
    elif kind == "unknown_code":
        row["crs_o2_device"] = "helmet"  # no value label at center_d
    return [row]


def extra_patients(truth: pd.DataFrame, site_id: str) -> pd.DataFrame:
    """Truth-like rows for the site's planted extra patients, with a `defect` column."""
    t = normalize_truth(truth)
    site = t[t.site_id == site_id].reset_index(drop=True)
    rows = []
    for k, d in enumerate(x for x in PLANTED if x.site_id == site_id and x.kind != "negative_lab"):
        needs_cr = d.kind in ("relapse_before_cr", "unparseable_date")
        mask = (site.response == "CR") if needs_cr else (site.crs_grade.fillna(0) >= 1)
        row = _donor(site, k, mask)
        row["local_id"] = d.local_id
        for col, v in fake_identity(site_id, k).items():
            row[col] = v
        for out in _apply(row, d.kind):
            out["defect"] = d.kind
            rows.append(out)
    return pd.DataFrame(rows).reset_index(drop=True)


def _csv_lines(path: Path, encoding: str, delimiter: str) -> list[tuple[int, list[str]]]:
    with open(path, encoding=encoding, newline="") as fh:
        return list(enumerate(csv.reader(fh, delimiter=delimiter), start=1))


def _where(d: Defect, path: Path) -> list[str]:
    """Human row references of one defect in its file (empty when it is missing)."""
    if d.site_id == "center_a":
        return [f"line {n}" for n, row in _csv_lines(path, "utf-8", ",") if row[0] == d.local_id]
    if d.site_id == "center_b":
        sheet = "毒性" if d.kind == "orphan_toxicity" else "患者"
        rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()
        hits = [f"sheet {sheet} row {n}" for n, row in enumerate(rows, start=1)
                if n > 2 and row[0] == d.local_id]
        if d.kind == "orphan_toxicity" and any(
                r[0] == d.local_id for r in CalamineWorkbook.from_path(str(path))
                .get_sheet_by_name("患者").to_python()):
            return []  # not an orphan after all
        return hits
    if d.site_id == "center_c":
        event = {"unparseable_date": "复发", "relapse_before_cr": "复发",
                 "negative_lab": "检验"}[d.kind]
        return [f"line {n}" for n, row in _csv_lines(path, "gbk", ";")
                if row[0] == d.local_id and row[1] == event
                and (d.kind != "negative_lab" or row[5].startswith("-"))
                and (d.kind != "unparseable_date" or row[2] == BAD_DATE)]
    df, _ = pyreadstat.read_sav(str(path))
    return [f"case {i + 1}" for i in df.index[df.pid == d.local_id]]


def locate(root: Path) -> list[tuple[Defect, list[str]]]:
    """Every planted defect with where a person finds it in the written exports."""
    return [(d, _where(d, Path(root) / d.site_id / "export" / d.file)) for d in PLANTED]
