"""`carpool export adam` and `carpool export omop` on the demo warehouse.

ADaM: the files are read back with pyreadstat (SAS transport v5) and OS in ADTTE must equal
analysis_patient. OMOP: a few OHDSI DataQualityDashboard check types that apply to these
tables (isRequired, a valid concept from the map, plausibleTemporalAfter / within the
observation period, measurePersonCompleteness) run over the written Parquet.
"""
from __future__ import annotations

import math

import duckdb
import pandas as pd
import pyreadstat
import pytest

from warehouse.exports.adam import export_adam
from warehouse.exports.omop import HERE as OMOP_DIR
from warehouse.exports.omop import TABLES, export_omop

MONTH = 365.25 / 12


@pytest.fixture(scope="module")
def adam(demo, tmp_path_factory):
    cfg, _ = demo
    out = tmp_path_factory.mktemp("adam")
    con = duckdb.connect(str(cfg.out / "warehouse.duckdb"), read_only=True)
    try:
        export_adam(con, out)
        patients = con.execute("SELECT * FROM analysis_patient").fetchdf().set_index("study_id")
    finally:
        con.close()
    return out, patients


def test_adtte_os_equals_analysis_patient(adam):
    out, patients = adam
    adtte, meta = pyreadstat.read_xport(str(out / "adtte.xpt"))
    assert meta.table_name == "ADTTE"
    os_ = adtte[adtte.PARAMCD == "OS"].set_index("USUBJID")
    assert sorted(os_.index) == sorted(patients.index)
    for sid, row in os_.iterrows():
        assert math.isclose(row.AVAL / MONTH, patients.loc[sid, "os_months"], rel_tol=1e-12), sid
        assert row.CNSR == 1 - patients.loc[sid, "os_event"]       # ADaM: 1 = censored
    lfs = adtte[adtte.PARAMCD == "LFS"].set_index("USUBJID")
    cr = patients[patients.cr_d30 == True]  # noqa: E712
    assert sorted(lfs.index) == sorted(cr.index)
    for sid, row in lfs.iterrows():
        assert math.isclose(row.AVAL / MONTH, cr.loc[sid, "lfs_months"], rel_tol=1e-12), sid
        assert row.CNSR == 1 - cr.loc[sid, "lfs_event"]
    assert set(adtte.PARAMCD) == {"OS", "LFS", "TTCRS", "TTICANS"}
    assert (adtte.AVAL >= 0).all() and set(adtte.CNSR) <= {0.0, 1.0}


def test_adsl_one_row_per_subject_with_labels(adam):
    out, patients = adam
    adsl, meta = pyreadstat.read_xport(str(out / "adsl.xpt"))
    assert len(adsl) == len(patients) and adsl.USUBJID.is_unique
    assert all(len(c) <= 8 for c in adsl.columns)
    assert all(0 < len(meta.column_names_to_labels[c]) <= 40 for c in adsl.columns)
    assert (adsl.TOXGRP.str.lower().value_counts().sort_index()
            == patients.tox_group.value_counts().sort_index()).all()
    define = pd.read_csv(out / "define.csv")
    assert set(zip(define.dataset, define.variable, strict=True)) >= {("ADSL", c) for c in adsl.columns}


@pytest.fixture(scope="module")
def omop(demo, tmp_path_factory):
    cfg, _ = demo
    out = tmp_path_factory.mktemp("omop")
    con = duckdb.connect(str(cfg.out / "warehouse.duckdb"), read_only=True)
    try:
        result = export_omop(con, out)
        n_patients = con.execute("SELECT count(*) FROM analysis_patient").fetchone()[0]
        n_deaths = con.execute("SELECT sum(os_event) FROM analysis_patient").fetchone()[0]
    finally:
        con.close()
    cdm = duckdb.connect()
    for t in TABLES:
        cdm.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{out / (t + '.parquet')}')")
    cdm.execute(f"CREATE TABLE concept_map AS SELECT * FROM read_csv('{OMOP_DIR / 'concept_map.csv'}')")
    yield cdm, result, n_patients, n_deaths
    cdm.close()


