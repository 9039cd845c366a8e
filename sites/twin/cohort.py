"""Draw the twin's truth table (93 valid patients) deterministically from a seed.

`draw_truth(seed)` assembles, in order:
1. the exact categorical skeleton (sites.twin.structure);
2. the fitted continuous columns (sites.twin.measures); for the calibrated seed
   the values that sites/twin/calibrate.py found are read from calibration.yml;
3. grades and ASTCT components (sites.twin.components), sites, dates, identifiers;
4. survival: infusion dates and death / relapse / last-contact days. For the
   calibrated seed these are read from calibration.yml (the result of the seeded
   search in calibrate.py); for any other seed a plain seeded draw is used.

The column contract is sites/twin/TRUTH.md; `write_truth` writes truth.csv.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from sites.twin.components import CRS_COLS, ICANS_COLS, crs_components, icans_components
from sites.twin.identities import identities
from sites.twin.measures import finish, solve_all
from sites.twin.structure import skeleton

HERE = Path(__file__).parent
TRUTH_CSV = HERE / "truth.csv"
CALIBRATION_YML = HERE / "calibration.yml"
DEFAULT_SEED = 20230301
CUTOFF = date(2023, 3, 1)
FIRST_INFUSION, LAST_INFUSION = date(2016, 5, 1), date(2022, 12, 31)
SITES = [("center_a", 34), ("center_b", 26), ("center_c", 19), ("center_d", 14)]
OUTCOME_COLS = ["infusion_date", "relapse_day", "death_day", "last_contact_day"]

COLUMNS = (["site_id", "local_id", "full_name", "mrn", "birth_date", "phone", "sex",
            "age_years", "ph_positive", "disease_status", "n_relapses", "prior_lines",
            "bm_blasts_pct", "ecog", "weight_kg", "infusion_date", "dose_1e6_per_kg",
            "crs_grade", "crs_onset_day", "crs_resolution_day"] + CRS_COLS
           + ["crs_lee_grade", "icans_grade", "icans_onset_day", "icans_resolution_day"]
           + ICANS_COLS
           + ["icans_ctcae_grade", "steroids", "steroid_agent", "steroid_start_day",
              "steroid_days", "steroid_dex_equiv_mg", "tocilizumab", "toci_start_day",
              "toci_days", "toci_mg", "peak_il6_pg_ml", "peak_ferritin_ng_ml",
              "peak_car_copies", "response", "response_day", "mrd_pct", "mrd_negative",
              "relapse_day", "death_day", "last_contact_day"])
INT_COLS = ["age_years", "n_relapses", "prior_lines", "ecog", "crs_grade", "crs_onset_day",
            "crs_resolution_day", "crs_n_vasopressors", "crs_lee_grade", "icans_grade",
            "icans_onset_day", "icans_resolution_day", "icans_ice_score", "icans_capd_score",
            "icans_ctcae_grade", "steroid_start_day", "steroid_days", "toci_start_day",
            "toci_days", "response_day", "relapse_day", "death_day", "last_contact_day"]
BOOL_COLS = ["ph_positive", "crs_hypotension", "icans_motor_weakness", "steroids",
             "tocilizumab", "mrd_negative"]


def load_calibration(path: Path = CALIBRATION_YML) -> dict:
    """The committed calibration result ({} when it does not exist yet)."""
    return yaml.safe_load(path.read_text()) if path.exists() else {}


def _weight(rng: np.random.Generator, age: int, male: bool) -> float:
    if age <= 17:
        return round(float(np.clip(8 + 3.2 * age + rng.normal(0, 4), 10, 90)), 1)
    return round(float(rng.normal(70 if male else 58, 9)), 1)


def base_table(seed: int, solved: dict | None = None) -> pd.DataFrame:
    """Everything except infusion dates and outcomes (those are calibrated).

    `solved` holds the fitted columns (calibration.yml: columns); when absent they
    are solved here, which takes a while.
    """
    rng = np.random.default_rng([seed, 1000])
    sk = skeleton(rng)
    vals = finish(pd.DataFrame(solved, index=sk.index)) if solved else solve_all(sk, seed)
    df = pd.DataFrame(index=sk.index)
    df["site_id"] = np.repeat([s for s, _ in SITES], [k for _, k in SITES])
    df["sex"] = np.where(sk["male"], "M", "F")
    df["ph_positive"] = sk["ph_positive"]
    df["disease_status"] = np.where(sk["primary_refractory"], "primary_refractory", "relapsed")
    df = df.join(vals)
    df["ecog"] = (rng.random(len(df)) < 0.4).astype(int)
    df["weight_kg"] = [_weight(rng, a, m)
                       for a, m in zip(df["age_years"], sk["male"], strict=True)]
    sev = {"0": [0], "mild": [1, 2], "severe": [3, 3, 4]}
    df["crs_grade"] = [int(rng.choice(sev[s])) for s in sk["crs_sev"]]
    df["icans_grade"] = [int(rng.choice(sev[s])) for s in sk["icans_sev"]]
    crs = pd.DataFrame([crs_components(rng, g) for g in df["crs_grade"]], index=df.index)
    icans = pd.DataFrame([icans_components(rng, g, a)
                          for g, a in zip(df["icans_grade"], df["age_years"], strict=True)],
                         index=df.index)
    df = df.join(crs).join(icans)
    has_crs, has_icans = df["crs_grade"] > 0, df["icans_grade"] > 0
    df["crs_resolution_day"] = df["crs_onset_day"] + np.where(
        has_crs, rng.integers(2, 11, len(df)), np.nan)
    df["icans_resolution_day"] = df["icans_onset_day"] + np.where(
        has_icans, rng.integers(1, 9, len(df)), np.nan)
    df["crs_lee_grade"] = df["crs_grade"]
    df["icans_ctcae_grade"] = df["icans_grade"]
    df["steroids"], df["tocilizumab"] = sk["steroids"], sk["tocilizumab"]
    df["steroid_agent"] = np.where(sk["steroids"], np.where(
        rng.random(len(df)) < 0.75, "dexamethasone", "methylprednisolone"), None)
    df["response"] = sk["response"]
    df["response_day"] = rng.integers(26, 33, len(df))
    cr = sk["response"] == "CR"
    neg = np.round(rng.choice([0.0, 0.001, 0.002, 0.004, 0.008], len(df)), 3)
    pos = np.round(np.exp(rng.uniform(np.log(0.01), np.log(4.0), len(df))), 3)
    df["mrd_pct"] = np.where(cr, np.where(sk["mrd_positive"], pos, neg), np.nan)
    df["mrd_negative"] = np.where(cr, ~sk["mrd_positive"], None)
    df["tox_group"] = sk["tox_group"]
    return df


def plain_outcomes(seed: int, base: pd.DataFrame) -> pd.DataFrame:
    """Uncalibrated seeded survival: the calibration search starts from this."""
    rng = np.random.default_rng([seed, 2000])
    n = len(base)
    span = (LAST_INFUSION - FIRST_INFUSION).days
    inf = [FIRST_INFUSION + timedelta(days=int(d)) for d in rng.integers(0, span + 1, n)]
    admin = np.array([(CUTOFF - d).days for d in inf])
    nr = (base["response"] == "NR").to_numpy()
    death = np.where(nr, rng.integers(60, 400, n), rng.exponential(2500, n).astype(int) + 40)
    death = np.where(death <= admin, death, -1)
    rel = base["response_day"].to_numpy() + rng.exponential(2000, n).astype(int) + 1
    limit = np.where(death > 0, death, admin)
    rel = np.where(~nr & (rel < limit), rel, -1)
    return pd.DataFrame({"infusion_date": [d.isoformat() for d in inf], "relapse_day": rel,
                         "death_day": death, "last_contact_day": limit}, index=base.index)


def outcomes_from_calibration(cal: dict, index: pd.Index) -> pd.DataFrame:
    rows = cal["outcomes"]
    return pd.DataFrame(rows, columns=OUTCOME_COLS, index=index)


def draw_truth(seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """The 93-row truth table for a seed (calibrated survival for the committed seed)."""
    cal = load_calibration()
    calibrated = cal.get("seed") == seed
    base = base_table(seed, cal.get("columns") if calibrated else None)
    out = outcomes_from_calibration(cal, base.index) if calibrated else plain_outcomes(seed, base)
    return assemble(seed, base, out)


def assemble(seed: int, base: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Join base and outcomes, add identifiers, order and type the columns."""
    df = base.join(outcomes)
    for col in ("relapse_day", "death_day"):
        df[col] = df[col].where(df[col] >= 0)
    ids = identities(np.random.default_rng([seed, 3000]), df["site_id"], df["infusion_date"],
                     df["age_years"])
    df = df.join(ids)
    df = df.sort_values(["site_id", "local_id"], kind="stable").reset_index(drop=True)
    return _typed(df[COLUMNS])


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for col in INT_COLS:
        df[col] = pd.array(pd.to_numeric(df[col]).round(), dtype="Int64")
    for col in BOOL_COLS:
        df[col] = df[col].map({True: True, False: False, "True": True,
                               "False": False}).astype("boolean")
    return df


def load_truth(path: Path = TRUTH_CSV) -> pd.DataFrame:
    """truth.csv with its dtypes (nullable Int64 / boolean, ISO date strings)."""
    df = pd.read_csv(path, dtype={"local_id": str, "mrn": str, "phone": str})
    return _typed(df)


def write_truth(path: Path = TRUTH_CSV, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """Draw the truth for `seed` and write it as CSV; returns the table."""
    df = draw_truth(seed)
    df.to_csv(path, index=False)
    return df


if __name__ == "__main__":
    write_truth()
