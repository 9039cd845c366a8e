"""The bench's lower bounds (`make bench`) do what their rows say: the minimal mapping of
the lab files, streamed, held in a table, or held and checked for repeated keys (the
catalog's duplicate rule). A bound that skipped its work would flatter the refresh."""
from __future__ import annotations

import subprocess
import sys

import duckdb

from etl.scale.bench import RAW_MAPPED
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
