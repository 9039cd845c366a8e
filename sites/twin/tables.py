"""The twin's expected warehouse content, and the long series every export renders.

`expected_tables(truth)` is the expected side of the round-trip test: what the common
schema (schemas/common.yml) should hold for the 93 valid patients after the ETL maps
the four center exports, before pseudonymization (site_id + local_id kept).

The same module derives the long facts the exports are written from (lab series,
treatment courses), so the writers and the expectation can never drift apart.
Lab series are seeded per patient (crc32 of site + local id), not by draw order.
"""

from __future__ import annotations

import zlib
from datetime import date, timedelta

import numpy as np
import pandas as pd

from sites.twin.cohort import BOOL_COLS

SEED = 20230301
PRODUCT = "CD19_41BB"
DEX_FACTOR = {"dexamethasone": 1.0, "methylprednisolone": 0.1875,
              "prednisone": 0.15, "hydrocortisone": 0.0375}
ANALYTES = {"il6": "peak_il6_pg_ml", "ferritin": "peak_ferritin_ng_ml",
            "car_copies": "peak_car_copies"}
# Unit text each center sends, per analyte: canonical, except IL-6 in ng/mL at center_d and
# ferritin in µg/L (micro sign U+00B5, = ng/mL) at center_b.
SOURCE_UNIT = {
    "center_a": {"il6": "pg/mL", "ferritin": "ng/mL", "car_copies": "copies/ug gDNA"},
    "center_b": {"il6": "pg/mL", "ferritin": "µg/L", "car_copies": "copies/ug gDNA"},
    "center_c": {"il6": "pg/mL", "ferritin": "ng/mL", "car_copies": "copies/ug gDNA"},
    "center_d": {"il6": "ng/mL", "ferritin": "ng/mL", "car_copies": "copies/ug gDNA"},
}
PEAK_ONLY_SITES = ("center_a", "center_d")  # one row per patient: peak sample only
NATIVE_SITES = ("center_a", "center_b", "center_c")
INT_COLS = ("age_years", "n_relapses", "prior_lines", "ecog", "crs_grade", "crs_lee_grade",
            "icans_grade", "icans_ctcae_grade")


def normalize_truth(truth: pd.DataFrame) -> pd.DataFrame:
    """Coerce a truth table (as read from CSV or built in memory) to clean Python types."""
    t = truth.copy()
    for col in ("local_id", "mrn", "phone"):
        t[col] = t[col].astype(str)
    for col in ("birth_date", "infusion_date"):
        t[col] = pd.to_datetime(t[col]).dt.date
    for col in BOOL_COLS:
        t[col] = t[col].map(_to_bool).astype(object)
    for col in INT_COLS:
        t[col] = pd.to_numeric(t[col]).astype("Int64")
    return t.sort_values(["site_id", "local_id"], kind="stable").reset_index(drop=True)


def _to_bool(v):
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, str):
        return {"true": True, "false": False, "1": True, "0": False}.get(v.strip().lower())
    return bool(v)


def day_to_date(infusion: date | None, day) -> date | None:
    """Day relative to infusion (day 0) -> calendar date; None stays None."""
    if infusion is None or day is None or pd.isna(day):
        return None
    return infusion + timedelta(days=int(day))


def exact_quotient(target: float, factor: float) -> float:
    """A float x near target/factor with x * factor == target exactly, when one exists.

    Writers send e.g. IL-6 in ng/mL (pg/mL / 1000) or methylprednisolone mg (dex-equivalent
    / 0.1875); the ETL multiplies back, and this makes that product reproduce the truth."""
    x = target / factor
    up, down = x, x
    for _ in range(8):
        for cand in (up, down):
            if cand * factor == target:
                return float(cand)
        up, down = float(np.nextafter(up, np.inf)), float(np.nextafter(down, -np.inf))
    return x


def _rng(row, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(f"{row.site_id}/{row.local_id}".encode())])


