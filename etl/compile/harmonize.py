"""Built-in harmonization after mapping: what every CAR-T center needs, no YAML required.

- toxicity: ASTCT 2019 grade from the source scale (crosswalk) or re-derived from the
  recorded components (`etl.compile.grading`), with a GRADE_DISAGREES warning when they differ;
- toxicity_treatment: steroid doses as dexamethasone equivalent (schemas/codelists/agent.csv);
- response: `mrd_negative` from `mrd_pct` (below the MRD_INCONSISTENT cut-off of the check
  catalog, 0.01 %) when the center did not send it;
- patient: age at infusion from the date of birth (a direct identifier, then dropped).
"""
from __future__ import annotations

import pandas as pd

from etl.compile import convert
from etl.compile.grading import harmonize_frame
from schemas.catalog import Finding, catalog, finding
from schemas.model import code_attr


def harmonize_site(tables: dict[str, pd.DataFrame], birth_dates: pd.Series | None,
                   reported: dict[str, set[tuple[int, str]]] | None = None) -> list[Finding]:
    """Fill harmonized columns in place; return findings (grade problems and disagreements).
    `reported`: table -> (row id, column) cells already explained by a finding; the grade
    columns a bad source grade leaves empty are added, so the field rules do not report
    the same bad cell again (one finding for one bad cell)."""
    out: list[Finding] = []
    if "patient" in tables and "infusion" in tables and birth_dates is not None:
        explained = reported.setdefault("patient", set()) if reported is not None else set()
        _age(tables["patient"], tables["infusion"], birth_dates, explained)
    if "toxicity" in tables and len(tables["toxicity"]):
        explained = reported.setdefault("toxicity", set()) if reported is not None else set()
        out += _grades(tables["toxicity"], tables.get("patient"), explained)
    if "toxicity_treatment" in tables:
        _dex_equivalent(tables["toxicity_treatment"])
    if "response" in tables:
        r = tables["response"]
        fill = r["mrd_negative"].isna() & r["mrd_pct"].notna()
        r.loc[fill, "mrd_negative"] = r.loc[fill, "mrd_pct"] < catalog()["MRD_INCONSISTENT"].limit
    return out


def _grades(tox: pd.DataFrame, patient: pd.DataFrame | None, explained: set[tuple[int, str]]) -> list[Finding]:
    """ASTCT grades filled in place. A grade that cannot be graded is one GRADE_OUT_OF_SCALE
    finding on source_grade; the grade columns it leaves empty are `explained`, not
    REQUIRED_MISSING too. With no grade or no known scale there is nothing to grade: that
    cell's own finding (REQUIRED_MISSING, UNKNOWN_CODE, TYPE_MISMATCH...) says why."""
    graded = harmonize_frame(tox, patient)
    missing_grade = tox["grade_astct"].isna()
    tox.loc[missing_grade, "grade_astct"] = graded.loc[missing_grade, "grade_astct"]
    missing_method = tox["grade_method"].isna()
    tox.loc[missing_method, "grade_method"] = graded.loc[missing_method, "grade_method"]
    scales = set(code_attr("grading_scale", "max_grade"))
    out = []
    for i, rule in graded["rule_id"].dropna().items():
        row = tox.loc[i]
        if rule == "GRADE_OUT_OF_SCALE":
            rid = int(row["_row_id"])
            explained.update({(rid, "grade_astct"), (rid, "grade_method"), (rid, "source_grade")})
            if pd.isna(row["source_grade"]) or row["source_scale"] not in scales:
                continue
        value = row["source_grade"] if rule == "GRADE_OUT_OF_SCALE" else row["grade_astct"]
        out.append(finding(rule, "toxicity", int(row["_row_id"]),
                           "source_grade" if rule == "GRADE_OUT_OF_SCALE" else "grade_astct", value,
                           local_id=row["local_id"], expected=row["source_scale"],
                           detail=graded.at[i, "message"]))
    return out


def _dex_equivalent(tt: pd.DataFrame) -> None:
    factors = {k: float(v) for k, v in code_attr("agent", "dex_equiv_factor").items() if v}
    need = tt["dex_equiv_mg"].isna() & tt["cumulative_dose_mg"].notna() & tt["agent"].isin(factors)
    tt.loc[need, "dex_equiv_mg"] = (tt.loc[need, "cumulative_dose_mg"]
                                    * tt.loc[need, "agent"].map(factors)).round(4)


def birth_dates_needed(tables: dict[str, pd.DataFrame]) -> set[str]:
    """The local ids whose birth date `harmonize_site` reads: patients without an age."""
    patient = tables.get("patient")
    if patient is None or "infusion" not in tables:
        return set()
    return set(patient.loc[_ageless(patient), "local_id"].dropna())


def _ageless(patient: pd.DataFrame) -> pd.Series:
    """The patients whose age `_age` fills from the birth date."""
    return patient["age_years"].isna()


def _age(patient: pd.DataFrame, infusion: pd.DataFrame, birth_dates: pd.Series,
         explained: set[tuple[int, str]]) -> None:
    """Age at the first infusion from the birth date. With a birth date but no infusion date
    the age is `explained` by the infusion's own finding (REQUIRED_MISSING, DATE_UNPARSEABLE
    or MISSING_INFUSION): one missing date is one finding. With no birth date the age's
    REQUIRED_MISSING is the finding."""
    first = infusion.groupby("local_id")["infusion_date"].min().to_dict()
    births = birth_dates.to_dict()
    need = _ageless(patient)
    ages = {}
    for i, lid, rid in zip(patient.index[need], patient.loc[need, "local_id"], patient.loc[need, "_row_id"],
                           strict=True):
        born, at = births.get(lid), first.get(lid)
        if born is None or pd.isna(born):
            continue
        if at is None or pd.isna(at):
            explained.add((int(rid), "age_years"))
        else:
            ages[i] = convert.age_at(pd.Timestamp(born).date(), pd.Timestamp(at).date())
    if ages:   # plain dicts above and one assignment: per-patient Series access cost ~0.2 ms each
        patient.loc[list(ages), "age_years"] = list(ages.values())
