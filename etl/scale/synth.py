"""A large synthetic consortium for scale tests: N patients over K sites, M lab rows each.

`carpool synth --out DIR` resamples the synthetic twin's truth rows (sites/twin/truth.csv,
93 made-up patients) to N patients with new ids, spreads them over K sites cycling the
four demo export formats (center_a CSV, center_b Excel, center_c GBK event CSV, center_d
SPSS), and writes each site's export with the twin's own writers. Each synthetic site
reuses its demo center's mapping.yml and code lists, copied into DIR/sites/<site>/, with
one change: its lab table comes from a dedicated long `export/labs.csv` (M rows per
patient: IL-6, ferritin and CAR copies by day), written vectorized through DuckDB. A few
lab rows carry planted defects (negative value, unknown analyte, unparseable date) so the
quarantine has work to do. DIR/carpool.yml is ready for `carpool refresh`.

None of these patients is a real person; every one is a perturbed copy of a twin patient.
"""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import yaml

from sites.twin.cohort import load_truth
from sites.twin.defects import FILES
from sites.twin.exports import SITES as CENTERS
from sites.twin.exports import WRITERS
from sites.twin.tables import SOURCE_UNIT, normalize_truth

ROOT = Path(__file__).resolve().parents[2]
ANALYTES = ("il6", "ferritin", "car_copies")
LAB_CODES = {"il6": "IL6", "ferritin": "FERRITIN", "car_copies": "CAR"}
FACTOR = {"ng/mL": 0.001}           # IL-6 sent in ng/mL (center_d): value / 1000
PEAKS = ("peak_il6_pg_ml", "peak_ferritin_ng_ml", "peak_car_copies")
CHUNK = 2000                         # patients per call of a twin writer (they are row-wise)
DEFECT_EVERY = 50_000                # one planted lab defect per this many lab rows


