"""Run one site alone: read -> map -> harmonize -> validate -> quarantine -> pseudonymize.

The result is the site's validated, pseudonymized tables plus its quarantine and file
counts. Nothing here touches the pooled warehouse, so a site can run where its data lives
(a future federated mode) and hand over only `SiteResult` Parquet.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from etl import convert
from etl.config import Config, SiteConfig
from etl.errors import ConfigError
from etl.harmonize import harmonize_site
from etl.mapper import Mapper
from etl.mapping import SiteMapping, load_mapping
from etl.pseudonymize import pseudonymize
from etl.quarantine import Split, resolve
from etl.readers import RawTable, read_source
from schemas.catalog import Finding
from schemas.pandera_models import validate_table
from schemas.rules import cross_table_findings


@dataclass(frozen=True)
class SiteResult:
    site_id: str
    mapping: SiteMapping
    tables: dict[str, pd.DataFrame]     # loaded rows, pseudonymized, with source_file/source_row
    quarantine: pd.DataFrame
    files: pd.DataFrame                 # source, path, sha256, rows_read, rows_loaded, rows_quarantined
    patients_read: int
    patients_quarantined: int
    warnings: int

    @property
    def quarantined_pct(self) -> float:
        return 100.0 * self.patients_quarantined / self.patients_read if self.patients_read else 0.0


def site_mapping(cfg: Config, site: SiteConfig) -> SiteMapping:
    mapping = load_mapping(cfg.resolve(site.mapping))
    if mapping.site_id != site.id:
        raise ConfigError(f"{mapping.path}: site_id {mapping.site_id!r} does not match {cfg.path} site {site.id!r}")
    return mapping


def export_dir(cfg: Config, site: SiteConfig, mapping: SiteMapping) -> Path:
    return cfg.resolve(site.export_dir) if site.export_dir else mapping.site_dir


def read_site(cfg: Config, site: SiteConfig) -> tuple[SiteMapping, dict[str, RawTable]]:
    mapping = site_mapping(cfg, site)
    folder = export_dir(cfg, site, mapping)
    return mapping, {n: read_source(n, s, folder) for n, s in mapping.sources.items()}


def map_site(mapping: SiteMapping, raw: dict[str, RawTable]) -> tuple[dict[str, pd.DataFrame], list[Finding], set[str]]:
    """Mapped (not yet pseudonymized) tables, every finding, and the identifier values."""
    mapper = Mapper(mapping, raw)
    mapped = mapper.map_all()
    tables = {name: mt.frame for name, mt in mapped.items()}
    for frame in tables.values():
        frame["site_id"] = mapping.site_id
    names, births, ident_values = _identifiers(mapping, raw)
    findings = list(mapper.findings)
    findings += harmonize_site(tables, births)
    for name, mt in mapped.items():
        findings += validate_table(name, tables[name], mt.reported)
    findings += cross_table_findings(tables, names)
    return tables, findings, ident_values


def run_site(cfg: Config, site: SiteConfig, key: bytes) -> SiteResult:
    mapping, raw = read_site(cfg, site)
    tables, findings, ident_values = map_site(mapping, raw)
    split: Split = resolve(site.id, tables, findings, raw, ident_values)
    out = {}
    for name, frame in split.loaded.items():
        frame = frame.drop(columns=["_row_id", "_source_rows"]).rename(
            columns={"_source_file": "source_file", "_source_row": "source_row"})
        out[name] = pseudonymize(frame, key, site.id)
    files = split.files.copy()
    files["sha256"] = [_sha256(raw[s].path) for s in files["source"]]
    warnings = int((split.quarantine["severity"] == "warning").sum())
    return SiteResult(site.id, mapping, out, split.quarantine, files, split.patients_read,
                      split.patients_quarantined, warnings)


def _identifiers(mapping: SiteMapping, raw: dict[str, RawTable]) -> tuple[pd.Series, pd.Series, set[str]]:
    ids = mapping.identifiers
    frame = raw[ids.source].frame
    missing = [c for c in [ids.local_id, *ids.columns] if c not in frame.columns]
    if missing:
        raise ConfigError(f"{mapping.path}: identifiers: source {ids.source!r} has no column(s) {missing}")
    local = frame[ids.local_id].map(lambda v: None if convert.is_missing(v) else str(v).strip())
    names = pd.Series(frame[ids.name].values, index=local) if ids.name else pd.Series(dtype=object)
    births = pd.Series(dtype=object)
    if ids.birth_date is not None:
        fmts = ids.birth_date.date or mapping.date_formats
        fmts = [fmts] if isinstance(fmts, str) else list(fmts)
        births = pd.Series([_try_date(v, fmts) for v in frame[ids.birth_date.from_]], index=local)
    names = names[names.map(lambda v: not convert.is_missing(v))]
    births = births[births.notna()]
    names = names[~names.index.duplicated()]
    births = births[~births.index.duplicated()]
    values = set()
    for col in ids.columns:
        for v in frame[col]:
            if not convert.is_missing(v):
                values.add(str(v).strip())
                if hasattr(v, "isoformat"):
                    values.add(v.isoformat()[:10])
    return names, births, values


def _try_date(v: object, formats: list[str]):
    try:
        return None if convert.is_missing(v) else convert.parse_date(v, formats)
    except ValueError:
        return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
