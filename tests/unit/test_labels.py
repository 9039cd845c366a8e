"""Readable level names come from the plan and the code lists, never from a map of their own."""

from __future__ import annotations

from analysis.labels import code_labels, level_text
from analysis.plan import load_plan
from schemas.model import codelist


def test_code_labels_follow_the_view_header_to_the_code_lists():
    plan = load_plan()
    codes = code_labels(plan)
    # analysis_patient.sql: `sex {sex}`, `disease_status {disease_status}`
    assert codes["sex"] == {r["code"]: r["description"] for r in codelist("sex")}
    assert codes["disease_status"]["primary_refractory"] == next(
        r["description"] for r in codelist("disease_status") if r["code"] == "primary_refractory")
    assert "age" not in codes and "crs" not in codes  # no code list, no entry


def test_level_text_order_plan_then_code_list_then_yes_no_then_code():
    plan = load_plan()
    codes = {"sex": {"M": "Male"}, "tox_group": {"grade3plus": "not this one"}}
    assert level_text(plan, "tox_group", "grade3plus", codes) == plan.variables[
        "tox_group"].level_labels["grade3plus"]
    assert level_text(plan, "sex", "M", codes) == "Male"
    assert level_text(plan, "ph", "yes", codes) == "Yes"
    assert level_text(plan, "disease_status", "primary_refractory", {}) == "primary refractory"
