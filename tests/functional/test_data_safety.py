"""Issue 15 items 3, 6 and 7 end to end, through the real `carpool` CLI on copies of the
demo centers (all five export formats: CSV, Excel, GBK CSV, SPSS, REDCap):

- identifiers (names, MRNs, phones, a 2-letter name, CJK names) are seeded into bad cells
  of every format, and an orphan row's local id is planted; after refresh, validate,
  analyze, export-aggregates and runs, every file under out/ (HTML, CSV, Parquet, DuckDB,
  JSON, logs) and everything the commands printed is scanned for them;
- a site whose export became header-only is not published without --allow-shrink;
- the demo's shared aggregates hold against a linear-program attack.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import openpyxl
import pandas as pd
import pyreadstat
import pytest
import yaml

from etl.compile.mapping import load_mapping
from etl.config import KEY_ENV
from etl.read.readers import read_source
from tests.suppression_solver import MIN_CELL, crosstab_ranges, result_ranges

ROOT = Path(__file__).resolve().parents[2]
CARPOOL = str(Path(sys.executable).parent / "carpool")
SITES = ["center_a", "center_b", "center_c", "center_d", "center_e"]
ORPHAN_ID = "C-ORPH9"
SHORT_NAMES = ["Qx", "Qy"]
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    env["COLUMNS"] = "200"
    return subprocess.run([CARPOOL, *args, "--config", str(root / "carpool.yml")] if args[0] != "--log-json"
                          else [CARPOOL, *args[:2], "--config", str(root / "carpool.yml"), *args[2:]],
                          capture_output=True, text=True, env=env, cwd=root, timeout=600)


# ---------------------------------------------------------------- seeding

def seed_csv(path: Path, encoding: str, sep: str, edit) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding, sep=sep)
    edit(frame)
    frame.to_csv(path, index=False, encoding=encoding, sep=sep)


def seed_a(f: pd.DataFrame) -> None:
    f.loc[0, "sex"] = f"{f.loc[0, 'sex']} {f.loc[0, 'phone']}"         # Male 170-0000-5666
    f.loc[1, "response_d30"] = f"CR {f.loc[1, 'name']}"                # CR Gao Hongjun
    f.loc[2, "name"] = SHORT_NAMES[0]
    f.loc[2, "response_d30"] = f"CR {SHORT_NAMES[0]}"                  # a 2-letter name
    f.loc[3, "il6_peak_pg_ml"] = f.loc[3, "mrn"]                       # an MRN in a number column


def seed_c(f: pd.DataFrame) -> None:
    reg = f.index[f["sex"] != ""]
    f.loc[reg[0], "sex"] = f"{f.loc[reg[0], 'sex']} {f.loc[reg[0], 'phone']}"
    f.loc[reg[1], "name"] = SHORT_NAMES[1]
    f.loc[reg[1], "sex"] = f"{f.loc[reg[1], 'sex']} {SHORT_NAMES[1]}"
    lab = f.index[f["event"] == "检验"]
    f.loc[lab[0], "patient_no"] = ORPHAN_ID                            # ORPHAN_ROW


def seed_e(f: pd.DataFrame) -> None:
    base = f.index[f["redcap_repeat_instrument"] == ""]
    f.loc[base[0], "sex"] = f"{f.loc[base[0], 'sex']} {f.loc[base[0], 'phone']}"


def seed_b(path: Path) -> None:
    wb = openpyxl.load_workbook(path)
    ws = wb["患者"]
    head = [c.value for c in ws[2]]
    col = {h: i + 1 for i, h in enumerate(head)}
    ws.cell(3, col["性别"]).value = f"{ws.cell(3, col['性别']).value} {ws.cell(3, col['联系电话']).value}"
    ws.cell(4, col["疗效"]).value = f"CR{ws.cell(4, col['姓名']).value}"     # a CJK name, no space
    wb.save(path)


def seed_d(path: Path) -> None:
    frame, meta = pyreadstat.read_sav(str(path), apply_value_formats=False)
    frame.loc[0, "infdate"] = f"{frame.loc[0, 'infdate']} {frame.loc[0, 'name']}"
    pyreadstat.write_sav(frame, str(path), column_labels=meta.column_names_to_labels,
                         variable_value_labels=meta.variable_value_labels)


def identifiers(root: Path) -> set[str]:
    """Every direct-identifier value of every seeded export, as text a reader would see
    (ISO birth dates left out: they collide with other patients' clinical dates)."""
    out = {ORPHAN_ID, *SHORT_NAMES}
    for sid in SITES:
        m = load_mapping(root / "sites" / sid / "mapping.yml")
        raw = read_source(m.identifiers.source, m.sources[m.identifiers.source], m.site_dir).frame
        for col in m.identifiers.columns:
            for v in raw[col]:
                if v is None or (isinstance(v, float) and pd.isna(v)) or str(v).strip() in ("", "nan"):
                    continue
                if isinstance(v, int | float) and not isinstance(v, bool):
                    continue  # an Excel date serial: a number, not text to find
                text = v.isoformat()[:10] if hasattr(v, "isoformat") else str(v).strip()
                if ISO_DATE.fullmatch(text):
                    continue  # a birth date can equal another patient's infusion date: no signal
                out.add(text)
    return out


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    root = tmp_path_factory.mktemp("phi")
    for sid in SITES:
        shutil.copytree(ROOT / "sites" / sid, root / "sites" / sid)
    ex = root / "sites"
    seed_csv(ex / "center_a/export/cart_patients.csv", "utf-8", ",", seed_a)
    seed_b(ex / "center_b/export/cart_export_2023-03.xlsx")
    seed_csv(ex / "center_c/export/cart_events.csv", "gbk", ";", seed_c)
    seed_d(ex / "center_d/export/cart_study.sav")
    seed_csv(ex / "center_e/export/cart_redcap_raw.csv", "utf-8", ",", seed_e)
    raw = yaml.safe_load((ROOT / "carpool.yml").read_text())
    raw["output_dir"] = "out"
    raw["quality"] = {"max_quarantined_pct": 50}
    raw["sites"] = [{"id": s, "mapping": f"sites/{s}/mapping.yml"} for s in SITES]
    (root / "carpool.yml").write_text(yaml.safe_dump(raw, allow_unicode=True))
    runs = [cli(root, "refresh")]
    # dry runs write each site's validation HTML and quarantine.csv (the same records as the
    # warehouse's quarantine, scanned there for every site): Excel, and GBK CSV in JSON mode
    runs += [cli(root, "validate", "--site", "center_b")]
    runs += [cli(root, "--log-json", "validate", "--site", "center_c")]
    runs += [cli(root, "analyze"), cli(root, "export-aggregates", "--out", str(root / "out/shared/agg.csv")),
             cli(root, "runs")]
    return root, runs


BINARY = {".png", ".gif", ".ico", ".otf", ".woff", ".woff2", ".ttf", ".jpg"}   # pictures and fonts
DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+")


def readable_text(path: Path) -> str:
    """A file's content as text: tables of DuckDB and Parquet files cell by cell, else its bytes
    (an embedded base64 picture dropped: short names would match its letters by chance)."""
    if path.suffix == ".duckdb":
        con = duckdb.connect(str(path), read_only=True)
        try:
            parts = []
            for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall():
                parts.append(con.execute(f'SELECT * FROM "{t}"').fetchdf().astype(str).to_csv())
            return "\n".join(parts)
        finally:
            con.close()
    if path.suffix == ".parquet":
        return pd.read_parquet(path).astype(str).to_csv()
    return DATA_URI.sub("", path.read_bytes().decode("utf-8", errors="replace"))


def leaks_in(text: str, idents: set[str]) -> list[str]:
    """Identifiers in `text`: short ASCII ones as whole tokens, the rest anywhere, any case."""
    low = text.lower()
    out = []
    for i in idents:
        if len(i) < 4 and i.isascii():
            if re.search(rf"(?<!\w){re.escape(i.lower())}(?!\w)", low):
                out.append(i)
        elif i.lower() in low:
            out.append(i)
    return out


# ---------------------------------------------------------------- item 3

def test_every_command_ran(seeded):
    _, runs = seeded
    for r in runs:
        assert "Traceback" not in r.stderr + r.stdout, r.args
    assert runs[0].returncode == 0, runs[0].stderr


def test_the_seeded_cells_were_caught_and_masked(seeded):
    root, _ = seeded
    con = duckdb.connect(str(root / "out/warehouse.duckdb"), read_only=True)
    q = con.execute("SELECT site_id, rule_id, column_name, value FROM quarantine").fetchdf()
    con.close()
    masked = q[q["value"] == "***"]
    assert set(masked["site_id"]) >= {"center_a", "center_b", "center_c", "center_d", "center_e"}
    orphan = q[(q["rule_id"] == "ORPHAN_ROW") & (q["site_id"] == "center_c")]
    assert len(orphan) == 1 and re.fullmatch(r"S[0-9a-f]{16}", orphan.iloc[0]["value"])


def test_no_identifier_in_any_file_under_out_or_any_output(seeded):
    root, runs = seeded
    idents = identifiers(root)
    assert len(idents) > 300 and "Qx" in idents
    files = [p for p in (root / "out").rglob("*") if p.is_file() and not p.is_symlink() and p.suffix not in BINARY]
    kinds = {p.suffix for p in files}
    assert {".html", ".csv", ".parquet", ".duckdb", ".json", ".jsonl"} <= kinds, kinds
    leaks = []
    for p in files:
        text = readable_text(p) + "\n" + str(p.relative_to(root))
        leaks += [(str(p.relative_to(root)), i) for i in leaks_in(text, idents)]
    for r in runs:
        leaks += [(" ".join(r.args[1:3]), i) for i in leaks_in(r.stdout + r.stderr, idents)]
    assert not leaks, leaks[:20]


# ---------------------------------------------------------------- item 7 on the demo

def test_demo_shared_aggregates_hold_against_the_solver(seeded):
    root, _ = seeded
    published = pd.read_csv(root / "out/shared/agg.csv", comment="#",
                            dtype={c: "string" for c in ("site_id", "tox_group", "cr_d30", "mrd_neg_cr", "term")})
    published["term"] = published["term"].fillna("")
    con = duckdb.connect(str(root / "out/warehouse.duckdb"), read_only=True)
    truth = con.execute("SELECT * FROM analysis_result").fetchdf().drop(columns=["run_id"])
    con.close()
    truth["term"] = truth["term"].fillna("")
    res = published[published["section"] == "result"].reset_index(drop=True)
    assert len(res) == len(truth)
    assert published["suppressed"].any()
    bad = [r for r in crosstab_ranges(published) if r[2] - r[1] < MIN_CELL]
    assert not bad, bad[:5]
    ranges = result_ranges(published, truth)
    assert ranges, "the demo has small counts in its result tables"
    bad = [r for r in ranges if r[2] - r[1] < MIN_CELL]
    assert not bad, bad[:5]


# ---------------------------------------------------------------- item 6: shrink

def test_a_header_only_export_is_not_published_without_allow_shrink(seeded, tmp_path):
    src, _ = seeded
    root = tmp_path / "w"
    shutil.copytree(src, root, symlinks=True)
    export = root / "sites/center_a/export/cart_patients.csv"
    export.write_text(export.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")

    def patients() -> dict[str, int]:
        con = duckdb.connect(str(root / "out/warehouse.duckdb"), read_only=True)
        try:
            return dict(con.execute("SELECT site_id, count(*) FROM patient GROUP BY 1").fetchall())
        finally:
            con.close()

    before = patients()
    assert before["center_a"] > 20
    r = cli(root, "refresh")
    assert r.returncode == 1
    said = " ".join((r.stdout + r.stderr).split())
    assert "center_a" in said and "--allow-shrink" in said and f"from {before['center_a']} to 0" in said
    assert patients() == before
    r = cli(root, "refresh", "--allow-shrink")
    assert r.returncode == 0, r.stderr
    assert "center_a" not in patients()
