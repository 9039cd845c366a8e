"""center_d export: an SPSS .sav, one row per patient, coded variables with value labels.

Days are relative to infusion (day 0) and the infusion date is given once, as a date.
CRS is graded on Lee 2014 and neurotoxicity on CTCAE v4, with the ASTCT 2019 components
recorded per episode, so the ETL regrades. IL-6 is in ng/mL; the CAR-T dose is total
cells (10^8) plus body weight. Variables and codes are listed in sites/README.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat

from sites.twin.tables import courses_by_patient, exact_quotient, peak_samples

O2 = ["none", "blow_by", "low_flow_nasal", "high_flow_nasal", "facemask", "nonrebreather",
      "venturi", "cpap", "bipap", "mechanical_ventilation"]
O2_LABELS = ["no oxygen", "blow-by", "low-flow nasal cannula (<=6 L/min)",
             "high-flow nasal cannula (>6 L/min)", "facemask", "non-rebreather mask",
             "Venturi mask", "CPAP", "BiPAP", "mechanical ventilation"]
LOC = ["awake", "voice", "tactile", "unarousable"]
SEIZURE = ["none", "self_limited", "prolonged"]
EDEMA = ["none", "focal", "diffuse"]
AGENT = {"dexamethasone": 1, "methylprednisolone": 2}
RESPONSE = {"CR": 1, "PR": 2, "NR": 3, "PD": 4}
SAV_STAMP = b"01 Mar 2308:00:00"  # creation date + time, fixed for reproducible files
UNLABELLED_CODE = 99  # what an unknown source code becomes: a value with no label
NO_YES = {0.0: "no", 1.0: "yes"}

VALUE_LABELS = {
    "sex": {1.0: "male", 2.0: "female"},
    "phpos": NO_YES, "hypot": NO_YES, "motor": NO_YES, "toci": NO_YES, "mrdneg": NO_YES,
    "dstatus": {1.0: "primary refractory", 2.0: "relapsed"},
    "crs_lee": {0.0: "no CRS", **{float(g): f"grade {g}" for g in range(1, 5)},
                5.0: "grade 5 (death)"},
    "neu_ctc": {0.0: "no neurotoxicity", **{float(g): f"grade {g}" for g in range(1, 5)},
                5.0: "grade 5 (death)"},
    "o2dev": {float(i): lab for i, lab in enumerate(O2_LABELS)},
    "loc": {0.0: "awakens spontaneously", 1.0: "awakens to voice",
            2.0: "awakens only to tactile stimulus", 3.0: "unarousable / stupor / coma"},
    "seiz": {0.0: "none", 1.0: "self-limited", 2.0: "prolonged / repetitive"},
    "edema": {0.0: "none", 1.0: "focal", 2.0: "diffuse"},
    "ster_ag": {0.0: "no steroids", 1.0: "dexamethasone", 2.0: "methylprednisolone"},
    "resp": {1.0: "CR", 2.0: "PR", 3.0: "NR", 4.0: "PD"},
}
LABELS = {
    "pid": "Study patient number", "name": "Patient name", "mrn": "Hospital record number",
    "dob": "Date of birth", "phone": "Phone", "sex": "Sex", "phpos": "Ph+ (BCR-ABL1)",
    "dstatus": "Disease status at CAR-T", "nrel": "Number of prior relapses",
    "prlines": "Prior therapy lines", "blasts": "BM blasts before CAR-T (%)",
    "ecog": "ECOG before CAR-T", "weight": "Body weight at infusion (kg)",
    "infdate": "CAR-T infusion date (day 0)", "cells_e8": "Total CAR-T cells infused (10^8)",
    "crs_lee": "CRS grade (Lee 2014)", "crs_on": "CRS onset (day)",
    "crs_res": "CRS resolution (day)", "tmax": "CRS max temperature (C)",
    "hypot": "CRS hypotension", "vaso": "CRS number of vasopressors",
    "o2dev": "CRS most intensive O2 device", "o2flow": "CRS O2 flow (L/min)",
    "neu_ctc": "Neurotoxicity grade (CTCAE v4.03)", "neu_on": "Neurotoxicity onset (day)",
    "neu_res": "Neurotoxicity resolution (day)", "ice": "Lowest ICE score (age > 12)",
    "capd": "Highest CAPD score (age <= 12)", "loc": "Worst level of consciousness",
    "seiz": "Worst seizure", "motor": "Deep focal motor weakness", "edema": "Cerebral edema",
    "ster_ag": "Steroid agent", "ster_on": "Steroid start (day)",
    "ster_off": "Steroid last dose (day)", "ster_mg": "Steroid cumulative dose (mg of agent)",
    "toci": "Tocilizumab given", "toci_on": "Tocilizumab start (day)",
    "toci_off": "Tocilizumab last dose (day)", "toci_mg": "Tocilizumab cumulative dose (mg)",
    "il6_ng": "Peak IL-6 (ng/mL)", "il6_day": "Peak IL-6 sample (day)",
    "ferr": "Peak ferritin (ng/mL)", "ferr_day": "Peak ferritin sample (day)",
    "carcp": "Peak CAR copies (copies/ug gDNA)", "car_day": "Peak CAR copies sample (day)",
    "resp": "Response at day-30 assessment", "resp_day": "Response assessment (day)",
    "mrd": "BM MRD by flow (%)", "mrdneg": "MRD negative (<0.01%)",
    "rel_day": "Relapse (day)", "death_day": "Death (day)", "last_day": "Last contact (day)",
}
FORMATS = {"il6_ng": "F12.6", "cells_e8": "F10.4", "ster_mg": "F12.4", "mrd": "F10.4",
           "blasts": "F8.2", "weight": "F8.1", "tmax": "F8.1", "o2flow": "F8.1",
           "ferr": "F10.1", "carcp": "F10.1", "toci_mg": "F8.1"}
INTEGER_VARS = ("sex", "phpos", "dstatus", "nrel", "prlines", "ecog", "crs_lee", "crs_on",
                "crs_res", "hypot", "vaso", "o2dev", "neu_ctc", "neu_on", "neu_res", "ice",
                "capd", "loc", "seiz", "motor", "edema", "ster_ag", "ster_on", "ster_off",
                "toci", "toci_on", "toci_off", "il6_day", "ferr_day", "car_day", "resp",
                "resp_day", "mrdneg", "rel_day", "death_day", "last_day")
FORMATS |= {v: "F8.0" for v in INTEGER_VARS}  # display only: every value is a double


def _f(v) -> float:
    return np.nan if v is None or v is pd.NA or pd.isna(v) else float(v)


def _code(codes: list[str], v) -> float:
    if v is None or pd.isna(v):
        return np.nan
    return float(codes.index(v)) if v in codes else float(UNLABELLED_CODE)


def patient_row(r, peaks: dict, courses: dict) -> dict:
    crs = pd.notna(r.crs_grade) and int(r.crs_grade) > 0
    neu = pd.notna(r.icans_grade) and int(r.icans_grade) > 0
    st, toci = courses.get((r.local_id, "steroid")), courses.get((r.local_id, "tocilizumab"))

    def c(ok, v):
        return _f(v) if ok else np.nan

    row = {"pid": r.local_id, "name": r.full_name, "mrn": r.mrn, "dob": r.birth_date,
           "phone": r.phone, "sex": {"M": 1.0, "F": 2.0}[r.sex], "phpos": float(r.ph_positive),
           "dstatus": 1.0 if r.disease_status == "primary_refractory" else 2.0,
           "nrel": _f(r.n_relapses), "prlines": _f(r.prior_lines), "blasts": _f(r.bm_blasts_pct),
           "ecog": _f(r.ecog), "weight": _f(r.weight_kg), "infdate": r.infusion_date,
           "cells_e8": round(float(r.dose_1e6_per_kg) * float(r.weight_kg) / 100.0, 4),
           "crs_lee": _f(r.crs_lee_grade) if crs else 0.0, "crs_on": c(crs, r.crs_onset_day),
           "crs_res": c(crs, r.crs_resolution_day), "tmax": c(crs, r.crs_max_temp_c),
           "hypot": c(crs, r.crs_hypotension), "vaso": c(crs, r.crs_n_vasopressors),
           "o2dev": _code(O2, r.crs_o2_device) if crs else np.nan,
           "o2flow": c(crs, r.crs_o2_flow_l_min),
           "neu_ctc": _f(r.icans_ctcae_grade) if neu else 0.0,
           "neu_on": c(neu, r.icans_onset_day), "neu_res": c(neu, r.icans_resolution_day),
           "ice": c(neu, r.icans_ice_score), "capd": c(neu, r.icans_capd_score),
           "loc": _code(LOC, r.icans_consciousness) if neu else np.nan,
           "seiz": _code(SEIZURE, r.icans_seizure) if neu else np.nan,
           "motor": c(neu, r.icans_motor_weakness),
           "edema": _code(EDEMA, r.icans_cerebral_edema) if neu else np.nan,
           "ster_ag": float(AGENT[st.agent]) if st is not None else 0.0,
           "ster_on": _f(st.start_day) if st is not None else np.nan,
           "ster_off": _f(st.end_day) if st is not None else np.nan,
           "ster_mg": _f(st.cumulative_dose_mg) if st is not None else np.nan,
           "toci": 1.0 if toci is not None else 0.0,
           "toci_on": _f(toci.start_day) if toci is not None else np.nan,
           "toci_off": _f(toci.end_day) if toci is not None else np.nan,
           "toci_mg": _f(toci.cumulative_dose_mg) if toci is not None else np.nan}
    for var, analyte, scale in (("il6_ng", "il6", 1000.0), ("ferr", "ferritin", 1.0),
                                ("carcp", "car_copies", 1.0)):
        day, value = peaks.get((r.local_id, analyte), (np.nan, np.nan))
        row[var] = exact_quotient(value, scale)
        row[{"il6_ng": "il6_day", "ferr": "ferr_day", "carcp": "car_day"}[var]] = _f(day)
    row |= {"resp": float(RESPONSE[r.response]), "resp_day": _f(r.response_day),
            "mrd": _f(r.mrd_pct), "mrdneg": _f(r.mrd_negative), "rel_day": _f(r.relapse_day),
            "death_day": _f(r.death_day), "last_day": _f(r.last_contact_day)}
    return row


def write(rows: pd.DataFrame, path: Path, rng: np.random.Generator) -> None:
    """Write center_d's .sav (rng unused), with a fixed creation stamp in the header."""
    peaks, courses = peak_samples(rows), courses_by_patient(rows)
    df = pd.DataFrame([patient_row(r, peaks, courses) for r in rows.itertuples()])
    pyreadstat.write_sav(df, str(path), file_label="CAR-T follow-up, center D",
                         column_labels={k: LABELS[k] for k in df.columns},
                         variable_value_labels=VALUE_LABELS, variable_format=FORMATS)
    _fix_stamp(path)


def _fix_stamp(path: Path) -> None:
    """pyreadstat writes the wall-clock time into the file header (bytes 92..108: creation
    date 'dd Mon yy' then time 'hh:mm:ss'); pin it so regeneration is byte-identical."""
    with open(path, "r+b") as fh:
        head = fh.read(4)
        if head != b"$FL2":
            raise ValueError(f"{path}: not an SPSS system file (header {head!r})")
        fh.seek(92)
        fh.write(SAV_STAMP)
