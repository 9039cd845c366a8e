"""Each site's last good validated output, kept for incremental and single-site refreshes.

`out/sites/<site_id>/` holds the site's pseudonymized tables as Parquet, already in the
warehouse's layout and types (`warehouse.layout`: the published run hard-links these very
files, rows are written once), its quarantine and file counts, and `manifest.json` with
the *input hash*: the export files, the mapping folder (mapping.yml, code lists,
adapter), the common schema and catalog, and the code version. A site whose input hash
is unchanged is not re-read. Writes go to a temporary folder that is renamed into place,
so a killed refresh never leaves a half-written cache.
A cache that is damaged anyway (a manifest that is not JSON or lacks a key, a Parquet file
missing or unreadable) is never fatal: `check` says what is wrong and the refresh rebuilds
that site from its export.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from etl.outdir import remove
from warehouse import layout
from warehouse.durable import sha256_file, sql_path

# pandas and pyarrow are imported where rows are read or written: deciding that nothing
# changed (`input_hash`, `check`, `summary`) needs neither
if TYPE_CHECKING:
    import pandas as pd

SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "schemas"
USED = "__used__"
PRE_DIR = "pre_quarantine"   # masked pre-quarantine samples (etl.validate.prequarantine), one file per table
MANIFEST_KEYS = {"site_id": str, "input_hash": str, "tables": list, "patients_read": int,
                 "patients_quarantined": int, "warnings": int}


def corrupt_errors() -> tuple[type[BaseException], ...]:
    """What reading a damaged cache raises (`except sitecache.corrupt_errors():`, evaluated
    only when something was raised, so pyarrow is imported only then)."""
    import pyarrow as pa

    return OSError, ValueError, KeyError, TypeError, pa.ArrowException


@dataclass(frozen=True)
class SiteOutput:
    site_id: str
    input_hash: str
    tables: dict[str, pd.DataFrame | Path]   # a Path: a Parquet file (DuckDB path; every table once saved)
    quarantine: pd.DataFrame | None   # None in a `summary` (counts only)
    files: pd.DataFrame | None
    patients_read: int
    patients_quarantined: int
    warnings: int
    reused: bool = False
    # table -> etl.validate.prequarantine.TableProfile: the mapped rows before quarantine (counts, masked sample)
    pre_quarantine: dict = field(default_factory=dict)
    previous_rows: dict = field(default_factory=dict)   # table -> mapped rows of the output this one replaced

    def table_rows(self) -> dict[str, int]:
        """Mapped rows per table, before quarantine (the export's size, table by table)."""
        return {t: p.rows for t, p in sorted(self.pre_quarantine.items())}
    unmapped: dict[str, list[str]] = field(default_factory=dict)   # source file -> columns no mapping reads

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


def input_hash(export_files: list[Path], site_dir: Path, code_version: str,
               digests: dict[str, str] | None = None) -> str:
    """Hash of everything a site's output depends on. `digests` caches file hashes by
    (path, size, mtime), as make and rsync do, so an unchanged night does not re-read
    gigabytes of exports; a file rewritten with the same size and mtime would be missed."""
    h = hashlib.sha256(code_version.encode())
    paths = sorted(set(export_files)) + sorted(p for p in site_dir.rglob("*") if p.is_file()
                                              and "export" not in p.relative_to(site_dir).parts)
    paths += sorted(p for p in SCHEMAS_DIR.rglob("*") if p.is_file() and p.suffix in {".yml", ".csv"})
    for p in paths:
        h.update(str(p.name).encode())
        h.update(bytes.fromhex(_digest(p, digests)))
    return h.hexdigest()[:20]


def _digest(path: Path, digests: dict[str, str] | None) -> str:
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    if digests is not None and key in digests:
        digests[USED].append(key)
        return digests[key]
    value = sha256_file(path)
    if digests is not None:
        digests[key] = value
        digests[USED].append(key)
    return value


def load_digests(out: Path) -> dict:
    try:
        digests = json.loads((out / "sites" / ".digests.json").read_text())
    except (OSError, ValueError):
        digests = {}
    if not isinstance(digests, dict) or not all(isinstance(v, str) for v in digests.values()):
        digests = {}   # damaged: every file is simply hashed again
    digests[USED] = []
    return digests


def save_digests(out: Path, digests: dict[str, str]) -> None:
    path = out / "sites" / ".digests.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".digests.json.tmp{os.getpid()}")
    used = set(digests.get(USED, []))   # forget files that were not looked at this run
    tmp.write_text(json.dumps({k: v for k, v in digests.items() if k in used}, sort_keys=True))
    os.replace(tmp, path)


def cached(out: Path, site_id: str) -> dict | None:
    return check(out, site_id)[0]


def check(out: Path, site_id: str) -> tuple[dict | None, str | None]:
    """(manifest, None) for a usable cache; (None, None) when there is none; (None, what is wrong)
    for a damaged one. Parquet files are checked by their footer, which a cut or overwritten
    file loses (`parquet_frame_problem`); damage inside a file is caught when it is loaded
    (`load` raises one of `corrupt_errors()`)."""
    d = out / "sites" / site_id
    manifest = d / "manifest.json"
    if not d.exists():
        return None, None
    try:
        m = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, f"{manifest} is missing"
    except (OSError, ValueError) as exc:
        return None, f"{manifest} is not valid JSON ({type(exc).__name__})"
    if not isinstance(m, dict):
        return None, f"{manifest} is not a JSON object"
    bad = [k for k, t in MANIFEST_KEYS.items() if not isinstance(m.get(k), t)]
    if bad:
        return None, f"{manifest} lacks or has a wrong {', '.join(bad)}"
    for name in [*m["tables"], "quarantine", "files"]:
        why = parquet_frame_problem(d / f"{name}.parquet")
        if why:
            return None, f"{d / (name + '.parquet')} is missing or unreadable ({why})"
    return m, None


def parquet_frame_problem(path: Path) -> str | None:
    """What is wrong with a Parquet file's frame, or None: the magic `PAR1` at both ends and
    a footer length that fits between them (the last 8 bytes). A file cut short, or
    overwritten, loses them. Read without pyarrow: a no-change refresh checks every cached
    file and imports nothing to do it."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            size = f.seek(0, os.SEEK_END)
            if size < 12:
                return f"{size} bytes, shorter than any Parquet file"
            f.seek(size - 8)
            tail = f.read(8)
    except OSError as exc:
        return type(exc).__name__
    if head != b"PAR1" or tail[4:] != b"PAR1":
        return "no Parquet magic at its start and end: cut short or overwritten"
    if int.from_bytes(tail[:4], "little") > size - 12:
        return "its footer length runs past the file's start: cut short"
    return None


def summary(out: Path, site_id: str) -> SiteOutput:
    """A reused site's counts from its manifest, and nothing else: no tables, quarantine or
    pre-quarantine profiles (`load` gives them). What a no-change refresh needs, read
    without pandas or pyarrow."""
    return _counts(site_id, _manifest(out, site_id))


def load(out: Path, site_id: str) -> SiteOutput:
    """A reused site: its tables as the paths of their Parquet files (no rows read)."""
    import pandas as pd

    d, m = out / "sites" / site_id, _manifest(out, site_id)
    return replace(_counts(site_id, m), tables={name: d / f"{name}.parquet" for name in m["tables"]},
                   quarantine=pd.read_parquet(d / "quarantine.parquet"), files=pd.read_parquet(d / "files.parquet"),
                   pre_quarantine=_pre(d, m))


def _manifest(out: Path, site_id: str) -> dict:
    return json.loads((out / "sites" / site_id / "manifest.json").read_text())


def _counts(site_id: str, m: dict) -> SiteOutput:
    """A reused site as its manifest states it: counts, previous rows, unmapped columns."""
    return SiteOutput(site_id, m["input_hash"], {}, None, None, m["patients_read"], m["patients_quarantined"],
                      m["warnings"], reused=True, previous_rows=m.get("previous_rows", {}),
                      unmapped=m.get("unmapped") or {})


def _pre(d: Path, manifest: dict) -> dict:
    """The pre-quarantine profiles kept in the cache (none in a cache written before they were)."""
    from etl.validate.prequarantine import TableProfile

    out = {}
    for table, c in (manifest.get("pre_quarantine") or {}).items():
        path = d / PRE_DIR / f"{table}.parquet"
        if path.is_file():
            out[table] = TableProfile(table, int(c["rows"]), dict(c["non_null"]), int(c["failing_rows"]), path)
    return out


def previous_table_rows(out: Path, site_id: str) -> dict[str, int]:
    """Mapped rows per table of the site's cached output (what the next output is compared with)."""
    m = cached(out, site_id)
    return {t: int(c["rows"]) for t, c in ((m or {}).get("pre_quarantine") or {}).items()}


def save(out: Path, result: SiteOutput) -> SiteOutput:
    """Write the site's output; returns it with DuckDB-path tables pointing at the cache."""
    final = out / "sites" / result.site_id
    tmp = out / "sites" / f".{result.site_id}.tmp{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for name, frame in result.tables.items():
        _write_table(name, frame, tmp / f"{name}.parquet")
    result.quarantine.to_parquet(tmp / "quarantine.parquet", index=False)
    result.files.to_parquet(tmp / "files.parquet", index=False)
    (tmp / PRE_DIR).mkdir()
    for name, profile in result.pre_quarantine.items():
        _write_sample(profile.frame(), tmp / PRE_DIR / f"{name}.parquet")
    previous = result.previous_rows if result.reused else previous_table_rows(out, result.site_id)
    manifest = {"site_id": result.site_id, "input_hash": result.input_hash, "tables": sorted(result.tables),
                "patients_read": result.patients_read, "patients_quarantined": result.patients_quarantined,
                "warnings": result.warnings,
                "pre_quarantine": {n: p.counts() for n, p in sorted(result.pre_quarantine.items())},
                "previous_rows": previous, "unmapped": result.unmapped}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    old = out / "sites" / f".{result.site_id}.old{os.getpid()}"
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    remove(out, old)  # only inside carpool's own output folder (etl.outdir)
    return replace(result, tables={n: final / f"{n}.parquet" for n in result.tables},
                   pre_quarantine=_pre(final, manifest), previous_rows=previous)


def _write_sample(frame: pd.DataFrame, dest: Path) -> None:
    """A masked pre-quarantine sample; a column of mixed Python types is kept as text."""
    import pyarrow as pa

    try:
        frame.to_parquet(dest, index=False)
    except (pa.ArrowException, TypeError, ValueError):
        frame = frame.copy()
        for col in frame.select_dtypes(include="object").columns:
            frame[col] = frame[col].map(lambda v: v if v is None or isinstance(v, str) else str(v))
        frame.to_parquet(dest, index=False)


def _write_table(name: str, table: pd.DataFrame | Path, dest: Path) -> None:
    """The table in the warehouse layout: a conforming Parquet file is moved, anything else
    (a DataFrame, or a file with other column order or types) is written once, typed."""
    cols = layout.file_columns(layout.clinical_columns(name))
    if isinstance(table, Path):
        if layout.conforms(table, cols):
            shutil.move(table, dest)
            return
        con = layout.scratch()
        rel = f"read_parquet('{sql_path(table)}')"
        have = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()}
        layout.write(con, rel, cols, dest, have)
        table.unlink()
    else:
        layout.write_frame(table, cols, dest)
