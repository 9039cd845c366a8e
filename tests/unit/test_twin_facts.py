"""The twin's truth.csv reproduces the paper's counts, cross-tabs and medians exactly.

Source: Frontiers in Immunology 2024, doi 10.3389/fimmu.2024.1448709 (Table 1 and
the Results text); see /work/shared/reference and sites/twin/README.md.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from etl.compile.grading import crs_grade_from_components, icans_grade_from_components
from sites.twin.cohort import COLUMNS, load_truth
from sites.twin.survival_defs import endpoints

CUTOFF = date(2023, 3, 1)


@pytest.fixture(scope="module")
def t() -> pd.DataFrame:
    df = load_truth()
    return df.join(endpoints(df, CUTOFF))


def _med(s: pd.Series) -> tuple:
    s = s.dropna().astype(float)
    return (float(np.median(s)), float(s.min()), float(s.max()))


def test_columns_follow_the_contract(t):
    assert list(load_truth().columns) == COLUMNS


def test_sites_and_headcounts(t):
    assert len(t) == 93
    assert t["site_id"].value_counts().to_dict() == {
        "center_a": 34, "center_b": 26, "center_c": 19, "center_d": 14}
    assert not t[["site_id", "local_id"]].duplicated().any()
    assert (t["sex"] == "M").sum() == 47 and (t["sex"] == "F").sum() == 46
    assert t["ph_positive"].sum() == 18
    assert t["disease_status"].value_counts().to_dict() == {"relapsed": 81,
                                                            "primary_refractory": 12}
    assert (t.loc[t["disease_status"] == "primary_refractory", "n_relapses"] == 0).all()


def test_toxicity_counts(t):
    crs, icans = t["crs_grade"] > 0, t["icans_grade"] > 0
    assert crs.sum() == 76 and (t["crs_grade"] >= 3).sum() == 19
    assert icans.sum() == 16 and (t["icans_grade"] >= 3).sum() == 8
    assert (crs & icans).sum() == 15 and (icans & ~crs).sum() == 1
    assert t["steroids"].sum() == 51 and t["tocilizumab"].sum() == 45
    assert not (t["steroids"] & ~crs).any() and not (t["tocilizumab"] & ~crs).any()
    assert (t["steroids"] & icans).sum() == 13 and (t["tocilizumab"] & icans).sum() == 12
    assert t["tox_group"].value_counts().to_dict() == {"other": 56, "grade3plus": 21,
                                                       "none": 16}


@pytest.mark.parametrize("flag,yes", [
    ("male", (41, 6, 8, 39, 8, 39)),
    ("ph_positive", (13, 5, 3, 15, 3, 15)),
    ("primary_refractory", (9, 3, 3, 9, 3, 9)),
    ("steroids", (51, 0, 13, 38, 13, 38)),
    ("tocilizumab", (45, 0, 12, 33, 12, 33)),
])
def test_table1_crosstabs(t, flag, yes):
    """Counts by CRS yes/no, ICANS yes/no, concurrent yes/no (Table 1)."""
    if flag == "male":
        f = t["sex"] == "M"
    elif flag == "primary_refractory":
        f = t["disease_status"] == "primary_refractory"
    else:
        f = t[flag].astype(bool)
    crs, icans = t["crs_grade"] > 0, t["icans_grade"] > 0
    conc = crs & icans
    got = tuple(int((f & g).sum()) for g in (crs, ~crs, icans, ~icans, conc, ~conc))
    assert got == yes


def test_response_and_mrd(t):
    cr = t["response"] == "CR"
    assert cr.sum() == 86
    nr = t[~cr]
    assert ((nr["crs_grade"] > 0) & (nr["icans_grade"] == 0)).all()
    assert (nr["tox_group"] == "grade3plus").sum() == 3
    assert nr["tocilizumab"].sum() == 3 and nr["steroids"].sum() == 3
    assert t.loc[~cr, "mrd_pct"].isna().all()
    mrd_neg = cr & (t["mrd_pct"] < 0.01)
    assert mrd_neg.sum() == 73
    assert (t.loc[cr, "mrd_negative"] == (t.loc[cr, "mrd_pct"] < 0.01)).all()
    pos = t[cr & ~mrd_neg]
    assert (pos["tox_group"] == "none").sum() == 5
    crs_only = pos[(pos["crs_grade"] > 0) & (pos["icans_grade"] == 0)]
    assert len(crs_only) == 8 and (crs_only["tox_group"] == "grade3plus").sum() == 2
    assert (t.loc[t["icans_grade"] > 0, "mrd_pct"] < 0.01).all()


def test_timing_and_treatment_medians(t):
    crs, sev = t["crs_grade"] > 0, t["crs_grade"] >= 3
    assert _med(t.loc[crs, "crs_onset_day"]) == (5, 1, 14)
    assert _med(t.loc[sev, "crs_onset_day"]) == (5, 1, 13)
    assert _med(t.loc[t["icans_grade"] > 0, "icans_onset_day"]) == (8, 4, 19)
    assert _med(t.loc[t["icans_grade"] >= 3, "icans_onset_day"]) == (7, 5, 19)
    st, tc = t["steroids"], t["tocilizumab"]
    assert _med(t.loc[st, "steroid_dex_equiv_mg"]) == (115, 7.5, 956)
    assert _med(t.loc[st, "steroid_days"]) == (5, 1, 20)
    assert _med(t.loc[st, "steroid_start_day"]) == (8, 3, 14)
    assert _med(t.loc[tc, "toci_mg"]) == (480, 80, 1280)
    assert _med(t.loc[tc, "toci_days"]) == (1, 1, 2)
    assert _med(t.loc[tc, "toci_start_day"]) == (7, 2, 15)


@pytest.mark.parametrize("col,yes,no", [
    ("age_years", (31, 2, 70), (26, 2, 66)),
    ("peak_il6_pg_ml", (517, 3.1, 27231), (8.9, 2.4, 481)),
    ("peak_ferritin_ng_ml", (2781, 153, 76301), (1459.5, 106, 67385)),
    ("bm_blasts_pct", (23.75, 0, 92), (5.15, 0, 95)),
    ("dose_1e6_per_kg", (1.2, 0.4, 4.3), (1.0, 0.5, 3)),
    ("prior_lines", (3.5, 1, 13), (4, 0, 7)),
])
def test_table1_continuous_by_crs(t, col, yes, no):
    crs = t["crs_grade"] > 0
    assert _med(t.loc[crs, col]) == pytest.approx(yes)
    assert _med(t.loc[~crs, col]) == pytest.approx(no)


@pytest.mark.parametrize("col,icans,conc", [
    ("age_years", (20, 6, 68), (19, 6, 68)),
    ("peak_ferritin_ng_ml", (9987, 788, 45323), (9987, 788, 45323)),
    ("prior_lines", (2, 1, 6), (2, 1, 6)),
    ("dose_1e6_per_kg", (1, 0.9, 4), (1, 1, 4)),
])
def test_table1_continuous_by_icans_and_concurrent(t, col, icans, conc):
    """The ICANS / concurrent columns of Table 1 that do not contradict the CRS columns."""
    ic = t["icans_grade"] > 0
    assert _med(t.loc[ic, col]) == pytest.approx(icans)
    assert _med(t.loc[ic & (t["crs_grade"] > 0), col]) == pytest.approx(conc)


def test_car_kinetics_for_24(t):
    assert t["peak_car_copies"].notna().sum() == 24


def test_eligibility_and_identity(t):
    assert t["age_years"].between(2, 70).all() and t["ecog"].between(0, 1).all()
    birth = pd.to_datetime(t["birth_date"])
    inf = pd.to_datetime(t["infusion_date"])
    age = inf.dt.year - birth.dt.year - ((inf.dt.month * 100 + inf.dt.day)
                                         < (birth.dt.month * 100 + birth.dt.day))
    assert (age == t["age_years"]).all()
    assert inf.min() >= pd.Timestamp("2016-05-01") and inf.max() <= pd.Timestamp("2022-12-31")


def astct_crs_grade(c: dict) -> int:
    """The ETL's own ASTCT rule (etl.compile.grading) on the twin's CRS components; 0 = no episode."""
    return crs_grade_from_components(*(c[f"crs_{k}"] for k in (
        "max_temp_c", "hypotension", "n_vasopressors", "o2_device", "o2_flow_l_min"))) or 0


def astct_icans_grade(c: dict) -> int:
    """The ETL's own ASTCT rule on the twin's ICANS components; 0 = no episode."""
    return icans_grade_from_components(c["age_years"], *(c[f"icans_{k}"] for k in (
        "ice_score", "capd_score", "consciousness", "seizure", "motor_weakness", "cerebral_edema"))) or 0


def test_astct_components_match_grades(t):
    for _, row in t.iterrows():
        c = {k: (None if pd.isna(v) else v) for k, v in row.items()}
        assert astct_crs_grade(c) == row["crs_grade"], row["local_id"]
        assert astct_icans_grade(c) == row["icans_grade"], row["local_id"]
        if row["icans_grade"] > 0:
            assert (c["icans_capd_score"] is not None) == (row["age_years"] <= 12)


def test_outcome_days_are_consistent(t):
    admin = (pd.Timestamp(CUTOFF) - pd.to_datetime(t["infusion_date"])).dt.days
    assert (t["last_contact_day"] <= admin).all()
    dead = t["death_day"].notna()
    assert (t.loc[dead, "death_day"] == t.loc[dead, "last_contact_day"]).all()
    rel = t["relapse_day"].notna()
    assert (t.loc[rel, "response"] == "CR").all()
    assert (t.loc[rel, "relapse_day"] > t.loc[rel, "response_day"]).all()
    assert (t.loc[rel, "relapse_day"] < t.loc[rel, "last_contact_day"]).all()
    assert t["os_event"].sum() == dead.sum()


def test_survival_defs_on_a_hand_made_frame():
    """OS from infusion, LFS from the CR date; censoring never after the cut-off."""
    df = pd.DataFrame({
        "infusion_date": ["2022-01-01", "2022-01-01", "2022-12-01"],
        "response": ["CR", "NR", "CR"], "response_day": [30, 28, 30],
        "relapse_day": [100, None, None], "death_day": [200, 60, None],
        "last_contact_day": [200, 60, 500], "crs_grade": [3, 1, 0], "icans_grade": [0, 0, 0]})
    got = endpoints(df, date(2023, 3, 1))
    month = 365.25 / 12
    assert got["os_months"].tolist() == pytest.approx([200 / month, 60 / month, 90 / month])
    assert got["os_event"].tolist() == [True, True, False]
    assert got["lfs_months"].iloc[0] == pytest.approx(70 / month)
    assert np.isnan(got["lfs_months"].iloc[1])
    assert got["lfs_months"].iloc[2] == pytest.approx(60 / month)
    assert got["lfs_event"].tolist()[0] is True and got["lfs_event"].isna().iloc[1]
    assert got["tox_group"].tolist() == ["grade3plus", "other", "none"]


@pytest.mark.parametrize("col,group,want", [
    ("age_years", "no_icans", (32, 2, 70)), ("age_years", "no_conc", (31, 2, 70)),
    ("age_years", "all", (28, 2, 70)),
    ("peak_il6_pg_ml", "icans", (94, 7.6, 10952.9)),
    ("peak_il6_pg_ml", "no_icans", (255, 2.4, 27231)),
    ("peak_ferritin_ng_ml", "no_icans", (2000, 106, 76301)),
    ("peak_ferritin_ng_ml", "no_conc", (2000, 106, 76301)),
    ("prior_lines", "no_icans", (4, 0, 13)),
    ("dose_1e6_per_kg", "no_icans", (1, 0.4, 4.3)),
])
def test_table1_other_columns(t, col, group, want):
    """Further Table 1 cells that hold together with the CRS columns (README)."""
    crs, ic = t["crs_grade"] > 0, t["icans_grade"] > 0
    mask = {"no_icans": ~ic, "no_conc": ~(crs & ic), "icans": ic,
            "all": pd.Series(True, index=t.index)}[group]
    assert _med(t.loc[mask, col]) == pytest.approx(want)


def test_number_of_relapses_medians(t):
    crs, ic = t["crs_grade"] > 0, t["icans_grade"] > 0
    med = {k: float(np.median(t.loc[m, "n_relapses"])) for k, m in
           {"crs": crs, "no_crs": ~crs, "icans": ic, "no_icans": ~ic, "conc": crs & ic}.items()}
    assert med == {"crs": 1, "no_crs": 2, "icans": 1, "no_icans": 1, "conc": 1}
    assert t.loc[ic, "n_relapses"].max() == 2 and t["n_relapses"].max() == 4
