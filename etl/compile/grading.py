"""Harmonize CRS and ICANS grades onto ASTCT 2019.

A center grades a toxicity episode on its own scale (``source_scale``,
``source_grade``). This module turns that into ``grade_astct`` and records
how (``grade_method``):

- ``native``   the center graded on ASTCT2019;
- ``regraded`` components were recorded and the ASTCT grade was derived from
  them (Lee DW et al., Biol Blood Marrow Transplant 2019;25:625-638, tables
  for CRS and ICANS);
- ``mapped``   crosswalk only (``schemas/crosswalks/<scale>_<tox>.csv``).

Numbers that belong to the consensus' code lists (O2 device, consciousness,
seizure, cerebral edema) are read from ``schemas/codelists/*.csv``; only the
score bands (temperature, flow, ICE, CAPD, vasopressor count) live here.

Everything is pure: no I/O beyond reading those CSVs once (cached).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd

from schemas.model import code_attr

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
RULE_OUT_OF_SCALE = "GRADE_OUT_OF_SCALE"
RULE_DISAGREES = "GRADE_DISAGREES"
NATIVE_SCALE = "ASTCT2019"
FEVER_C = 38.0
LOW_FLOW_MAX_L_MIN = 6.0
CAPD_MAX_AGE_YEARS = 12


@dataclass(frozen=True)
class MappedGrade:
    """A source grade and the ASTCT grade its crosswalk gives."""

    tox_type: str
    source_scale: str
    source_grade: int
    astct_grade: int
    note: str


class GradeOutOfScale(ValueError):
    """A source grade the scale does not have (or a scale with no crosswalk).

    Carries the fields of check ``GRADE_OUT_OF_SCALE`` so the caller can
    quarantine the row: ``rule_id``, ``column``, ``value``, ``expected``.
    """

    rule_id = RULE_OUT_OF_SCALE
    column = "source_grade"

    def __init__(self, value: object, expected: str) -> None:
        self.value = value
        self.expected = expected
        super().__init__(f"{self.column} = {value} outside the {expected} scale")


@dataclass(frozen=True)
class Harmonized:
    """The outcome of grading one toxicity row.

    ``grade_astct``/``grade_method`` are None when ``problem`` is set
    (an error: quarantine with ``GRADE_OUT_OF_SCALE``). ``warning`` is a
    ``GRADE_DISAGREES`` message: crosswalk and components disagree.
    """

    grade_astct: int | None
    grade_method: str | None
    warning: str | None = None
    problem: GradeOutOfScale | None = None


_NO_AGE = object()   # harmonize_frame: the age part of a CRS row's key


def _missing(value: object) -> bool:
    """None, NaN, NaT and pd.NA are missing; anything else is a value."""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # list-likes are values, not missing
        return False


def _codelist_grades(name: str, column: str) -> dict[str, int]:
    return {code: int(v) for code, v in code_attr(name, column).items()}


def _max_grade(scale: str) -> int | None:
    value = code_attr("grading_scale", "max_grade").get(scale)
    return None if value is None else int(value)


@cache
def crosswalk(source_scale: str, tox_type: str) -> dict[int, tuple[int, str]]:
    """``{source_grade: (astct_grade, note)}``; empty when no file exists."""
    path = SCHEMAS / "crosswalks" / f"{source_scale.lower()}_{tox_type.lower()}.csv"
    if not path.exists():
        return {}
    with open(path, newline="") as fh:
        return {
            int(r["source_grade"]): (int(r["astct_grade"]), r.get("note") or "")
            for r in csv.DictReader(fh)
        }


def map_grade(tox_type: str, source_scale: str, source_grade: object) -> MappedGrade:
    """Map a source grade to ASTCT 2019 by crosswalk.

    Raises ``GradeOutOfScale`` for a grade outside ``0..max_grade`` of the scale
    (``grading_scale.csv``), a non-integer grade, an unknown scale or a scale
    with no crosswalk for this toxicity.
    """
    max_grade = _max_grade(source_scale)
    if max_grade is None:  # before building a path from the value
        raise GradeOutOfScale(source_grade, f"{source_scale} (unknown)")
    table = crosswalk(source_scale, tox_type)
    if not table:
        raise GradeOutOfScale(source_grade, f"{source_scale} (no {tox_type} crosswalk)")
    expected = f"{source_scale} {tox_type} 0..{max_grade}"
    if _missing(source_grade):
        raise GradeOutOfScale(source_grade, expected)
    try:
        as_float = float(source_grade)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise GradeOutOfScale(source_grade, expected) from None
    if not as_float.is_integer() or not 0 <= as_float <= max_grade:
        raise GradeOutOfScale(source_grade, expected)
    grade = int(as_float)
    if grade not in table:
        raise GradeOutOfScale(source_grade, expected)
    astct, note = table[grade]
    return MappedGrade(tox_type, source_scale, grade, astct, note)


def crs_grade_from_components(
    max_temp_c: float | None,
    hypotension: bool | None,
    n_vasopressors: int | None,
    o2_device: str | None,
    o2_flow_l_min: float | None,
) -> int | None:
    """ASTCT 2019 CRS grade from its components; None if all are missing.

    Hypotension: vasopressors >= 2 (vasopressin not counted) -> 4, one -> 3,
    hypotension without vasopressors -> 2. Hypoxia: the device's grade from
    ``o2_device.csv``; ``low_flow_nasal`` above 6 L/min counts as high-flow (3).
    The grade is the more severe of the two.

    Masked fever (decision): the consensus lets hypotension/hypoxia drive the
    grade once fever has occurred, as antipyretics or tocilizumab/steroids mask
    it. A row here is an episode the center already called CRS, so when
    hypotension or hypoxia is present the grade is theirs whatever the recorded
    temperature. With neither, fever >= 38.0 gives 1, a known lower
    temperature gives 0 (no CRS by ASTCT) and an unknown one gives None.
    """
    parts = (max_temp_c, hypotension, n_vasopressors, o2_device, o2_flow_l_min)
    if all(_missing(p) for p in parts):
        return None
    pressors = 0 if _missing(n_vasopressors) else int(n_vasopressors)  # type: ignore[arg-type]
    if pressors >= 2:
        circulation = 4
    elif pressors == 1:
        circulation = 3
    else:
        circulation = 2 if (not _missing(hypotension) and bool(hypotension)) else 0
    oxygen = 0
    if not _missing(o2_device):
        oxygen = _codelist_grades("o2_device", "astct_crs_grade").get(str(o2_device), 0)
        if (
            o2_device == "low_flow_nasal"
            and not _missing(o2_flow_l_min)
            and float(o2_flow_l_min) > LOW_FLOW_MAX_L_MIN  # type: ignore[arg-type]
        ):
            oxygen = 3
    organ = max(circulation, oxygen)
    if organ:
        return organ
    if _missing(max_temp_c):
        return None
    return 1 if float(max_temp_c) >= FEVER_C else 0  # type: ignore[arg-type]


def _encephalopathy_grade(
    age_years: float | None, ice_score: int | None, capd_score: int | None
) -> int | None:
    child = not _missing(age_years) and float(age_years) <= CAPD_MAX_AGE_YEARS  # type: ignore[arg-type]
    adult = not _missing(age_years) and not child
    if not child and not _missing(ice_score):  # age > 12, or unknown with an ICE
        ice = int(ice_score)  # type: ignore[arg-type]
        return 0 if ice >= 10 else 1 if ice >= 7 else 2 if ice >= 3 else 3
    if not adult and not _missing(capd_score):  # age <= 12, or unknown with a CAPD
        capd = int(capd_score)  # type: ignore[arg-type]
        return 0 if capd == 0 else 1 if capd <= 8 else 3
    return None


def icans_grade_from_components(
    age_years: float | None,
    ice_score: int | None,
    capd_score: int | None,
    consciousness: str | None,
    seizure: str | None,
    motor_weakness: bool | None,
    cerebral_edema: str | None,
) -> int | None:
    """ASTCT 2019 ICANS grade: the most severe component; None if all missing.

    ICE (age > 12): 10 -> 0, 7-9 -> 1, 3-6 -> 2, 0-2 -> 3 (0 and unarousable
    -> 4 via consciousness). CAPD (age <= 12): 0 -> 0, 1-8 -> 1 (2 when the
    child awakens only to voice, via consciousness), >= 9 -> 3, unable to
    perform -> 4 via consciousness ``unarousable``. The score that does not
    fit the age is ignored; with age unknown, ICE is used, else CAPD.
    Consciousness, seizure and cerebral edema grades come from their code
    lists' ``astct_icans_grade`` column; deep focal motor weakness -> 4.
    (``consciousness.csv`` gives ``awake`` 0: "awakens spontaneously", the
    consensus' grade 1, is not told apart from normal there.)
    """
    grades = [_encephalopathy_grade(age_years, ice_score, capd_score)]
    for name, value in (
        ("consciousness", consciousness),
        ("seizure", seizure),
        ("cerebral_edema", cerebral_edema),
    ):
        if not _missing(value):
            grades.append(_codelist_grades(name, "astct_icans_grade").get(str(value)))
    if not _missing(motor_weakness):
        grades.append(4 if bool(motor_weakness) else 0)
    known = [g for g in grades if g is not None]
    return max(known) if known else None


CRS_COMPONENTS = ("max_temp_c", "hypotension", "n_vasopressors", "o2_device", "o2_flow_l_min")
ICANS_COMPONENTS = (
    "ice_score",
    "capd_score",
    "consciousness",
    "seizure",
    "motor_weakness",
    "cerebral_edema",
)


def grade_from_components(row: Mapping[str, object]) -> int | None:
    """Component-derived ASTCT grade of a toxicity row (None: not derivable)."""
    if row.get("tox_type") == "CRS":
        return crs_grade_from_components(*(row.get(c) for c in CRS_COMPONENTS))
    if row.get("tox_type") == "ICANS":
        return icans_grade_from_components(
            row.get("age_years"), *(row.get(c) for c in ICANS_COMPONENTS)
        )
    return None


def _recorded(row: Mapping[str, object]) -> str:
    names = CRS_COMPONENTS if row.get("tox_type") == "CRS" else ("age_years", *ICANS_COMPONENTS)
    return ", ".join(f"{c}={row[c]}" for c in names if not _missing(row.get(c)))


def harmonize(row: Mapping[str, object]) -> Harmonized:
    """Grade one toxicity row on ASTCT 2019.

    ``row`` holds the toxicity columns of common.yml (``tox_type``,
    ``source_scale``, ``source_grade`` and any components) plus, for ICANS,
    ``age_years`` of the patient (decides CAPD vs ICE).

    Order: an out-of-scale grade is a problem (no grade). ASTCT2019 is kept as
    ``native``. A mapped grade 5 (death) stays ``mapped``: components cannot
    show death. Otherwise a component-derived grade >= 1 wins (``regraded``);
    a derived 0 is not used, since it would erase an episode the center
    recorded (fever masked, components charted after treatment) - it only
    warns. Without components the crosswalk grade is ``mapped``. Whenever the
    derived grade differs from the kept grade, ``warning`` says so.
    """
    tox, scale, grade = row.get("tox_type"), row.get("source_scale"), row.get("source_grade")
    try:
        mapped = map_grade(str(tox), str(scale), grade)
    except GradeOutOfScale as problem:
        return Harmonized(None, None, problem=problem)
    derived = grade_from_components(row)
    if scale == NATIVE_SCALE:
        kept, method = mapped.astct_grade, "native"
    elif mapped.astct_grade == 5 or not derived:
        kept, method = mapped.astct_grade, "mapped"
    else:
        kept, method = derived, "regraded"
    warning = None
    if derived is not None and derived != mapped.astct_grade:
        head = f"{scale} grade {mapped.source_grade} " + (
            "recorded" if scale == NATIVE_SCALE else f"maps to ASTCT {mapped.astct_grade}"
        )
        warning = f"{head} but components give ASTCT {derived} ({_recorded(row)})"
        if kept != derived:
            warning += f"; kept {kept}"
    return Harmonized(kept, method, warning)


def harmonize_frame(toxicity: pd.DataFrame, patient: pd.DataFrame | None = None) -> pd.DataFrame:
    """``harmonize`` over toxicity rows; same index, four new columns.

    Returns ``grade_astct`` (Int64), ``grade_method``, ``rule_id`` and
    ``message`` (``GRADE_OUT_OF_SCALE`` error or ``GRADE_DISAGREES`` warning,
    else null). ICANS ages come from ``toxicity.age_years`` if present, else
    from ``patient`` joined on ``site_id, local_id``.
    """
    rows = toxicity
    if "age_years" not in rows.columns and patient is not None and "age_years" in patient:
        ages = patient[["site_id", "local_id", "age_years"]].drop_duplicates(
            ["site_id", "local_id"]
        )
        rows = rows.merge(ages, on=["site_id", "local_id"], how="left").set_axis(toxicity.index)
    # rows with the same graded values get the same answer: each distinct one is graded once.
    # A row's key: each graded column's value with its type (None where missing); a CRS
    # grade does not depend on age, so a CRS row's key leaves the age out
    used = ["tox_type", "source_scale", "source_grade", "age_years", *CRS_COMPONENTS, *ICANS_COMPONENTS]
    n = len(rows)
    crs = (rows["tox_type"] == "CRS").to_numpy(dtype=bool, na_value=False) if "tox_type" in rows else [False] * n
    parts = []
    for c in used:
        if c not in rows.columns:
            parts.append([None] * n)
            continue
        missing = rows[c].isna().to_numpy()
        values = [None if m else (type(v), v) for m, v in zip(missing, rows[c].tolist(), strict=True)]
        if c == "age_years":
            values = [_NO_AGE if is_crs else v for is_crs, v in zip(crs, values, strict=True)]
        parts.append(values)
    first: dict[tuple, int] = {}
    which = [first.setdefault(key, i) for i, key in enumerate(zip(*parts, strict=True))] if n else []
    graded = {}
    for i, record in zip(first.values(), rows.iloc[list(first.values())].to_dict("records"), strict=True):
        h = harmonize(record)
        rule = RULE_OUT_OF_SCALE if h.problem else RULE_DISAGREES if h.warning else None
        graded[i] = (h.grade_astct, h.grade_method, rule, str(h.problem or "") or h.warning)
    frame = pd.DataFrame(
        [graded[i] for i in which], index=toxicity.index,
        columns=["grade_astct", "grade_method", "rule_id", "message"]
    )
    return frame.astype({"grade_astct": "Int64"})
