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


def harmonize_site(tables: dict[str, pd.DataFrame], birth_dates: pd.Series | None) -> list[Finding]:
    """Fill harmonized columns in place; return findings (grade problems and disagreements)."""
    out: list[Finding] = []
    if "patient" in tables and "infusion" in tables and birth_dates is not None:
        _age(tables["patient"], tables["infusion"], birth_dates)
    if "toxicity" in tables and len(tables["toxicity"]):
        out += _grades(tables["toxicity"], tables.get("patient"))
    if "toxicity_treatment" in tables:
        _dex_equivalent(tables["toxicity_treatment"])
    if "response" in tables:
        r = tables["response"]
        fill = r["mrd_negative"].isna() & r["mrd_pct"].notna()
        r.loc[fill, "mrd_negative"] = r.loc[fill, "mrd_pct"] < catalog()["MRD_INCONSISTENT"].limit
    return out


def _grades(tox: pd.DataFrame, patient: pd.DataFrame | None) -> list[Finding]:
    graded = harmonize_frame(tox, patient)
    missing_grade = tox["grade_astct"].isna()
    tox.loc[missing_grade, "grade_astct"] = graded.loc[missing_grade, "grade_astct"]
    missing_method = tox["grade_method"].isna()
    tox.loc[missing_method, "grade_method"] = graded.loc[missing_method, "grade_method"]
    out = []
    for i, rule in graded["rule_id"].dropna().items():
        row = tox.loc[i]
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


def _age(patient: pd.DataFrame, infusion: pd.DataFrame, birth_dates: pd.Series) -> None:
    first = infusion.groupby("local_id")["infusion_date"].min().to_dict()
    births = birth_dates.to_dict()
    need = patient["age_years"].isna()
    ages = {}
    for i, lid in zip(patient.index[need], patient.loc[need, "local_id"], strict=True):
        born, at = births.get(lid), first.get(lid)
        if born is not None and at is not None and not pd.isna(at) and not pd.isna(born):
            ages[i] = convert.age_at(pd.Timestamp(born).date(), pd.Timestamp(at).date())
    for i, age in ages.items():   # plain dicts above: Series.get per patient cost ~0.2 ms each
        patient.at[i, "age_years"] = age
