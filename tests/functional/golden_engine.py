"""The engine golden fixture (issue 10 item 6): what a full refresh produces, as sorted CSV.

Two consortia, built from committed inputs only:
- `demo`: the five demo centers (carpool.yml's four plus center_e, the REDCap example);
- `synth`: a 2,000-patient `carpool synth` consortium (5 sites: every demo export format,
  10 lab rows per patient, the fixed seed).

For each, every clinical warehouse table, the quarantine, `etl_file` and the two summary
views are written to tests/golden/engine/<consortium>/<table>.csv(.gz), rows sorted by all
columns, run-dependent columns (run_id) left out. `test_golden_engine.py` rebuilds both and
compares cell by cell.

Regenerate (then review the diff):  .venv/bin/python -m tests.functional.golden_engine --regen
"""
from __future__ import annotations

import argparse
import gzip
import io
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import yaml

from etl.config import load_config
from etl.pipeline import refresh
from etl.scale.synth import synth

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "engine"
RUN_AT = datetime(2026, 1, 1, tzinfo=UTC)
SYNTH = {"patients": 2000, "sites": 5, "labs_per_patient": 10}
TABLES = ["patient", "infusion", "toxicity", "toxicity_treatment", "lab", "response", "outcome",
          "quarantine", "etl_file", "analysis_patient", "site_summary"]
DROP = {"run_id"}
GZIP_ABOVE = 200_000   # bytes of CSV text


def demo_config(tmp: Path) -> Path:
    """carpool.yml plus center_e, absolute mapping paths, output under `tmp`."""
    raw = yaml.safe_load((ROOT / "carpool.yml").read_text(encoding="utf-8"))
    tmp.mkdir(parents=True, exist_ok=True)
    raw["output_dir"] = str(tmp / "out")
    if not any(s["id"] == "center_e" for s in raw["sites"]):
        raw["sites"].append({"id": "center_e", "mapping": "sites/center_e/mapping.yml"})
    for s in raw["sites"]:
        s["mapping"] = str(ROOT / s["mapping"])
    path = tmp / "carpool.yml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def synth_config(tmp: Path) -> Path:
    return synth(tmp / "synth", **SYNTH)


def build(config: Path) -> Path:
    cfg = load_config(config)
    outcome = refresh(cfg, RUN_AT, full=True)
    if outcome.status not in ("ok", "data_errors"):
        raise RuntimeError(f"{config}: refresh {outcome.status}: {outcome.message}")
    return cfg.out / "warehouse.duckdb"


def snapshot(db: Path) -> dict[str, str]:
    """table -> CSV text: rows sorted by all columns, floats as Python's repr."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {}
        for name in TABLES:
            cols = [r[0] for r in con.execute(f"DESCRIBE {name}").fetchall() if r[0] not in DROP]
            frame = con.execute(f"SELECT {', '.join(cols)} FROM {name} ORDER BY ALL").df()
            out[name] = frame.to_csv(index=False, lineterminator="\n")
        return out
    finally:
        con.close()


def path_of(consortium: str, table: str) -> Path:
    plain = GOLDEN / consortium / f"{table}.csv"
    return plain if plain.exists() or not plain.with_suffix(".csv.gz").exists() else plain.with_suffix(".csv.gz")


def read_golden(consortium: str, table: str) -> str:
    path = path_of(consortium, table)
    data = path.read_bytes()
    return (gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8")


def write(consortium: str, tables: dict[str, str]) -> None:
    folder = GOLDEN / consortium
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.csv*"):
        old.unlink()
    for name, text in tables.items():
        if len(text) > GZIP_ABOVE:
            # mtime=0: the same text gives the same bytes
            (folder / f"{name}.csv.gz").write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))
        else:
            (folder / f"{name}.csv").write_text(text, encoding="utf-8")


def frame(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def differences(expected: str, actual: str, limit: int = 20) -> list[str]:
    """Cell-by-cell differences; numbers equal within 1e-9 relative count as equal."""
    e, a = frame(expected), frame(actual)
    if list(e.columns) != list(a.columns):
        return [f"columns differ: {list(e.columns)} vs {list(a.columns)}"]
    if len(e) != len(a):
        return [f"{len(e)} rows expected, {len(a)} found"]
    out = []
    for col in e.columns:
        for i in (e[col] != a[col]).to_numpy().nonzero()[0]:
            x, y = e[col].iat[i], a[col].iat[i]
            try:
                if abs(float(x) - float(y)) <= 1e-9 * max(abs(float(x)), abs(float(y)), 1e-300):
                    continue
            except ValueError:
                pass
            out.append(f"row {i + 2} column {col}: expected {x!r}, found {y!r}")
            if len(out) >= limit:
                return out
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regen", action="store_true", help="rewrite tests/golden/engine from this engine")
    parser.add_argument("--only", choices=["demo", "synth"], help="one consortium")
    args = parser.parse_args(argv)
    if not args.regen:
        parser.error("pass --regen to rewrite the golden files (the comparison is the test)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, make in (("demo", demo_config), ("synth", synth_config)):
            if args.only and args.only != name:
                continue
            write(name, snapshot(build(make(tmp / name))))
            print(f"wrote {GOLDEN / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
