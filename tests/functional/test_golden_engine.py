"""Same answers (issue 10 item 6): the engine reproduces the committed golden warehouse.

tests/golden/engine/ holds what the engine before the one-compiler rewrite produced for
the five demo centers and a 2,000-patient synth consortium (see `golden_engine`). Every
table is compared cell by cell. A difference is allowed only where it is a fixed bug
named in `FIXED_BUGS` below, with the reason.

Regenerate only on purpose:  .venv/bin/python -m tests.functional.golden_engine --regen
"""
from __future__ import annotations

import pytest

from tests.functional import golden_engine as g

# (consortium, table) -> why the golden file was regenerated after a bug fix or a new
# column. Every other table: the engine gives exactly the old answers.
FIXED_BUGS: dict[tuple[str, str], str] = {
    ("demo", "quarantine"): "issue 13 item 4: one finding for one bad cell (center_d row 6's out-of-scale grade "
                            "no longer adds OUT_OF_RANGE and REQUIRED_MISSING grade_astct/grade_method; a "
                            "missing infusion date at center_b row 7 / center_e row 53 no longer adds "
                            "REQUIRED_MISSING age_years, so the patient row is a CASCADE_PATIENT naming the "
                            "infusion); DUPLICATE_CONFLICT shows the conflicting values; new column "
                            "source_column (the export's own column); new column study_id (issue 14: the patient's "
                            "keyed study id, every other column equal when it is dropped)",
    ("demo", "site_summary"): "center_d: 3 fewer error findings (the out-of-scale grade above is one finding)",
    ("demo", "toxicity_treatment"): "issue 13 item 3: new column agent_local (a site's local agent under a class "
                                    "code); null for every demo course",
    ("synth", "quarantine"): "new columns source_column (issue 13 item 4) and study_id (issue 14); rows and "
                             "messages unchanged",
    ("synth", "toxicity_treatment"): "new column agent_local (issue 13 item 3), all null; the file is now .csv.gz "
                                     "(above golden_engine.GZIP_ABOVE)",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("golden")
    return {"demo": g.snapshot(g.build(g.demo_config(tmp / "demo"))),
            "synth": g.snapshot(g.build(g.synth_config(tmp / "synth")))}


@pytest.mark.parametrize("consortium", ["demo", "synth"])
@pytest.mark.parametrize("table", g.TABLES)
def test_engine_reproduces_golden(built, consortium: str, table: str):
    diff = g.differences(g.read_golden(consortium, table), built[consortium][table])
    assert not diff, f"{consortium}/{table} ({FIXED_BUGS.get((consortium, table), 'no fixed bug named')}):\n" \
        + "\n".join(diff)


def test_differences_sees_a_changed_cell():
    """The comparison can fail: one changed cell is reported with its row and column."""
    text = "a,b\n1,x\n2,y\n"
    assert g.differences(text, "a,b\n1,x\n2,z\n") == ["row 3 column b: expected 'y', found 'z'"]
    assert g.differences("a\n1.0\n", "a\n1.0000000000001\n") == []