def lab_series(truth: pd.DataFrame, seed: int = SEED) -> pd.DataFrame:
    """All lab samples per patient: a few days, one of which holds the truth peak."""
    rows = []
    for r in normalize_truth(truth).itertuples():
        rng = _rng(r, seed)
        last = int(r.last_contact_day)
        onset = r.crs_onset_day
        il6_peak = int(onset) + 1 if pd.notna(onset) else int(rng.integers(2, 7))
        peaks = {"il6": il6_peak, "ferritin": il6_peak + int(rng.integers(2, 5)),
                 "car_copies": int(rng.integers(7, 15))}
        grids = {"il6": [0, 3, 7, 14], "ferritin": [0, 7, 14, 28], "car_copies": [4, 7, 14, 28]}
        for analyte, col in ANALYTES.items():
            peak = getattr(r, col)
            if peak is None or pd.isna(peak):
                continue
            peak_day = min(peaks[analyte], last)
            days = sorted({d for d in grids[analyte] if d <= last} | {peak_day})
            for d in days:
                is_peak = d == peak_day
                value = float(peak) if is_peak else round(float(peak) * rng.uniform(0.05, 0.85), 1)
                rows.append((r.site_id, r.local_id, analyte, d, value, is_peak))
    cols = ["site_id", "local_id", "analyte", "day", "value", "is_peak"]
    return pd.DataFrame(rows, columns=cols)


def treatment_courses(truth: pd.DataFrame) -> pd.DataFrame:
    """One row per steroid / tocilizumab course, days relative to infusion (end inclusive)."""
    rows = []
    for r in normalize_truth(truth).itertuples():
        if r.steroids:
            dex = float(r.steroid_dex_equiv_mg)
            mg = exact_quotient(dex, DEX_FACTOR[r.steroid_agent])
            start = int(r.steroid_start_day)
            rows.append((r.site_id, r.local_id, r.steroid_agent, start,
                         start + int(r.steroid_days) - 1, mg, dex))
        if r.tocilizumab:
            start = int(r.toci_start_day)
            rows.append((r.site_id, r.local_id, "tocilizumab", start,
                         start + int(r.toci_days) - 1, float(r.toci_mg), None))
    cols = ["site_id", "local_id", "agent", "start_day", "end_day", "cumulative_dose_mg",
            "dex_equiv_mg"]
    return pd.DataFrame(rows, columns=cols)


COMPONENTS = {  # ASTCT components: common column -> truth column (center_d carries them)
    "CRS": {"max_temp_c": "crs_max_temp_c", "hypotension": "crs_hypotension",
            "n_vasopressors": "crs_n_vasopressors", "o2_device": "crs_o2_device",
            "o2_flow_l_min": "crs_o2_flow_l_min"},
    "ICANS": {"ice_score": "icans_ice_score", "capd_score": "icans_capd_score",
              "consciousness": "icans_consciousness", "seizure": "icans_seizure",
              "motor_weakness": "icans_motor_weakness", "cerebral_edema": "icans_cerebral_edema"},
}


def _toxicity_rows(r) -> list[dict]:
    out = []
    native = r.site_id in NATIVE_SITES
    for tox, pre, scale, src in (("CRS", "crs", "LEE2014", "crs_lee_grade"),
                                 ("ICANS", "icans", "CTCAE_V4", "icans_ctcae_grade")):
        grade = getattr(r, f"{pre}_grade")
        if pd.isna(grade) or int(grade) == 0:
            continue
        row = {"site_id": r.site_id, "local_id": r.local_id, "tox_type": tox,
               "onset_date": day_to_date(r.infusion_date, getattr(r, f"{pre}_onset_day")),
               "resolution_date": day_to_date(r.infusion_date, getattr(r, f"{pre}_resolution_day")),
               "grade_astct": int(grade),
               "source_scale": "ASTCT2019" if native else scale,
               "source_grade": int(grade) if native else int(getattr(r, src)),
               "grade_method": "native" if native else "regraded"}
        for comp_type, mapping in COMPONENTS.items():
            for col, src_col in mapping.items():
                v = getattr(r, src_col) if (not native and comp_type == tox) else None
                row[col] = None if v is None or pd.isna(v) else v
        out.append(row)
    return out


