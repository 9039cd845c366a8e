"""GX suites generated from common.yml, and a site validation with Data Docs."""

import os
from pathlib import Path

import pandas as pd
import pytest

from etl.validate.gx_docs import validate_site
from schemas.expectations import build_suites, load_common_schema
from schemas.model import codes

SCHEMA = load_common_schema()
IN_SET = "expect_column_values_to_be_in_set"
BETWEEN = "expect_column_values_to_be_between"
NOT_NULL = "expect_column_values_to_not_be_null"
UNIQUE_KEY = "expect_compound_columns_to_be_unique"


def _valid_value(column: str, spec: dict, i: int):
    if column == "local_id":
        return f"p{i}"
    if spec.get("codelist"):
        return codes(spec["codelist"])[0]
    if "min" in spec or "max" in spec:
        return spec.get("min", 0) if spec["type"] == "int" else float(spec.get("min", 0)) + 1
    return {
        "string": "A",
        "date": pd.Timestamp("2024-01-10") + pd.Timedelta(days=i),
        "bool": True,
        "int": 1,
        "float": 1.0,
    }[spec["type"]]


def valid_tables(n: int = 2) -> dict[str, pd.DataFrame]:
    """n rows per table, one per patient p0..p{n-1}, every value valid."""
    return {
        table: pd.DataFrame(
            [{c: _valid_value(c, s, i) for c, s in spec["columns"].items()} for i in range(n)]
        )
        for table, spec in SCHEMA["tables"].items()
    }


def test_build_suites_one_suite_per_table_from_the_schema():
    suites = build_suites(SCHEMA)
    assert set(suites) == set(SCHEMA["tables"])
    tox = {(e.expectation_type, e.meta["column"]): e for e in suites["toxicity"].expectations}
    assert tox[(IN_SET, "o2_device")].value_set == codes("o2_device")
    assert "mechanical_ventilation" in tox[(IN_SET, "o2_device")].value_set
    assert (tox[(BETWEEN, "grade_astct")].min_value, tox[(BETWEEN, "grade_astct")].max_value) == (
        1,
        5,
    )
    assert (NOT_NULL, "grade_method") in tox and (NOT_NULL, "o2_device") not in tox
    key = tox[(UNIQUE_KEY, "site_id, local_id, tox_type, onset_date")]
    assert key.column_list == ["site_id", "local_id", "tox_type", "onset_date"]
    lab_value = {(e.expectation_type, e.meta["column"]): e for e in suites["lab"].expectations}
    assert lab_value[(BETWEEN, "value")].max_value is None
    assert all(e.meta["table"] == "toxicity" for e in suites["toxicity"].expectations)


def test_valid_site_passes_writes_docs_under_docs_dir_only(tmp_path, monkeypatch, capfd):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    docs_dir = tmp_path / "out" / "validation" / "A" / "gx"
    report = validate_site("A", valid_tables(), docs_dir)
    captured = capfd.readouterr()
    assert report.success, report.summary[~report.summary.success]
    assert report.docs_index == docs_dir / "index.html" and report.docs_index.is_file()
    assert list(docs_dir.glob("validations/**/*.html")), "no validation page"
    assert list(cwd.iterdir()) == [], "GX wrote into the cwd"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "out"]
    assert captured.out == "" and "Calculating Metrics" not in captured.err
    assert report.skipped_tables == ()
    assert set(report.summary["table"]) == set(SCHEMA["tables"])


@pytest.fixture(scope="module")
def bad_report(tmp_path_factory):
    tables = valid_tables(3)
    patient = tables["patient"]
    patient.loc[1, "sex"] = "X"  # not in codelist sex
    patient.loc[2, "age_years"] = 150  # above max 100
    patient.loc[0, "disease_status"] = None  # required
    tox = tables["toxicity"]
    tox["o2_flow_l_min"] = [5.0, -1.0, 99.0]  # two outside 0..80
    lab = tables["lab"]
    lab.loc[2, "local_id"], lab.loc[2, "sample_date"] = "p1", lab.loc[1, "sample_date"]  # dup key
    tables["outcome"] = tables["outcome"].drop(columns="last_contact_date")
    del tables["response"]
    docs = tmp_path_factory.mktemp("bad") / "gx"
    return validate_site("B", tables, docs)


