"""The data dictionary explains every column of every table and view (issue: the warehouse as a product)."""
from __future__ import annotations

from warehouse.build import VIEWS_DIR
from warehouse.dictionary import missing_descriptions, view_columns


def test_every_column_has_a_description(db):
    assert missing_descriptions(db) == []


def test_each_view_header_documents_exactly_its_columns(db):
    """A column added to a view without a header line, or a header line for a column that is gone, fails."""
    for path in sorted(VIEWS_DIR.glob("*.sql")):
        actual = [r[0] for r in db.execute(f"DESCRIBE {path.stem}").fetchall()]
        assert list(view_columns(path.read_text(encoding="utf-8"))) == actual, path.name


def test_units_are_ucum_codes_and_code_lists_are_tables(db):
    units = dict(db.execute("""SELECT "table" || '.' || "column", unit_ucum FROM data_dictionary
                               WHERE unit_ucum IS NOT NULL""").fetchall())
    assert units["analysis_patient.os_months"] == "mo"
    assert units["patient.age_years"] == "a"
    assert units["infusion.dose_1e6_per_kg"] == "10*6/kg"
    lists = {r[0] for r in db.execute("SELECT DISTINCT codelist FROM data_dictionary WHERE codelist IS NOT NULL")
             .fetchall()}
    # a code list is stored like every table (Parquet, a view over it) and listed as kind codelist
    stored = {r[0] for r in db.execute("""SELECT DISTINCT "table" FROM data_dictionary
                                          WHERE kind = 'codelist'""").fetchall()}
    assert lists and {f"codelist_{c}" for c in lists} <= stored
    for name in stored:
        assert db.execute(f"SELECT count(*) FROM {name}").fetchone()[0] > 0, name


def test_steroids_come_from_the_agent_code_list(db):
    """analysis_patient.steroids reads codelist_agent.is_steroid instead of a hard-coded list."""
    sql = (VIEWS_DIR / "analysis_patient.sql").read_text(encoding="utf-8")
    assert "dexamethasone" not in sql.split("-- Columns:")[1].split("\nWITH")[1]
    n = db.execute("""SELECT count(*) FROM analysis_patient a WHERE steroids <> EXISTS (
                        SELECT 1 FROM toxicity_treatment t JOIN codelist_agent c ON c.code = t.agent
                        WHERE t.study_id = a.study_id AND c.is_steroid)""").fetchone()[0]
    assert n == 0


def test_analysis_patient_has_day_zero(db):
    n = db.execute("""SELECT count(*) FROM analysis_patient a
                      WHERE infusion_date <> (SELECT min(infusion_date) FROM infusion i WHERE i.study_id = a.study_id)
                         OR infusion_date IS NULL""").fetchone()[0]
    assert n == 0
