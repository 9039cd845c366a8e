"""Seeded synthetic `analysis_patient` frames shared by the analysis unit tests.

Random, not calibrated and not the twin: they exercise code paths, not the paper's numbers.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def grade_group(grade: np.ndarray) -> np.ndarray:
    """'none' / 'grade1_2' / 'grade3plus', as the analysis_patient view derives it."""
    return np.where(grade == 0, "none", np.where(grade >= 3, "grade3plus", "grade1_2"))


def make_patients(seed: int = 7, n: int = 93) -> pd.DataFrame:
    """Seeded synthetic analysis_patient rows (not the twin; no real patients)."""
    rng = np.random.default_rng(seed)
    crs_grade = rng.choice([0, 1, 2, 3, 4], n, p=[0.18, 0.35, 0.27, 0.15, 0.05])
    icans_grade = np.where(rng.random(n) < 0.17, rng.choice([1, 2, 3], n), 0)
    crs, icans = crs_grade > 0, icans_grade > 0
    severe = (crs_grade >= 3) | (icans_grade >= 3)
    refractory = rng.random(n) < 0.13
    cr = rng.random(n) < 0.92
    os_m = rng.exponential(40, n).clip(0.5, 80).round(1)
    df = pd.DataFrame({
        "study_id": [f"P{i:03d}" for i in range(n)],
        "site_id": rng.choice(["center_a", "center_b", "center_c", "center_d"], n),
        "sex": rng.choice(["M", "F"], n), "age_years": rng.integers(2, 70, n),
        "ph_positive": rng.random(n) < 0.2,
        "disease_status": np.where(refractory, "primary_refractory", "relapsed"),
        "n_relapses": np.where(refractory, 0, rng.integers(1, 5, n)),
        "prior_lines": rng.integers(0, 14, n), "bm_blasts_pct": rng.uniform(0, 95, n).round(1),
        "dose_1e6_per_kg": rng.uniform(0.4, 4.3, n).round(1),
        "crs_any": crs, "crs_grade": crs_grade, "icans_any": icans, "icans_grade": icans_grade,
        "crs_icans_concurrent": crs & icans,
        "tox_group": np.where(~crs & ~icans, "none", np.where(severe, "grade3plus", "other")),
        "crs_grade_group": grade_group(crs_grade), "icans_grade_group": grade_group(icans_grade),
        "steroids": crs & (rng.random(n) < 0.65), "tocilizumab": crs & (rng.random(n) < 0.6),
        "cr_d30": cr, "mrd_neg_cr": pd.array(np.where(cr, rng.random(n) < 0.8, None),
                                             dtype="boolean"),
        "peak_il6_pg_ml": (10 ** rng.normal(2, 1, n)).round(1),
        "peak_ferritin_ng_ml": (10 ** rng.normal(3.4, 0.5, n)).round(0),
        "peak_car_copies": np.where(rng.random(n) < 0.26, 10 ** rng.normal(4.5, 0.8, n), np.nan),
        "os_months": os_m, "os_event": rng.random(n) < 0.45,
        "lfs_months": np.where(cr, np.minimum(os_m, rng.exponential(30, n).round(1)), np.nan),
        "lfs_event": pd.array(np.where(cr, rng.random(n) < 0.5, None), dtype="boolean"),
    })
    # drawn after every other column, so those stay what they were before lfs_cause existed
    cause = np.where(rng.random(n) < 0.7, "relapse", "nrm")
    event = df["lfs_event"].fillna(False).to_numpy(dtype=bool)
    df["lfs_cause"] = np.where(cr, np.where(event, cause, "censored"), None)
    return df
