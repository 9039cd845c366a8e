"""center_a export: one row per patient, UTF-8 CSV, English headers, ISO dates.

Grades are native ASTCT 2019; labs and treatments are wide (peak value + sample date,
one steroid course and one tocilizumab course as column groups). Columns and codes are
documented in sites/README.md; the ETL melts the wide groups into long rows.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from sites.twin.tables import courses_by_patient, day_to_date, peak_samples

SEX = {"M": "Male", "F": "Female"}
STATUS = {"primary_refractory": "primary refractory", "relapsed": "relapsed"}


def cell(v) -> str:
    """CSV text of one value: '' for missing, yes/no for booleans, full float precision."""
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        return np.format_float_positional(float(v), trim="0")  # shortest round-trip digits
    return str(v)


def _int(v):
    return None if v is None or pd.isna(v) else int(v)


def patient_record(r, peaks: dict, courses: dict) -> dict:
    """The wide row for one truth-like patient row."""
    def on(day):
        d = day_to_date(r.infusion_date, day)
        return d.isoformat() if d else None

    rec = {"patient_id": r.local_id, "name": r.full_name, "mrn": r.mrn,
           "dob": r.birth_date.isoformat(), "phone": r.phone, "sex": SEX.get(r.sex, r.sex),
           "age": _int(r.age_years), "ph_positive": r.ph_positive,
           "disease_status": STATUS[r.disease_status], "n_prior_relapses": _int(r.n_relapses),
           "prior_lines": _int(r.prior_lines), "bm_blasts_pct": r.bm_blasts_pct,
           "ecog": _int(r.ecog), "weight_kg": r.weight_kg,
           "infusion_date": r.infusion_date.isoformat(), "dose_1e6_per_kg": r.dose_1e6_per_kg}
    for pre in ("crs", "icans"):
        rec[f"{pre}_grade"] = _int(getattr(r, f"{pre}_grade")) or 0
        rec[f"{pre}_onset_date"] = on(getattr(r, f"{pre}_onset_day"))
        rec[f"{pre}_resolution_date"] = on(getattr(r, f"{pre}_resolution_day"))
    st, toci = courses.get((r.local_id, "steroid")), courses.get((r.local_id, "tocilizumab"))
    rec |= {"steroid_agent": st.agent.capitalize() if st is not None else None,
            "steroid_start_date": on(st.start_day) if st is not None else None,
            "steroid_end_date": on(st.end_day) if st is not None else None,
            "steroid_total_mg": st.cumulative_dose_mg if st is not None else None,
            "tocilizumab_start_date": on(toci.start_day) if toci is not None else None,
            "tocilizumab_end_date": on(toci.end_day) if toci is not None else None,
            "tocilizumab_total_mg": toci.cumulative_dose_mg if toci is not None else None}
    for analyte, col in (("il6", "il6_peak_pg_ml"), ("ferritin", "ferritin_peak_ng_ml"),
                         ("car_copies", "car_peak_copies_per_ug")):
        day, value = peaks.get((r.local_id, analyte), (None, None))
        rec[col] = value
        rec[col.split("_peak")[0] + "_peak_date"] = on(day)
    rec |= {"response_d30": r.response, "response_date": on(r.response_day),
            "mrd_pct": r.mrd_pct,
            "mrd_negative": r.mrd_negative,
            "relapse_date": on(r.relapse_day), "death_date": on(r.death_day),
            "last_contact_date": on(r.last_contact_day)}
    return rec


def write(rows: pd.DataFrame, path: Path, rng: np.random.Generator) -> None:
    """Write center_a's CSV (rng unused: center_a's presentation has no random part)."""
    peaks, courses = peak_samples(rows), courses_by_patient(rows)
    records = [patient_record(r, peaks, courses) for r in rows.itertuples()]
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(records[0].keys())
        for rec in records:
            w.writerow(cell(v) for v in rec.values())