TOX_INT = ("n_vasopressors", "ice_score", "capd_score")


def expected_tables(truth: pd.DataFrame, seed: int = SEED) -> dict[str, pd.DataFrame]:
    """The common-schema tables the ETL should produce for the valid patients."""
    t = normalize_truth(truth)
    inf = dict(zip(zip(t.site_id, t.local_id, strict=True), t.infusion_date, strict=True))
    patient = t[["site_id", "local_id", "sex", "age_years", "ph_positive", "disease_status",
                 "n_relapses", "prior_lines", "bm_blasts_pct", "ecog"]].copy()
    infusion = t[["site_id", "local_id", "infusion_date", "dose_1e6_per_kg"]].copy()
    infusion.insert(3, "product", PRODUCT)
    tox = pd.DataFrame([row for r in t.itertuples() for row in _toxicity_rows(r)])
    for col in TOX_INT:
        tox[col] = pd.to_numeric(tox[col]).astype("Int64")
    tox["max_temp_c"] = pd.to_numeric(tox["max_temp_c"])
    tox["o2_flow_l_min"] = pd.to_numeric(tox["o2_flow_l_min"])
    tr = treatment_courses(t)
    key = list(zip(tr.site_id, tr.local_id, strict=True))
    treat = pd.DataFrame({
        "site_id": tr.site_id, "local_id": tr.local_id, "agent": tr.agent,
        "start_date": [day_to_date(inf[k], d) for k, d in zip(key, tr.start_day, strict=True)],
        "end_date": [day_to_date(inf[k], d) for k, d in zip(key, tr.end_day, strict=True)],
        "cumulative_dose_mg": tr.cumulative_dose_mg, "dex_equiv_mg": tr.dex_equiv_mg})
    labs = lab_series(t, seed)
    labs = labs[labs.is_peak | ~labs.site_id.isin(PEAK_ONLY_SITES)]
    lkey = list(zip(labs.site_id, labs.local_id, strict=True))
    lab = pd.DataFrame({
        "site_id": labs.site_id, "local_id": labs.local_id, "analyte": labs.analyte,
        "sample_date": [day_to_date(inf[k], d) for k, d in zip(lkey, labs.day, strict=True)],
        "value": labs.value, "source_value": None,
        "source_unit": [SOURCE_UNIT[s][a] for s, a in zip(labs.site_id, labs.analyte,
                                                           strict=True)]})
    response = pd.DataFrame({
        "site_id": t.site_id, "local_id": t.local_id,
        "assessment_date": [day_to_date(i, d) for i, d in zip(t.infusion_date, t.response_day,
                                                              strict=True)],
        "response": t.response, "mrd_pct": t.mrd_pct, "mrd_negative": t.mrd_negative})
    outcome = pd.DataFrame({"site_id": t.site_id, "local_id": t.local_id})
    for col in ("relapse", "death", "last_contact"):
        outcome[f"{col}_date"] = [day_to_date(i, d) for i, d in
                                  zip(t.infusion_date, t[f"{col}_day"], strict=True)]
    tables = {"patient": patient, "infusion": infusion, "toxicity": tox,
              "toxicity_treatment": treat, "lab": lab, "response": response,
              "outcome": outcome}
    return {name: df.reset_index(drop=True) for name, df in tables.items()}


def peak_samples(rows: pd.DataFrame, seed: int = SEED) -> dict[tuple[str, str], tuple[int, float]]:
    """(local_id, analyte) -> (day, value) of the peak sample, for one-row-per-patient exports."""
    labs = lab_series(rows, seed)
    labs = labs[labs.is_peak]
    return {(r.local_id, r.analyte): (int(r.day), float(r.value)) for r in labs.itertuples()}


def courses_by_patient(rows: pd.DataFrame) -> dict[tuple[str, str], pd.Series]:
    """(local_id, 'steroid' | 'tocilizumab') -> the course row, for wide exports."""
    out = {}
    for _, c in treatment_courses(rows).iterrows():
        out[(c.local_id, "tocilizumab" if c.agent == "tocilizumab" else "steroid")] = c
    return out