def synth(out: Path, patients: int = 100_000, sites: int = 8, labs_per_patient: int = 100,
          seed: int = 7) -> Path:
    """Write the consortium under `out`; returns out/carpool.yml."""
    out = Path(out)
    truth = normalize_truth(load_truth())
    rng = np.random.default_rng(seed)
    sizes = [patients // sites + (i < patients % sites) for i in range(sites)]
    entries = []
    for i, n in enumerate(sizes):
        center = CENTERS[i % len(CENTERS)]
        site_id = f"synth_{i + 1:02d}"
        folder = out / "sites" / site_id
        if folder.exists():
            shutil.rmtree(folder)
        rows = _resample(truth[truth.site_id == center], n, site_id, rng)
        _copy_mapping(center, site_id, folder)
        _write_export(center, rows, folder / "export" / FILES[center], rng)
        _write_labs(rows, center, folder / "export" / "labs.csv", labs_per_patient, rng)
        entries.append({"id": site_id, "mapping": f"sites/{site_id}/mapping.yml"})
    demo = yaml.safe_load((ROOT / "carpool.yml").read_text(encoding="utf-8"))
    config = {"study": "carpool-synthetic-scale", "cutoff_date": demo["cutoff_date"], "output_dir": "out",
              # the demo's key settings: its published key is for synthetic data only
              **{k: demo[k] for k in ("demo", "pseudonym_key", "quality") if k in demo}, "sites": entries}
    path = out / "carpool.yml"
    path.write_text("# Synthetic scale consortium written by `carpool synth` (NOT real patients).\n"
                    + yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _resample(valid: pd.DataFrame, n: int, site_id: str, rng: np.random.Generator) -> pd.DataFrame:
    """n twin patients drawn with replacement, new ids, dates shifted back by 0-365 days."""
    rows = valid.iloc[rng.integers(0, len(valid), n)].reset_index(drop=True).copy()
    prefix = site_id.replace("synth_", "S")
    rows["local_id"] = [f"{prefix}-{k:06d}" for k in range(1, n + 1)]
    rows["site_id"] = site_id
    shift = pd.to_timedelta(rng.integers(0, 366, n), unit="D")
    for col in ("infusion_date", "birth_date"):
        rows[col] = (pd.to_datetime(rows[col]) - shift).dt.date
    rows["defect"] = None
    return rows


def _copy_mapping(center: str, site_id: str, folder: Path) -> None:
    src = ROOT / "sites" / center
    shutil.copytree(src / "codes", folder / "codes")
    (folder / "export").mkdir(parents=True)
    m = yaml.safe_load((src / "mapping.yml").read_text(encoding="utf-8"))
    m["site_id"] = site_id
    m["description"] = f"Synthetic scale site in the {center} export format (NOT real patients)"
    old = m["tables"]["lab"]["source"]
    if sum(t["source"] == old for t in m["tables"].values()) == 1 and old != m["identifiers"]["source"]:
        del m["sources"][old]                   # center_b's labs sheet: replaced by labs.csv
    m["sources"]["labs"] = {"path": "export/labs.csv", "format": "csv"}
    m["tables"]["lab"] = {"source": "labs", "columns": {
        "local_id": "patient_id", "analyte": {"from": "analyte", "codes": "codes/lab_analyte.csv"},
        "value": {"from": "result", "unit_from": "unit"}, "sample_date": {"from": "sample_date", "date": "iso"}}}
    pd.DataFrame({"source_value": list(LAB_CODES.values()), "target_value": list(LAB_CODES)}).to_csv(
        folder / "codes" / "lab_analyte.csv", index=False)
    (folder / "mapping.yml").write_text(f"# {site_id}: copy of sites/{center}/mapping.yml for the scale test; "
                                        "lab comes from export/labs.csv.\n"
                                        + yaml.safe_dump(m, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _write_export(center: str, rows: pd.DataFrame, path: Path, rng: np.random.Generator) -> None:
    """The twin's writer, without its lab series (labs.csv carries them). The row-wise CSV
    writer of center_c runs on chunks that are concatenated; center_b keeps one lab row
    (its writer needs a non-empty sheet, which the synthetic mapping does not read)."""
    rows = rows.copy()
    keep = (rows.index == 0) & (center == "center_b")
    for col in PEAKS:
        rows[col] = rows[col].astype(object).where(keep, None)
    if center != "center_c":
        WRITERS[center](rows, path, rng)
        return
    warnings.filterwarnings("ignore", category=FutureWarning, module="sites.twin.export_c")
    with path.open("wb") as dst:
        for k, start in enumerate(range(0, len(rows), CHUNK)):
            part = path.with_suffix(f".part{k}")
            WRITERS[center](rows.iloc[start:start + CHUNK].reset_index(drop=True), part, rng)
            with part.open("rb") as fh:
                if k:
                    fh.readline()               # the header is written once
                shutil.copyfileobj(fh, dst)
            part.unlink()


def _write_labs(rows: pd.DataFrame, center: str, path: Path, per_patient: int, rng: np.random.Generator) -> None:
    """labs.csv: per patient `per_patient` rows cycling the analytes over days 0, 1, 2, ...
    around the patient's twin peaks; units as the demo center sends them."""
    n = len(rows)
    k = np.arange(per_patient)
    analyte = np.tile(np.array(ANALYTES)[k % 3], n)
    day = np.tile(k // 3, n)
    pid = np.repeat(rows["local_id"].to_numpy(), per_patient)
    infusion = np.repeat(pd.to_datetime(rows["infusion_date"]).to_numpy(), per_patient)
    peaks = np.stack([pd.to_numeric(rows[c], errors="coerce").fillna(d).to_numpy()
                      for c, d in zip(PEAKS, (50.0, 500.0, 1000.0), strict=True)], axis=1)
    peak = np.repeat(peaks, per_patient, axis=0)[np.arange(n * per_patient), np.tile(k % 3, n)]
    value = np.round(peak * rng.uniform(0.05, 1.0, n * per_patient), 1)
    units = SOURCE_UNIT[center]
    unit = np.array([units[a] for a in ANALYTES])[np.tile(k % 3, n)]
    value = np.where(unit == "ng/mL", value * np.where(analyte == "il6", FACTOR["ng/mL"], 1.0), value)
    frame = pd.DataFrame({"patient_id": pid, "analyte": pd.Series(analyte).map(LAB_CODES),
                          "result": value, "unit": unit, "sample_date": infusion + day.astype("timedelta64[D]")})
    con = duckdb.connect()
    try:
        con.register("labs", frame)
        # planted defects, rare and deterministic: negative value, unknown analyte, bad date
        con.execute(f"""COPY (SELECT patient_id,
                CASE WHEN i % {DEFECT_EVERY} = 17 THEN 'CRP' ELSE analyte END AS analyte,
                CASE WHEN i % {DEFECT_EVERY} = 5 THEN -result ELSE result END AS result, unit,
                CASE WHEN i % {DEFECT_EVERY} = 29 THEN '31/02/2019'
                     ELSE strftime(sample_date, '%Y-%m-%d') END AS sample_date
            FROM (SELECT *, row_number() OVER () AS i FROM labs))
            TO '{str(path).replace("'", "''")}' (HEADER, DELIMITER ',')""")
    finally:
        con.close()
