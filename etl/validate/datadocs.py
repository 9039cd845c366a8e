"""Great Expectations Data Docs per site, off the refresh's hot path.

`carpool docs` (or `carpool refresh --docs`) builds them with `build`; a plain refresh only
runs `check`, which imports no GX: it compares each site's stamps and says, in one line per
site and on the site's validation report, that its docs are missing or stale and which
command rebuilds them. `carpool validate --site` still builds one site's docs inline
(`site_docs`): a dry run is where a data manager looks at them.

A site's docs (out/validation/<site>/gx/) carry two stamps: `.input_hash`, the site's cached
output they were built from, and `.quality_digest`, a digest of its published
`quality_check` rows (the pooled rates change them). Docs are built aside and renamed in, so
a killed build leaves the old docs (stale, and said so) and the next `carpool docs` rebuilds.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from warehouse.durable import fault_point

if TYPE_CHECKING:   # imported where the rows are read: `check` with the build's digests needs neither
    import pandas as pd

DOCS_STAMP = ".input_hash"
CHECKS_STAMP = ".quality_digest"   # the site's quality_check rows the docs show (pooled rates change them)
REPORT_LINE = re.compile(r'<p id="gx-docs">.*?</p>|<p>Dataset expectations \(Great Expectations Data Docs\):.*?</p>',
                         re.S)


def docs_dir(out: Path, site_id: str) -> Path:
    return out / "validation" / site_id / "gx"


def command(cfg) -> str:
    """The command that rebuilds the docs, with `--config` unless it is ./carpool.yml."""
    path = getattr(cfg, "path", None)
    if path is None or Path(path).resolve() == Path("carpool.yml").resolve():
        return "carpool docs"
    try:
        shown = Path(path).resolve().relative_to(Path.cwd())
    except ValueError:
        shown = Path(path)
    return f"carpool docs --config {shown}"


def staleness(out: Path, site, digests: dict[str, str]) -> str | None:
    """Why a site's docs do not show its current data (None: they do). `site` is a SiteOutput
    (its input_hash), `digests` the digest of each site's published quality_check rows
    (`site_digests`; a site without one: no warehouse)."""
    docs = docs_dir(out, site.site_id)
    built, checked = (_read_stamp(docs / name) for name in (DOCS_STAMP, CHECKS_STAMP))
    if built is None:
        return ("Data Docs missing" if not (docs / "index.html").exists()
                else "Data Docs not built from the published data (a dry run or an interrupted build wrote them)")
    if built != site.input_hash:
        return "Data Docs older than the site's data (built from an earlier export or mapping)"
    if checked != digests.get(site.site_id, digest(None)):
        return "Data Docs show older dataset checks (the pooled rates changed)"
    return None


def check(cfg, sites, warn: Callable[[str], None], digests: dict[str, str] | None = None) -> dict[str, str]:
    """No GX: for each site whose docs are missing or stale, one warning line naming the
    command that rebuilds them, and the same line on its validation report; returns them.
    `digests`: the published warehouse's `site_digests`, as its build recorded them (read
    from the warehouse when not given, or when a site lacks one)."""
    if digests is None or any(s.site_id not in digests for s in sites):
        digests = site_digests(published_quality(cfg.out), [s.site_id for s in sites])
    stale = {}
    for s in sites:
        why = staleness(cfg.out, s, digests)
        mark_report(cfg.out, s.site_id, f"{why}: run `{command(cfg)}`" if why else "")
        if why:
            stale[s.site_id] = why
            warn(stale_line(cfg, s.site_id, why))
    return stale


def stale_line(cfg, site_id: str, why: str) -> str:
    """The one line a stale site's docs get on the terminal (refresh, quality)."""
    return f"{site_id}: {why}; rebuild them with `{command(cfg)}`"


