"""The bench's lower bounds (`make bench`) do what their rows say: the minimal mapping of
the lab files, streamed, held in a table, or held and checked for repeated keys (the
catalog's duplicate rule); the catalog bound applies every lab rule. A bound that skipped
its work would flatter the refresh."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import date

import duckdb

from etl.scale.bench import RAW_CATALOG, RAW_MAPPED, catalog_spec
from schemas.model import common_schema


def test_the_checked_lower_bound_drops_repeated_keys_and_the_others_keep_every_row(tmp_path):
    labs = tmp_path / "labs.csv"
    labs.write_text("patient_id,analyte,result,unit,sample_date\n"
                    "P1,IL6,1.5,pg/mL,2022-01-01\n"
                    "P1,IL6,2.5,pg/mL,2022-01-01\n"      # the same key as the row above
                    "P1,FERRITIN,300,ng/mL,2022-01-01\n"
                    "P2,IL6,7,pg/mL,2022-01-02\n", encoding="utf-8")
    codes = tmp_path / "lab_analyte.csv"
    codes.write_text("source_value,target_value\nIL6,il6\nFERRITIN,ferritin\n", encoding="utf-8")
    key = ",".join(c for c in common_schema()["lab"].keys if c != "site_id")
    rows = {}
    con = duckdb.connect()   # its own: the module's default connection is shared with other tests
    for step in ("mapped", "materialized", "checked"):
        subprocess.run([sys.executable, "-c", RAW_MAPPED, step, key, str(tmp_path / f"{step}."), str(labs),
                        str(codes)], check=True, capture_output=True)
        rows[step] = con.execute(f"SELECT source_row, analyte, value, sample_date FROM "
                                 f"read_parquet('{tmp_path / step}.0') ORDER BY source_row").fetchall()
    con.close()
    assert len(rows["mapped"]) == 4 and rows["materialized"] == rows["mapped"]
    assert [r[0] for r in rows["checked"]] == [3, 4]
    assert rows["checked"][0][1:3] == ("ferritin", 300.0)


def test_the_catalog_lower_bound_quarantines_each_rule_and_loads_the_rest(tmp_path):
    """Every lab rule of the catalog bound fires on its row, held or written once: the
    loaded rows are the clean ones and the warning's (after the cut-off), each failing row
    has one quarantine record naming its first rule, and the study id, from the patient
    ids of the site's patient-level export, is joined on (P9 is not in it: an orphan)."""
    labs = tmp_path / "labs.csv"
    labs.write_text("patient_id,analyte,result,unit,sample_date\n"
                    "P1,IL6,1.5,pg/mL,2022-01-01\n"        # 1 clean
                    "P1,FERRITIN,2,ng/mL,2022-01-01\n"     # 2, 3: a repeated key
                    "P1,FERRITIN,3,ng/mL,2022-01-01\n"
                    "P2,IL6,,pg/mL,2022-01-02\n"           # 4 value missing
                    "P2,XYZ,1,pg/mL,2022-01-02\n"          # 5 unknown code
                    "P2,IL6,abc,pg/mL,2022-01-03\n"        # 6 not a number
                    "P2,IL6,1,pg/mL,2022-13-45\n"          # 7 not a date
                    "P2,IL6,-1,pg/mL,2022-01-04\n"         # 8 negative
                    "P2,IL6,2,ng/mL,2022-01-05\n"          # 9 clean, ng/mL -> pg/mL x 1000
                    "P2,IL6,2000000,pg/mL,2022-01-06\n"    # 10 beyond il6's limit
                    "P2,IL6,1,pg/mL,1850-01-01\n"          # 11 before the floor year
                    "P2,IL6,1,pg/mL,2024-01-01\n"          # 12 after the cut-off: a warning, loaded
                    "P9,IL6,1,pg/mL,2022-01-01\n"          # 13 no such patient
                    "PÄ,IL6,1,pg/mL,2022-01-01\n",         # 14 a non-ASCII id
                    encoding="utf-8")
    codes = tmp_path / "lab_analyte.csv"
    codes.write_text("source_value,target_value\nIL6,il6\nFERRITIN,ferritin\n", encoding="utf-8")
    patients = tmp_path / "patients.csv"   # the identifiers' source, decoded before DuckDB reads it
    patients.write_text("patient_id;age\nP1;40\nP2;50\nPÄ;60\n", encoding="latin-1")
    sites = json.dumps([{"labs": str(labs), "codes": str(codes), "id_source": "patients", "id_column": '"patient_id"',
                         "sources": {"patients": {"path": str(patients), "format": "csv", "encoding": "latin-1",
                                                  "delimiter": ";"}}}])
    con = duckdb.connect()
    spec = json.dumps(catalog_spec(date(2023, 3, 1)))
    for step in ("held", "written_once"):
        subprocess.run([sys.executable, "-c", RAW_CATALOG, step, spec, str(tmp_path / f"{step}."), sites],
                       check=True, capture_output=True)
        quarantine = dict(con.execute(f"SELECT source_row, rule_id FROM read_parquet('{tmp_path / step}.q0') "
                                      "ORDER BY source_row").fetchall())
        assert quarantine == {2: "DUPLICATE", 3: "DUPLICATE", 4: "REQUIRED_MISSING", 5: "UNKNOWN_CODE",
                              6: "TYPE_MISMATCH", 7: "DATE_UNPARSEABLE", 8: "NEGATIVE_LAB", 10: "LAB_LIMIT_IL6",
                              11: "DATE_BEFORE_MIN", 12: "DATE_AFTER_CUTOFF", 13: "ORPHAN_ROW",
                              14: "ID_CONFUSABLE"}, step
        if step == "held":
            loaded = con.execute(f"SELECT source_row, value, study_id IS NOT NULL "
                                 f"FROM read_parquet('{tmp_path}/held.0') ORDER BY source_row").fetchall()
            assert loaded == [(1, 1.5, True), (9, 2000.0, True), (12, 1.0, True)]
    con.close()
