"""Each site's last good validated output, kept for incremental and single-site refreshes.

`out/sites/<site_id>/` holds the site's pseudonymized tables as Parquet, its quarantine
and file counts, and `manifest.json` with the *input hash*: the export files, the mapping
folder (mapping.yml, code lists, adapter), the common schema and catalog, and the code
version. A site whose input hash is unchanged is not re-read. Writes go to a temporary
folder that is renamed into place, so a killed refresh never leaves a half-written cache.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "schemas"


@dataclass(frozen=True)
class SiteOutput:
    site_id: str
    input_hash: str
    tables: dict[str, pd.DataFrame | Path]   # a Path: Parquet written by the DuckDB path
    quarantine: pd.DataFrame
    files: pd.DataFrame
    patients_read: int
    patients_quarantined: int
    warnings: int
    reused: bool = False

    @property
    def patients_loaded(self) -> int:
        return self.patients_read - self.patients_quarantined

    @property
    def quarantined_pct(self) -> float:
        return 100.0 * self.patients_quarantined / self.patients_read if self.patients_read else 0.0

    def counts(self) -> dict:
        return {"patients_read": self.patients_read, "patients_loaded": self.patients_loaded,
                "patients_quarantined": self.patients_quarantined, "warnings": self.warnings,
                "reused": self.reused}


def input_hash(export_files: list[Path], site_dir: Path, code_version: str) -> str:
    h = hashlib.sha256(code_version.encode())
    paths = sorted(set(export_files)) + sorted(p for p in site_dir.rglob("*") if p.is_file()
                                              and "export" not in p.relative_to(site_dir).parts)
    paths += sorted(p for p in SCHEMAS_DIR.rglob("*") if p.is_file() and p.suffix in {".yml", ".csv"})
    for p in paths:
        h.update(str(p.name).encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()[:20]


def cached(out: Path, site_id: str) -> dict | None:
    manifest = out / "sites" / site_id / "manifest.json"
    try:
        return json.loads(manifest.read_text())
    except (OSError, ValueError):
        return None


def load(out: Path, site_id: str) -> SiteOutput:
    d = out / "sites" / site_id
    m = json.loads((d / "manifest.json").read_text())
    on_disk = set(m.get("parquet_tables", []))   # DuckDB-path tables stay Parquet files
    tables = {name: d / f"{name}.parquet" if name in on_disk else pd.read_parquet(d / f"{name}.parquet")
              for name in m["tables"]}
    return SiteOutput(site_id, m["input_hash"], tables, pd.read_parquet(d / "quarantine.parquet"),
                      pd.read_parquet(d / "files.parquet"), m["patients_read"], m["patients_quarantined"],
                      m["warnings"], reused=True)


def save(out: Path, result: SiteOutput) -> SiteOutput:
    """Write the site's output; returns it with DuckDB-path tables pointing at the cache."""
    final = out / "sites" / result.site_id
    tmp = out / "sites" / f".{result.site_id}.tmp{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for name, frame in result.tables.items():
        if isinstance(frame, Path):
            shutil.move(frame, tmp / f"{name}.parquet")
        else:
            frame.to_parquet(tmp / f"{name}.parquet", index=False)
    result.quarantine.to_parquet(tmp / "quarantine.parquet", index=False)
    result.files.to_parquet(tmp / "files.parquet", index=False)
    manifest = {"site_id": result.site_id, "input_hash": result.input_hash, "tables": sorted(result.tables),
                "patients_read": result.patients_read, "patients_quarantined": result.patients_quarantined,
                "warnings": result.warnings,
                "parquet_tables": sorted(n for n, f in result.tables.items() if isinstance(f, Path))}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    old = out / "sites" / f".{result.site_id}.old{os.getpid()}"
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    tables = {n: final / f"{n}.parquet" if isinstance(f, Path) else f for n, f in result.tables.items()}
    return replace(result, tables=tables)
