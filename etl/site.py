"""Run one site alone: read -> map -> harmonize -> validate -> quarantine -> pseudonymize.

The result is the site's validated, pseudonymized tables plus its quarantine and file
counts. Nothing here touches the pooled warehouse, so a site can run where its data lives
(a future federated mode) and hand over only its `SiteOutput` Parquet.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from etl.compile import convert, duckpath
from etl.compile.compiler import Compiler
from etl.compile.harmonize import birth_dates_needed, harmonize_site
from etl.compile.mapping import SiteMapping, export_dir, site_mapping
from etl.config import Config, SiteConfig
from etl.errors import ConfigError
from etl.outdir import remove
from etl.read.readers import RawTable, read_source
from etl.validate import prequarantine
from etl.validate.cell_findings import cell_findings
from etl.validate.phi import mask_quarantine
from etl.validate.pseudonymize import pseudonymize, study_id
from etl.validate.quarantine import QUARANTINE_COLUMNS, Split, cascade_detail, patient_causes, resolve
from etl.validate.unmapped import unmapped_columns
from etl.validate.where import annotate
from schemas.catalog import Finding
from schemas.cell_limits import oversize_findings
from schemas.pandera_models import validate_table
from schemas.rules import cross_table_findings
from warehouse.durable import sha256_file
from warehouse.sitecache import SiteOutput


def read_site(cfg: Config, site: SiteConfig, skip: set[str] = frozenset(),
              mapping: SiteMapping | None = None) -> tuple[SiteMapping, dict[str, RawTable]]:
    """Read every source some pandas-path table (or the identifiers) needs; `skip`: SQL-path tables.
    `mapping`: the site's mapping when the caller has loaded it already."""
    mapping = mapping or site_mapping(cfg, site)
    folder = export_dir(cfg, site, mapping)
    wanted = {t.source for n, t in mapping.tables.items() if n not in skip} | {mapping.identifiers.source}
    wanted |= {n for n in mapping.sources if not any(t.source == n for t in mapping.tables.values())}
    return mapping, {n: read_source(n, s, folder) for n, s in mapping.sources.items() if n in wanted}


def sql_tables(cfg: Config, site: SiteConfig, mapping: SiteMapping) -> set[str]:
    """Tables validated end to end in DuckDB (`etl.compile.duckpath`): chosen by shape, never
    by size; the others are compiled to SQL too and validated over the mapped frames."""
    folder = export_dir(cfg, site, mapping)
    return {name for name, tmap in mapping.tables.items()
            if duckpath.eligible(mapping, name) is None and (folder / mapping.sources[tmap.source].path).is_file()}


def map_site(mapping: SiteMapping, raw: dict[str, RawTable], skip: set[str] = frozenset(),
             cutoff: date | None = None) -> tuple[dict[str, pd.DataFrame], list[Finding], set[str]]:
    """Mapped (not yet pseudonymized) tables, every finding, and the identifier values.
    `cutoff`: the study cut-off date (rule DATE_AFTER_CUTOFF)."""
    mapper = Compiler(mapping, raw)
    mapped = {t: mapper.map_table(t, tm) for t, tm in mapping.tables.items() if t not in skip}
    tables = {name: mt.frame for name, mt in mapped.items()}
    for frame in tables.values():
        frame["site_id"] = mapping.site_id
    names, births, ident_values = _identifiers(mapping, raw, birth_dates_needed(tables))
    findings = list(mapper.findings) + cell_findings(mapping, raw, tables)
    findings += harmonize_site(tables, births, {n: mt.reported for n, mt in mapped.items()})
    for name, mt in mapped.items():
        findings += validate_table(name, tables[name], mt.reported, con=mapper.con)   # the site's connection
        findings += oversize_findings(name, tables[name])
    findings += cross_table_findings(tables, names, cutoff, site_rules=mapping.rules)
    findings = annotate(findings, mapping, {n: mt.groups for n, mt in mapped.items()})
    return tables, findings, ident_values