def build(cfg, sites, warn: Callable[[str], None], say: Callable[[str], None] | None = None) -> list[str]:
    """Data Docs for every site whose docs are missing or stale (`staleness`); the others are
    left as they are. Returns the ids of the sites built."""
    from warehouse import sitecache

    say = say or (lambda _m: None)
    checks = published_quality(cfg.out)
    digests = site_digests(checks, [s.site_id for s in sites])
    built = []
    for s in sites:
        why = staleness(cfg.out, s, digests)
        if why is None:
            mark_report(cfg.out, s.site_id, "")
            continue
        say(f"{s.site_id}: {why}; building them")
        docs = docs_dir(cfg.out, s.site_id)
        quality = _site_rows(checks, s.site_id)
        if not s.pre_quarantine:
            s = sitecache.load(cfg.out, s.site_id)
        tmp = docs.with_name(f".gx.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        site_docs(cfg, s, tmp, quality)
        fault_point(f"docs: {s.site_id}")
        (tmp / CHECKS_STAMP).write_text(digest(quality) + "\n")
        (tmp / DOCS_STAMP).write_text(s.input_hash + "\n")
        old = docs.with_name(f".gx.old{os.getpid()}")
        if docs.exists():
            os.replace(docs, old)
        os.replace(tmp, docs)
        shutil.rmtree(old, ignore_errors=True)
        for left in docs.parent.glob(".gx.*"):   # a killed run's half-built docs
            shutil.rmtree(left, ignore_errors=True)
        mark_report(cfg.out, s.site_id, "")
        built.append(s.site_id)
    return built


def mark_report(out: Path, site_id: str, note: str) -> None:
    """Rewrite the Data Docs line of the site's validation report (if there is one)."""
    from etl.validate.validation_report import docs_line

    page = out / "validation" / site_id / "index.html"
    try:
        html = page.read_text(encoding="utf-8")
    except OSError:
        return
    new = REPORT_LINE.sub(lambda _m: docs_line(note), html, count=1)
    if new != html:
        tmp = page.with_name(f".index.html.tmp{os.getpid()}")
        tmp.write_text(new, encoding="utf-8")
        os.replace(tmp, page)


def published_quality(out: Path, path: Path | None = None) -> pd.DataFrame | None:
    """The published warehouse's `quality_check` rows (None when there is none to read);
    `path`: another warehouse file (a run being built)."""
    import duckdb

    from warehouse.quality import TABLE

    path = path or out / "warehouse.duckdb"
    if not path.exists():
        return None
    con = duckdb.connect(str(path.resolve()), read_only=True)
    try:
        return con.execute(f"SELECT * FROM {TABLE}").fetchdf()
    except duckdb.Error:
        return None
    finally:
        con.close()


def site_digests(checks: pd.DataFrame | None, site_ids: Iterable[str]) -> dict[str, str]:
    """Each site's `digest` of its rows of `checks` (a warehouse's quality_check rows): what
    a site's docs stamp `.quality_digest` must equal. A refresh records them beside the
    warehouse it builds, so that a no-change refresh compares stamps without opening it."""
    return {sid: digest(_site_rows(checks, sid)) for sid in site_ids}


def _site_rows(checks: pd.DataFrame | None, site_id: str) -> pd.DataFrame | None:
    return checks[checks["site_id"] == site_id] if checks is not None else None


def digest(quality: pd.DataFrame | None) -> str:
    if quality is None:
        return "-"
    text = quality.sort_values(list(quality.columns)).to_csv(index=False)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _read_stamp(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def site_docs(cfg, site_output, docs: Path | None = None, quality: pd.DataFrame | None = None) -> None:
    """Great Expectations over the site's mapped rows before quarantine, and its Data Docs, in
    out/validation/<site>/gx/ (or `docs`). A table sampled for GX (every row with a finding
    kept, the others sampled: etl.validate.prequarantine) is said on the index and in SAMPLED.txt.
    `quality`: the site's dataset checks (default: those computable without the pooled
    warehouse: row counts against the site cache, completeness)."""
    from etl.validate.gx_docs import validate_site
    from warehouse import quality as dq

    started = time.perf_counter()
    docs = docs or docs_dir(cfg.out, site_output.site_id)
    shutil.rmtree(docs, ignore_errors=True)
    tables, counts, notes = gx_tables(site_output)
    if quality is None:
        quality = dq.frame(dq.site_checks(site_output.site_id, site_output.pre_quarantine,
                                          site_output.previous_rows))
    validate_site(site_output.site_id, tables, docs, counts=counts, notes=notes, quality=quality)
    if notes:
        (docs / "SAMPLED.txt").write_text("\n".join(notes) + "\n", encoding="utf-8")
    (docs / "TIMING.txt").write_text(f"GX validation and Data Docs: {time.perf_counter() - started:.1f} s\n",
                                     encoding="utf-8")


def gx_tables(site_output) -> tuple[dict[str, pd.DataFrame], dict[str, dict], list[str]]:
    """The frames GX validates (the masked pre-quarantine samples), their counts, and a note
    for every table where they are a sample."""
    tables, counts, notes = {}, {}, []
    for n, p in sorted(site_output.pre_quarantine.items()):
        frame = p.frame()
        tables[n] = frame
        counts[n] = {"rows": p.rows, "failing_rows": p.failing_rows, "sample_rows": len(frame)}
        if len(frame) < p.rows:
            kept = min(p.failing_rows, len(frame))
            notes.append(f"{n}: {p.rows:,} mapped rows before quarantine, {p.failing_rows:,} with a finding; GX "
                         f"validated {len(frame):,} of them: {'every' if kept == p.failing_rows else 'the first'} "
                         f"{kept:,} with a finding and a random sample of the others. Counts of unexpected values "
                         f"are exact for the rows with a finding; percentages are of the rows validated.")
    return tables, counts, notes
