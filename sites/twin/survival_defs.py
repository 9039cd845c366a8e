"""The study's endpoint definitions, computed from the twin's truth table.

Pure: the cut-off date is an argument, never today(). As in the paper:
- OS runs from infusion (day 0) to death from any cause; everyone (93) is in it.
- LFS runs from the CR date (the day-30 assessment, response_day) to relapse,
  death or last follow-up; only CR patients (86) are in it.
- Patients without the event are censored at last contact, and never after the
  cut-off.
- tox_group: 'grade3plus' (CRS or ICANS grade >= 3), 'none' (neither CRS nor
  ICANS), 'other' (everyone else).
Months are days / (365.25 / 12).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

DAYS_PER_MONTH = 365.25 / 12


def tox_group(crs_grade: pd.Series, icans_grade: pd.Series) -> pd.Series:
    """'grade3plus' / 'none' / 'other' from the ASTCT grades."""
    crs, icans = crs_grade.fillna(0).astype(int), icans_grade.fillna(0).astype(int)
    out = np.where((crs >= 3) | (icans >= 3), "grade3plus",
                   np.where((crs == 0) & (icans == 0), "none", "other"))
    return pd.Series(out, index=crs_grade.index, name="tox_group")


def endpoints(truth: pd.DataFrame, cutoff: date) -> pd.DataFrame:
    """os_months, os_event, lfs_months, lfs_event (NaN / NA outside CR), tox_group."""
    inf = pd.to_datetime(truth["infusion_date"])
    admin = (pd.Timestamp(cutoff) - inf).dt.days
    death = pd.to_numeric(truth["death_day"]).astype(float)
    last = pd.to_numeric(truth["last_contact_day"]).astype(float)
    relapse = pd.to_numeric(truth["relapse_day"]).astype(float)
    dead = death.notna() & (death <= admin)
    os_days = np.where(dead, death, np.minimum(last, admin))
    cr = truth["response"].eq("CR")
    relapsed = relapse.notna() & (relapse <= os_days)
    lfs_end = np.where(relapsed, relapse, os_days)
    lfs_days = lfs_end - pd.to_numeric(truth["response_day"]).astype(float)
    return pd.DataFrame({
        "os_months": os_days / DAYS_PER_MONTH,
        "os_event": dead.astype(bool),
        "lfs_months": np.where(cr, lfs_days / DAYS_PER_MONTH, np.nan),
        "lfs_event": pd.array(np.where(cr, relapsed | dead, pd.NA), dtype="boolean"),
        "tox_group": tox_group(truth["crs_grade"], truth["icans_grade"]),
    }, index=truth.index)
