"""ASTCT 2019 grading components for the twin's CRS and ICANS episodes.

Given the episode grade, draw components whose ASTCT grade is exactly that grade
(the ETL re-derives the grade from components for center_d, so they must agree).
The grade on the center's own scale (Lee 2014 for CRS, CTCAE v4 for ICANS) is
taken equal to the ASTCT grade: a simplification, noted in sites/twin/README.md.
"""

from __future__ import annotations

import numpy as np

CRS_COLS = ["crs_max_temp_c", "crs_hypotension", "crs_n_vasopressors", "crs_o2_device",
            "crs_o2_flow_l_min"]
ICANS_COLS = ["icans_ice_score", "icans_capd_score", "icans_consciousness", "icans_seizure",
              "icans_motor_weakness", "icans_cerebral_edema"]


def crs_components(rng: np.random.Generator, grade: int) -> dict:
    """Fever, hypotension, vasopressors and oxygen consistent with an ASTCT CRS grade."""
    temp = round(float(rng.uniform(38.1, 40.6)), 1)
    if grade == 0:
        return dict.fromkeys(CRS_COLS)
    hypo, vaso, device, flow = False, 0, "none", 0.0
    if grade == 2:
        hypo = bool(rng.random() < 0.6)
        if not hypo or rng.random() < 0.4:
            device, flow = "low_flow_nasal", float(rng.integers(1, 7))
    elif grade == 3:
        vaso, hypo = (1, True) if rng.random() < 0.6 else (0, bool(rng.random() < 0.5))
        if vaso == 0 or rng.random() < 0.5:
            device = str(rng.choice(["high_flow_nasal", "facemask", "nonrebreather"]))
            flow = float(rng.integers(8, 16)) if device != "high_flow_nasal" else 10.0
    elif grade == 4:
        vaso, hypo = (int(rng.integers(2, 4)), True) if rng.random() < 0.6 else (1, True)
        if vaso < 2:
            device = str(rng.choice(["cpap", "bipap", "mechanical_ventilation"]))
            flow = 0.0
    return {"crs_max_temp_c": temp, "crs_hypotension": hypo, "crs_n_vasopressors": vaso,
            "crs_o2_device": device, "crs_o2_flow_l_min": flow}


def icans_components(rng: np.random.Generator, grade: int, age: int) -> dict:
    """ICE (or CAPD for age <= 12), consciousness, seizure, motor and edema for a grade."""
    if grade == 0:
        return dict.fromkeys(ICANS_COLS)
    child = age <= 12
    out = {"icans_ice_score": None, "icans_capd_score": None, "icans_consciousness": "awake",
           "icans_seizure": "none", "icans_motor_weakness": False,
           "icans_cerebral_edema": "none"}
    if child:
        out["icans_capd_score"] = int(rng.integers(1, 9)) if grade <= 2 else int(
            rng.integers(9, 20))
    else:
        ice = {1: (7, 10), 2: (3, 7), 3: (0, 3), 4: (0, 3)}[grade]
        out["icans_ice_score"] = int(rng.integers(*ice))
    if grade == 2 and (child or rng.random() < 0.4):
        out["icans_consciousness"] = "voice"
    if grade == 3:
        pick = rng.random()
        if pick < 0.4:
            out["icans_consciousness"] = "tactile"
        elif pick < 0.7:
            out["icans_seizure"] = "self_limited"
    if grade == 4:
        pick = rng.random()
        if pick < 0.4:
            out["icans_consciousness"] = "unarousable"
            if not child:
                out["icans_ice_score"] = 0
        elif pick < 0.7:
            out["icans_seizure"] = "prolonged"
        else:
            out["icans_cerebral_edema"] = "diffuse"
    return out
