"""The twin's categorical skeleton: which patient has which flag, exactly.

The paper publishes counts and cross-tabs (Table 1, the response section, the
toxicity section). They pin the categorical structure almost completely, so it
is built *constructively* here, cell by cell, not drawn at random and hoped for.
The seed only decides which patient gets which member of a cell and the row
order; every count is the same for every seed.

Toxicity cells (derived in sites/twin/README.md):
- none: no CRS, no ICANS (16)
- icans_only: ICANS grade 1-2 without CRS (1; female, Ph-negative, relapsed, untreated)
- crs_only: 61, of which 13 with grade >= 3 CRS
- both: 15 = 6 severe CRS + severe ICANS, 2 mild CRS + severe ICANS, 7 mild both
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# (cell, crs_grade, icans_grade, count); grades are drawn within severity later.
_CELLS = [
    ("none", "0", "0", 16),
    ("icans_only", "0", "mild", 1),
    ("crs_only", "severe", "0", 13),
    ("crs_only", "mild", "0", 48),
    ("both", "severe", "severe", 6),
    ("both", "mild", "severe", 2),
    ("both", "mild", "mild", 7),
]

# Per cell: males, Ph+, primary refractory (Table 1 CRS-yes minus concurrent, etc.).
_DEMOGRAPHY = {
    "none": (6, 5, 3),
    "icans_only": (0, 0, 0),
    "crs_only": (33, 10, 6),
    "both": (8, 3, 3),
}


def _take(rng: np.random.Generator, idx: np.ndarray, k: int) -> np.ndarray:
    """k members of idx chosen at random (sorted for readability)."""
    return np.sort(rng.choice(idx, size=k, replace=False)) if k else idx[:0]


def skeleton(rng: np.random.Generator) -> pd.DataFrame:
    """One row per patient with the exact categorical flags of the paper."""
    rows = []
    for cell, crs, icans, n in _CELLS:
        rows += [{"cell": cell, "crs_sev": crs, "icans_sev": icans}] * n
    df = pd.DataFrame(rows)
    n = len(df)
    df["male"] = False
    df["ph_positive"] = False
    df["primary_refractory"] = False
    for cell, (males, ph, pr) in _DEMOGRAPHY.items():
        idx = np.flatnonzero(df["cell"].to_numpy() == cell)
        df.loc[_take(rng, idx, males), "male"] = True
        df.loc[_take(rng, idx, ph), "ph_positive"] = True
        df.loc[_take(rng, idx, pr), "primary_refractory"] = True

    severe = (df["crs_sev"] == "severe") | (df["icans_sev"] == "severe")
    df["tox_group"] = np.where(df["cell"] == "none", "none",
                               np.where(severe, "grade3plus", "other"))

    # Treatment. Concurrent: 13 steroids, 12 tocilizumab; every severe case is treated.
    df["steroids"] = False
    df["tocilizumab"] = False
    both = np.flatnonzero(df["cell"].to_numpy() == "both")
    both_mild = both[~severe.to_numpy()[both]]
    untreated_st = _take(rng, both_mild, 2)
    df.loc[np.setdiff1d(both, untreated_st), "steroids"] = True
    df.loc[_take(rng, np.setdiff1d(both, untreated_st), 12), "tocilizumab"] = True

    # CRS only: 7 non-responders = 3 severe (steroids + tocilizumab) + 4 mild untreated.
    co = df["cell"].to_numpy() == "crs_only"
    co_sev = np.flatnonzero(co & severe.to_numpy())
    co_mild = np.flatnonzero(co & ~severe.to_numpy())
    nr_sev = _take(rng, co_sev, 3)
    nr_mild = _take(rng, co_mild, 4)
    df["response"] = "CR"
    df.loc[np.r_[nr_sev, nr_mild], "response"] = "NR"
    # 38 steroids and 33 tocilizumab among CRS-only: all 13 severe get both.
    df.loc[co_sev, ["steroids", "tocilizumab"]] = True
    mild_ok = np.setdiff1d(co_mild, nr_mild)
    df.loc[_take(rng, mild_ok, 25), "steroids"] = True
    df.loc[_take(rng, mild_ok, 20), "tocilizumab"] = True

    # MRD-positive CR: 5 in 'none', 8 CRS-only (2 of them grade3plus); ICANS all negative.
    df["mrd_positive"] = False
    cr = df["response"].to_numpy() == "CR"
    df.loc[_take(rng, np.flatnonzero(df["cell"].to_numpy() == "none"), 5), "mrd_positive"] = True
    df.loc[_take(rng, np.setdiff1d(co_sev, nr_sev), 2), "mrd_positive"] = True
    df.loc[_take(rng, np.flatnonzero(co & cr & ~severe.to_numpy()), 6), "mrd_positive"] = True

    # CAR-T kinetics for 24 patients; the ICANS-only patient is not among them, so the
    # ICANS and concurrent comparisons of Fig 4 coincide (both p = 0.799 in the paper).
    df["has_car_kinetics"] = False
    for cell, k in (("none", 4), ("crs_only", 17), ("both", 3)):
        df.loc[_take(rng, np.flatnonzero(df["cell"].to_numpy() == cell), k),
               "has_car_kinetics"] = True

    df["has_crs"] = df["crs_sev"] != "0"
    df["has_icans"] = df["icans_sev"] != "0"
    order = rng.permutation(n)
    return df.iloc[order].reset_index(drop=True)