@pytest.mark.parametrize(
    "table,expectation,column,unexpected",
    [
        ("patient", IN_SET, "sex", 1),
        ("patient", BETWEEN, "age_years", 1),
        ("patient", NOT_NULL, "disease_status", 1),
        ("toxicity", BETWEEN, "o2_flow_l_min", 2),
        ("lab", UNIQUE_KEY, "site_id, local_id, analyte, sample_date", 2),
    ],
)
def test_bad_values_fail_the_right_expectation(bad_report, table, expectation, column, unexpected):
    outcome = bad_report.outcome(table, expectation, column)
    assert not outcome.success
    assert (outcome.unexpected_count, outcome.element_count) == (unexpected, 3)


def test_bad_site_report_overall(bad_report):
    assert not bad_report.success
    assert bad_report.skipped_tables == ("response",)
    missing = bad_report.outcome("outcome", "expect_column_to_exist", "last_contact_date")
    assert not missing.success
    failed = {(o.table, o.column) for o in bad_report.failures()}
    assert ("patient", "sex") in failed and ("infusion", "product") not in failed
    assert bad_report.outcome("patient", IN_SET, "sex").rule_id == "UNKNOWN_CODE"
    assert bad_report.docs_index.is_file()


def test_docs_dir_may_be_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = validate_site("C", {"sex_only": pd.DataFrame()} | valid_tables(1), Path("docs"))
    assert report.docs_index == tmp_path / "docs" / "index.html"
    assert sorted(os.listdir(tmp_path)) == ["docs"]


def test_data_docs_open_offline_and_the_index_lists_every_suite(bad_report):
    """Issue 13: GX's templates load their styles from CDNs; offline the pages were unstyled
    and the index (drawn by a JavaScript table) was empty."""
    import re

    from etl.validate.docs_offline import remote_references

    docs = bad_report.docs_index.parent
    assert remote_references(docs) == []
    for page in docs.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"<(link|script)\b[^>]*(href|src)\s*=\s*[\"']?(https?:)?//", text, re.I), page
        assert 'id="carpool-offline"' in text, page
    index = bad_report.docs_index.read_text(encoding="utf-8")
    for table in set(SCHEMA["tables"]) - {"response"}:
        link = re.search(rf'<a href="(validations/{table}/[^"]+\.html)">{table}</a>', index)
        assert link and (docs / link.group(1)).is_file(), table
        assert f'href="expectations/{table}.html"' in index
    assert index.count('class="fail">Failed') == len({o.table for o in bad_report.failures()})


def test_masked_examples_keep_names_and_local_ids_out_of_the_docs(tmp_path):
    """GX shows unexpected values as examples: the pre-quarantine sample is masked first."""
    from etl.validate.prequarantine import Masker

    tables = valid_tables(3)
    tables["patient"]["local_id"] = ["MRN7700123", "MRN7700124", "MRN7700125"]
    tables["patient"].loc[1, "sex"] = "Chen Xiaoming"               # a name in a coded column
    tables["patient"].loc[2, "disease_status"] = "call 138-0000-1111"  # a phone number
    masker = Masker({"Chen Xiaoming", "13800001111"}, lambda lid: f"sid{len(lid)}x{lid[-1]}")
    masked = {t: masker.mask(f) for t, f in tables.items()}
    report = validate_site("M", masked, tmp_path / "gx")
    assert not report.outcome("patient", IN_SET, "sex").success   # the failure is still counted
    text = "\n".join(p.read_text(encoding="utf-8") for p in (tmp_path / "gx").rglob("*.html"))
    for secret in ("Chen", "Xiaoming", "138-0000-1111", "MRN77001"):
        assert secret not in text
    assert "***" in text