def run_site(cfg: Config, site: SiteConfig, key: bytes, work_dir: Path | None = None,
             sql: set[str] | None = None) -> SiteOutput:
    """The site's validated, pseudonymized output (its `input_hash` is the caller's to set).
    `sql`: tables to run on the DuckDB path (default: every table whose shape it handles);
    their Parquet files are written under `work_dir` (default: <output_dir>/work/<site>)."""
    mapping = site_mapping(cfg, site)
    sql = sql_tables(cfg, site, mapping) if sql is None else {t for t in sql if t in mapping.tables}
    mapping, raw = read_site(cfg, site, skip=sql, mapping=mapping)
    tables, findings, ident_values = map_site(mapping, raw, skip=sql, cutoff=cfg.cutoff_date)
    masker = prequarantine.Masker(ident_values, lambda lid: study_id(key, site.id, lid))
    pre = before_quarantine(tables, findings, masker)
    done: dict[str, duckpath.SqlTable] = {}
    if sql:
        work = work_dir or cfg.out / "work" / site.id
        causes = patient_causes(findings)
        details = {lid: cascade_detail(tables, f) for lid, f in causes.items()}
        patients = set(tables["patient"]["local_id"].dropna()) if "patient" in tables else None
        folder = export_dir(cfg, site, mapping)
        for name in sorted(sql):
            src = mapping.tables[name].source
            try:
                done[name] = duckpath.run_table(mapping, name, folder, work, key=key, patients=patients,
                                                causes=details, identifiers=ident_values, shared=src in raw,
                                                cutoff=cfg.cutoff_date)
            except duckpath.NotSqlable:  # e.g. blank lines shift row numbers: the pandas path keeps them
                return run_site(cfg, site, key, work_dir, sql - {name})
    elsewhere = {d.label: (d.used, d.bad) for d in done.values() if d.file_counts is None}
    split: Split = resolve(site.id, tables, findings, raw, ident_values, elsewhere)
    out: dict[str, pd.DataFrame | Path] = {}
    for name, frame in split.loaded.items():
        frame = frame.drop(columns=["_row_id", "_source_rows"]).rename(
            columns={"_source_file": "source_file", "_source_row": "source_row"})
        out[name] = pseudonymize(frame, key, site.id)
    files = split.files.copy()
    files["sha256"] = [sha256_file(raw[s].path) for s in files["source"]]
    quarantine = split.quarantine
    for name, d in sorted(done.items()):
        out[name] = d.parquet
        if d.file_counts is not None:
            src = mapping.tables[name].source
            path = export_dir(cfg, site, mapping) / mapping.sources[src].path
            files = pd.concat([files, pd.DataFrame([{"source": src, "path": d.label, **d.file_counts,
                                                     "sha256": sha256_file(path)}])], ignore_index=True)
        quarantine = pd.concat([quarantine, d.quarantine], ignore_index=True)
        pre[name] = d.pre_quarantine
    if done:
        quarantine = quarantine[QUARANTINE_COLUMNS].sort_values(
            ["source_file", "source_row", "rule_id"], kind="stable").reset_index(drop=True)
    quarantine = mask_quarantine(quarantine, ident_values, lambda lid: study_id(key, site.id, lid))
    warnings = int((quarantine["severity"] == "warning").sum())
    return SiteOutput(site.id, "", out, quarantine, files, split.patients_read,
                      split.patients_quarantined, warnings, pre_quarantine=pre,
                      unmapped=unmapped_columns(mapping, raw, export_dir(cfg, site, mapping)))


def before_quarantine(tables: dict[str, pd.DataFrame], findings: list[Finding],
                      masker: prequarantine.Masker) -> dict[str, prequarantine.TableProfile]:
    """HOOK for the GX Data Docs and dataset checks: each mapped table just before the
    load/quarantine split (row and non-null counts, a masked sample keeping the failing rows).
    Whatever path maps a table must hand it here (the DuckDB path: `SqlTable.pre_quarantine`)."""
    failing: dict[str, set[int]] = {}
    for f in findings:
        if f.row_id is not None:
            failing.setdefault(f.table, set()).add(int(f.row_id))
    return {name: prequarantine.from_frame(name, frame, failing.get(name, set()), masker)
            for name, frame in tables.items()}


def discard_work(cfg: Config, site_id: str) -> None:
    """Remove what the DuckDB path wrote for a dry run (`carpool validate`)."""
    if (cfg.out / "work" / site_id).exists():
        remove(cfg.out, cfg.out / "work" / site_id)
    try:
        (cfg.out / "work").rmdir()
    except OSError:
        pass  # other sites' work, or none


def _identifiers(mapping: SiteMapping, raw: dict[str, RawTable], births_of: set[str]
                 ) -> tuple[pd.Series, pd.Series, set[str]]:
    """Names and birth dates by local id, and every identifier value (for masking). Birth
    dates are parsed only for the local ids in `births_of` (the ones harmonization reads)."""
    ids = mapping.identifiers
    frame = raw[ids.source].frame
    missing = [c for c in [ids.local_id, *ids.columns] if c not in frame.columns]
    if missing:
        raise ConfigError(f"{mapping.path}: identifiers: source {ids.source!r} has no column(s) {missing}")
    # each distinct value looked at once: a long-format source repeats a patient's cells per row
    local = _per_value(frame[ids.local_id], lambda v: None if convert.is_missing(v) else convert.norm_text(v))
    names = pd.Series(frame[ids.name].values, index=local) if ids.name else pd.Series(dtype=object)
    births = pd.Series(dtype=object)
    if ids.birth_date is not None:
        fmts = mapping.formats_for(ids.birth_date)
        wanted = local.isin(births_of).to_numpy()
        births = pd.Series([_try_date(v, fmts) for v in frame.loc[wanted, ids.birth_date.from_]],
                           index=local[wanted], dtype=object)
    names = names[~_per_value(names, convert.is_missing).astype(bool)]
    births = births[births.notna()]
    names = names[~names.index.duplicated()]
    births = births[~births.index.duplicated()]
    values = set()
    for col in ids.columns:   # each distinct value once (by type too: 1 and 1.0 are two texts)
        for v in _distinct(frame[col]):
            if not convert.is_missing(v):
                values.add(str(v).strip())
                if hasattr(v, "isoformat"):
                    values.add(v.isoformat()[:10])
    return names, births, values


def _per_value(values: pd.Series, fn) -> pd.Series:
    """`values.map(fn)`, calling `fn` once per distinct value (`_distinct`)."""
    done = {k: fn(k[1]) for k in dict.fromkeys(_keys(values))}
    return pd.Series([done[k] for k in _keys(values)], index=values.index, dtype=object)


def _distinct(values: pd.Series) -> list:
    """The distinct cells of `values`, in order, told apart by type too: 1, 1.0 and True are
    one dict key but three texts (missing cells: once per kind)."""
    return [v for _, v in dict.fromkeys(_keys(values))]


def _keys(values: pd.Series):
    return ((type(v), v) for v in values.to_numpy(dtype=object))


def _try_date(v: object, formats: list[str]):
    try:
        return None if convert.is_missing(v) else convert.parse_date(v, formats)
    except ValueError:
        return None
