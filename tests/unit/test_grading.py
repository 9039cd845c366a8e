"""ASTCT 2019 grading from components, crosswalks, and harmonization.

Reference: Lee DW et al. ASTCT Consensus Grading for Cytokine Release Syndrome
and Neurologic Toxicity Associated with Immune Effector Cells. Biol Blood
Marrow Transplant 2019;25:625-638. Each case cites the row of the consensus
table it comes from: "CRS table" = ASTCT CRS Consensus Grading; "ICANS adult
table" / "ICANS children table" = ASTCT ICANS Consensus Grading for Adults /
for Children.
"""

import csv
from pathlib import Path

import pandas as pd
import pytest

from etl.compile.grading import (
    GradeOutOfScale,
    crosswalk,
    crs_grade_from_components,
    harmonize,
    harmonize_frame,
    icans_grade_from_components,
    map_grade,
)

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"

# (temp_c, hypotension, n_vasopressors, o2_device, o2_flow_l_min, grade, source row)
CRS_CASES = [
    (38.0, False, 0, "none", None, 1, "grade 1: fever >= 38 C, no hypotension or hypoxia"),
    (37.9, False, 0, "none", None, 0, "below the fever threshold of 38 C: no CRS"),
    (39.2, True, 0, "none", None, 2, "grade 2: hypotension not requiring vasopressors"),
    (39.2, False, 0, "low_flow_nasal", 2.0, 2, "grade 2: low-flow nasal cannula"),
    (39.2, False, 0, "low_flow_nasal", 6.0, 2, "grade 2: low-flow is <= 6 L/min (footnote)"),
    (39.2, False, 0, "low_flow_nasal", 6.1, 3, "grade 3: > 6 L/min is high-flow (footnote)"),
    (39.2, False, 0, "blow_by", None, 2, "grade 2: blow-by oxygen"),
    (39.2, True, 1, "none", None, 3, "grade 3: one vasopressor with or without vasopressin"),
    (39.2, False, 0, "high_flow_nasal", 30.0, 3, "grade 3: high-flow nasal cannula"),
    (39.2, False, 0, "facemask", None, 3, "grade 3: facemask"),
    (39.2, False, 0, "nonrebreather", None, 3, "grade 3: non-rebreather mask"),
    (39.2, False, 0, "venturi", None, 3, "grade 3: Venturi mask"),
    (39.2, True, 2, "none", None, 4, "grade 4: multiple vasopressors (excluding vasopressin)"),
    (39.2, False, 0, "cpap", None, 4, "grade 4: positive pressure (CPAP)"),
    (39.2, False, 0, "bipap", None, 4, "grade 4: positive pressure (BiPAP)"),
    (39.2, False, 0, "mechanical_ventilation", None, 4, "grade 4: intubation, ventilation"),
    (39.2, True, 0, "high_flow_nasal", 10.0, 3, "grade by the more severe: hypoxia 3 > hypo 2"),
    (39.2, True, 1, "bipap", None, 4, "grade by the more severe: hypoxia 4 > hypotension 3"),
    (39.2, True, 2, "low_flow_nasal", 2.0, 4, "grade by the more severe: hypotension 4"),
    (36.8, True, 1, "none", None, 3, "footnote: fever masked by tocilizumab/steroids"),
    (None, None, 1, None, None, 3, "vasopressor alone implies hypotension (grade 3)"),
    (None, False, 0, "none", None, None, "no fever recorded, no organ sign: not derivable"),
    (None, None, None, None, None, None, "all components missing"),
]


@pytest.mark.parametrize(
    "temp,hypo,pressors,device,flow,expected,row", CRS_CASES, ids=[c[-1] for c in CRS_CASES]
)
def test_crs_grade_from_components(temp, hypo, pressors, device, flow, expected, row):
    assert crs_grade_from_components(temp, hypo, pressors, device, flow) == expected, row


def test_crs_components_accept_pandas_missing_values():
    assert crs_grade_from_components(float("nan"), pd.NA, pd.NA, None, float("nan")) is None
    assert crs_grade_from_components(38.5, pd.NA, pd.NA, pd.NA, float("nan")) == 1