REQUIRED = {  # DQD isRequired, CDM v5.4 fields that are NOT NULL
    "person": ["person_id", "gender_concept_id", "year_of_birth", "race_concept_id", "ethnicity_concept_id"],
    "observation_period": ["observation_period_id", "person_id", "observation_period_start_date",
                           "observation_period_end_date", "period_type_concept_id"],
    "visit_occurrence": ["visit_occurrence_id", "person_id", "visit_concept_id", "visit_start_date",
                         "visit_end_date", "visit_type_concept_id"],
    "condition_occurrence": ["condition_occurrence_id", "person_id", "condition_concept_id",
                             "condition_start_date", "condition_type_concept_id"],
    "measurement": ["measurement_id", "person_id", "measurement_concept_id", "measurement_date",
                    "measurement_type_concept_id"],
    "drug_exposure": ["drug_exposure_id", "person_id", "drug_concept_id", "drug_exposure_start_date",
                      "drug_exposure_end_date", "drug_type_concept_id"],
    "death": ["person_id", "death_date", "death_type_concept_id"],
}


@pytest.mark.parametrize("table", TABLES)
def test_dqd_is_required(omop, table):
    cdm = omop[0]
    for col in REQUIRED[table]:
        assert cdm.execute(f"SELECT count(*) FROM {table} WHERE {col} IS NULL").fetchone()[0] == 0, f"{table}.{col}"


@pytest.mark.parametrize("table", TABLES)
def test_dqd_concept_ids_come_from_the_map(omop, table):
    """Every *_concept_id is 0 (no matching concept) or a concept the map names."""
    cdm = omop[0]
    cols = [r[0] for r in cdm.execute(f"DESCRIBE {table}").fetchall() if r[0].endswith("_concept_id")]
    for col in cols:
        bad = cdm.execute(f"""SELECT DISTINCT {col} FROM {table}
                              WHERE {col} <> 0 AND {col} NOT IN (SELECT concept_id FROM concept_map)""").fetchall()
        assert bad == [], f"{table}.{col}: {bad}"


@pytest.mark.parametrize("table, date", [("visit_occurrence", "visit_start_date"),
                                         ("condition_occurrence", "condition_start_date"),
                                         ("measurement", "measurement_date"),
                                         ("drug_exposure", "drug_exposure_start_date"),
                                         ("death", "death_date")])
def test_dqd_events_within_observation_period(omop, table, date):
    cdm = omop[0]
    n = cdm.execute(f"""SELECT count(*) FROM {table} t JOIN observation_period o USING (person_id)
                        WHERE t.{date} NOT BETWEEN o.observation_period_start_date
                                               AND o.observation_period_end_date""").fetchone()[0]
    assert n == 0


def test_dqd_counts_and_foreign_keys(omop):
    cdm, result, n_patients, n_deaths = omop
    assert result.rows["person"] == n_patients and result.rows["death"] == n_deaths
    for t in TABLES[1:]:
        assert cdm.execute(f"SELECT count(*) FROM {t} WHERE person_id NOT IN (SELECT person_id FROM person)"
                           ).fetchone()[0] == 0, t
    assert cdm.execute("SELECT count(*) FROM drug_exposure WHERE drug_concept_id = 0").fetchone()[0] == 0
    assert cdm.execute("SELECT count(DISTINCT unit_concept_id) FROM measurement").fetchone()[0] >= 2


def test_athena_vocabulary_resolves_unmapped_codes(demo, tmp_path):
    """A 'Maps to' relationship in an Athena download fills the concept_id the map left at 0."""
    cfg, _ = demo
    vocab = tmp_path / "vocab"
    vocab.mkdir()
    (vocab / "CONCEPT.csv").write_text("concept_id\tconcept_name\tvocabulary_id\tconcept_code\n"
                                       "900001\tCRS grade 3\tICD10CM\tD89.833\n"
                                       "900002\tCytokine release syndrome\tSNOMED\t1234\n")
    (vocab / "CONCEPT_RELATIONSHIP.csv").write_text("concept_id_1\tconcept_id_2\trelationship_id\tinvalid_reason\n"
                                                    "900001\t900002\tMaps to\t\n")
    con = duckdb.connect(str(cfg.out / "warehouse.duckdb"), read_only=True)
    try:
        result = export_omop(con, tmp_path / "omop", vocab)
        grade3 = con.execute("SELECT count(*) FROM toxicity WHERE tox_type = 'CRS' AND grade_astct = 3").fetchone()[0]
    finally:
        con.close()
    assert "ICD10CM D89.833" not in result.unresolved and "ICD10CM D89.831" in result.unresolved
    # fetchall, not fetchone: DuckDB's shared default connection is left without an unfinished
    # result, which would fail the next test that uses it
    n = duckdb.execute(f"SELECT count(*) FROM read_parquet('{tmp_path / 'omop' / 'condition_occurrence.parquet'}') "
                       "WHERE condition_concept_id = 900002").fetchall()[0][0]
    assert n == grade3