# (age, ice, capd, consciousness, seizure, motor_weakness, cerebral_edema, grade, source row)
ICANS_CASES = [
    (40, 10, None, None, None, None, None, 0, "ICE 10: no ICANS"),
    (40, 9, None, None, None, None, None, 1, "adult grade 1: ICE 7-9 (9)"),
    (40, 7, None, None, None, None, None, 1, "adult grade 1: ICE 7-9 (7)"),
    (40, 6, None, None, None, None, None, 2, "adult grade 2: ICE 3-6 (6)"),
    (40, 3, None, None, None, None, None, 2, "adult grade 2: ICE 3-6 (3)"),
    (40, 2, None, None, None, None, None, 3, "adult grade 3: ICE 0-2 (2)"),
    (40, 0, None, None, None, None, None, 3, "adult grade 3: ICE 0-2 (0, arousable)"),
    (40, 0, None, "unarousable", None, None, None, 4, "adult grade 4: ICE 0, unarousable"),
    (40, None, None, "voice", None, None, None, 2, "adult grade 2: awakens to voice"),
    (40, None, None, "tactile", None, None, None, 3, "adult grade 3: only to tactile stimulus"),
    (40, None, None, "unarousable", None, None, None, 4, "adult grade 4: stupor or coma"),
    (40, 10, None, None, "self_limited", None, None, 3, "grade 3: seizure resolving rapidly"),
    (40, 10, None, None, "prolonged", None, None, 4, "grade 4: prolonged (> 5 min) seizure"),
    (40, 10, None, None, None, True, None, 4, "grade 4: deep focal motor weakness"),
    (40, 10, None, None, None, False, "focal", 3, "grade 3: focal/local edema"),
    (40, 10, None, None, None, False, "diffuse", 4, "grade 4: diffuse cerebral edema"),
    (40, 8, None, "awake", "self_limited", False, "none", 3, "most severe: seizure 3 > ICE 1"),
    (40, 5, None, "voice", "none", True, "none", 4, "most severe: motor weakness 4"),
    (12, None, 0, None, None, None, None, 0, "children: CAPD 0"),
    (12, None, 8, None, None, None, None, 1, "children grade 1: CAPD 1-8 (8)"),
    (12, None, 1, "voice", None, None, None, 2, "children grade 2: CAPD 1-8, awakens to voice"),
    (12, None, 9, None, None, None, None, 3, "children grade 3: CAPD >= 9"),
    (12, None, None, "unarousable", None, None, None, 4, "children grade 4: unable to do CAPD"),
    (12, 2, None, None, None, None, None, None, "age 12 uses CAPD: ICE ignored"),
    (13, 2, None, None, None, None, None, 3, "age 13 uses ICE (ICE 2 -> 3)"),
    (13, None, 9, None, None, None, None, None, "age 13 uses ICE: CAPD ignored"),
    (None, 5, None, None, None, None, None, 2, "age unknown: ICE used when recorded"),
    (None, None, None, None, None, None, None, None, "all components missing"),
]


@pytest.mark.parametrize(
    "age,ice,capd,consc,seizure,motor,edema,expected,row",
    ICANS_CASES,
    ids=[c[-1] for c in ICANS_CASES],
)
def test_icans_grade_from_components(age, ice, capd, consc, seizure, motor, edema, expected, row):
    got = icans_grade_from_components(age, ice, capd, consc, seizure, motor, edema)
    assert got == expected, row


def _max_grades() -> dict[str, int]:
    with open(SCHEMAS / "codelists" / "grading_scale.csv", newline="") as fh:
        return {r["code"]: int(r["max_grade"]) for r in csv.DictReader(fh)}


CROSSWALK_FILES = sorted((SCHEMAS / "crosswalks").glob("*.csv"))


@pytest.mark.parametrize("path", CROSSWALK_FILES, ids=[p.stem for p in CROSSWALK_FILES])
def test_crosswalk_covers_the_scale_and_is_monotone(path):
    scale, tox = path.stem.rsplit("_", 1)
    scale, tox = scale.upper(), tox.upper()
    assert scale in _max_grades() and tox in {"CRS", "ICANS"}
    table = crosswalk(scale, tox)
    assert sorted(table) == list(range(_max_grades()[scale] + 1))
    astct = [table[g][0] for g in sorted(table)]
    assert astct == sorted(astct) and set(astct) <= set(range(6))
    assert table[0][0] == 0 and table[5][0] == 5  # no event stays none, death stays death


def test_every_scale_has_a_crosswalk_and_astct_is_identity():
    stems = {p.stem.rsplit("_", 1)[0].upper() for p in CROSSWALK_FILES}
    assert stems == set(_max_grades())
    for tox in ("CRS", "ICANS"):
        assert {g: a for g, (a, _) in crosswalk("ASTCT2019", tox).items()} == {
            g: g for g in range(6)
        }


@pytest.mark.parametrize(
    "tox,scale,grade,astct",
    [
        ("CRS", "LEE2014", 2, 2),
        ("CRS", "LEE2014", 3, 3),
        ("CRS", "PENN", 2, 1),  # Penn 2 = hospitalization without hypotension/O2
        ("CRS", "PENN", 3, 2),
        ("CRS", "PENN", 4, 4),
        ("CRS", "CTCAE_V5", 3, 3),
        ("ICANS", "CARTOX", 2, 2),
        ("ICANS", "CTCAE_V4", 3, 3),
        ("CRS", "ASTCT2019", 4.0, 4),  # a float that is an integer is accepted
    ],
)
def test_map_grade(tox, scale, grade, astct):
    mapped = map_grade(tox, scale, grade)
    assert (mapped.astct_grade, mapped.source_grade) == (astct, int(grade))


@pytest.mark.parametrize(
    "tox,scale,grade",
    [
        ("CRS", "LEE2014", 6),
        ("CRS", "LEE2014", -1),
        ("CRS", "PENN", 2.5),
        ("CRS", "PENN", "two"),
        ("CRS", "PENN", None),
        ("ICANS", "LEE2014", 2),  # Lee 2014 has no ICANS grades
        ("CRS", "CARTOX", 2),  # CARTOX crosswalk here is for ICANS only
        ("CRS", "MSKCC", 2),  # unknown scale
    ],
)
def test_map_grade_out_of_scale(tox, scale, grade):
    with pytest.raises(GradeOutOfScale) as info:
        map_grade(tox, scale, grade)
    assert info.value.rule_id == "GRADE_OUT_OF_SCALE"
    assert info.value.column == "source_grade"
    assert scale in str(info.value)


def crs_row(scale, grade, **components):
    return {"tox_type": "CRS", "source_scale": scale, "source_grade": grade, **components}


def test_harmonize_disagreement_warning():
    row = crs_row("LEE2014", 2, max_temp_c=39.0, hypotension=True, n_vasopressors=1)
    got = harmonize(row)
    assert (got.grade_astct, got.grade_method) == (3, "regraded")
    assert got.warning == (
        "LEE2014 grade 2 maps to ASTCT 2 but components give ASTCT 3 "
        "(max_temp_c=39.0, hypotension=True, n_vasopressors=1)"
    )


def test_harmonize_methods():
    assert harmonize(crs_row("PENN", 3)) == harmonize(crs_row("PENN", 3.0))
    assert harmonize(crs_row("PENN", 3)).grade_method == "mapped"
    agree = harmonize(crs_row("LEE2014", 2, max_temp_c=39.0, hypotension=True, n_vasopressors=0))
    assert (agree.grade_astct, agree.grade_method, agree.warning) == (2, "regraded", None)
    native = harmonize(crs_row("ASTCT2019", 2, n_vasopressors=2))
    assert (native.grade_astct, native.grade_method) == (2, "native")
    assert native.warning.startswith("ASTCT2019 grade 2 recorded but components give ASTCT 4")


def test_harmonize_keeps_death_and_never_regrades_to_zero():
    death = harmonize(crs_row("PENN", 5, n_vasopressors=2))
    assert (death.grade_astct, death.grade_method) == (5, "mapped")
    afebrile = harmonize(crs_row("LEE2014", 1, max_temp_c=37.2, hypotension=False))
    assert (afebrile.grade_astct, afebrile.grade_method) == (1, "mapped")
    assert "components give ASTCT 0" in afebrile.warning


def test_harmonize_out_of_scale_is_a_problem_not_a_grade():
    got = harmonize(crs_row("LEE2014", 7))
    assert got.grade_astct is None and got.grade_method is None
    assert got.problem.rule_id == "GRADE_OUT_OF_SCALE"


def test_harmonize_frame_joins_patient_age_for_icans():
    tox = pd.DataFrame(
        {
            "site_id": ["A", "A", "A"],
            "local_id": ["kid", "adult", "adult"],
            "tox_type": ["ICANS", "ICANS", "CRS"],
            "source_scale": ["CARTOX", "CARTOX", "LEE2014"],
            "source_grade": [1, 1, 9],
            "ice_score": pd.array([2, 2, None], dtype="Int64"),
            "capd_score": pd.array([4, 4, None], dtype="Int64"),
        },
        index=[10, 11, 12],
    )
    patient = pd.DataFrame(
        {"site_id": ["A", "A"], "local_id": ["kid", "adult"], "age_years": [8, 40]}
    )
    got = harmonize_frame(tox, patient)
    assert list(got.index) == [10, 11, 12]
    assert got["grade_astct"].tolist() == [1, 3, pd.NA]
    assert got["grade_method"].tolist() == ["regraded", "regraded", None]
    assert got["rule_id"].tolist() == [None, "GRADE_DISAGREES", "GRADE_OUT_OF_SCALE"]
    assert "outside the LEE2014 CRS 0..5 scale" in got.loc[12, "message"]
