"""The pooled refresh: every site -> validated site output -> one published warehouse.

`refresh()` is what `carpool refresh`, cron and Airflow run. It holds the single-writer
lock, reuses each site's last good output when the site's inputs are unchanged, builds the
warehouse into a staging folder and publishes it atomically. A failed run leaves the
previous warehouse exactly as it was and is recorded in the run log with its reason.
The run time comes in as an argument; nothing here reads the clock for a computation.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from etl.compile.mapping import export_dir, quarantine_threshold, site_mapping
from etl.config import DEMO_BANNER, Config, pseudonym_key
from etl.errors import InputError, StorageError, storage_error, storage_fault
from etl.outdir import check_output_dir, claim
from etl.validate import datadocs
from etl.version import code_version
from warehouse import publish, sitecache
from warehouse.lock import refresh_lock
from warehouse.runlog import read_runs, refresh_runs, try_append_run
from warehouse.sitecache import SiteOutput

if TYPE_CHECKING:
    import pandas as pd

# A no-change refresh (cron, an Airflow sensor) decides from the lock, the input hashes and
# the published run's build.json, and imports none of pandas, pyarrow, DuckDB or the mapping
# engine: they are imported below where a site is read or the warehouse is built
# (tests/functional/test_operations.py::test_no_change_refresh_loads_no_data_engine_and_checks_docs_as_before).

Progress = Callable[[str], None]


@dataclass
class RefreshOutcome:
    run_id: str
    status: str                      # ok | data_errors | no_changes | failed
    sites: list[SiteOutput] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    warehouse: Path | None = None
    message: str = ""
    storage_fault: bool = False      # the output folder was full, read-only or failing (exit 3)
    key_source: str = ""             # env | file | demo (never the key)
    stale_docs: dict[str, str] = field(default_factory=dict)   # site -> why its Data Docs are not current

    @property
    def exit_code(self) -> int:
        if self.storage_fault:
            return StorageError.exit_code
        return 0 if self.status in ("ok", "no_changes") else 1


def new_run_id(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def key_fingerprint(key: bytes) -> str:
    """Identifies the key without revealing it: cached outputs made under another key are stale."""
    return hmac.new(key, b"carpool key fingerprint", hashlib.sha256).hexdigest()[:12]


def refresh(cfg: Config, now: datetime, only: list[str] | None = None, full: bool = False,
            progress: Progress | None = None, warn: Progress | None = None,
            site_hook: Callable[[str], None] | None = None,
            docs: bool = False, allow_shrink: bool = False,
            docs_warn: Progress | None = None) -> RefreshOutcome:
    """One refresh under the lock. Every phase is named in the lock record (a run killed in it
    is logged as interrupted by the next one); a storage fault in any phase ends the run with
    one line, exit 3 and a run-log entry, and the published warehouse stays as it was.
    After publishing, still under the lock: with `docs`, the validation Data Docs of every site
    whose docs are missing or stale are built (what `carpool docs` does); without, they are only
    checked, and each stale site is one warning naming `carpool docs` (no GX import), given to
    `docs_warn` when set (else to `warn`)."""
    say = progress or (lambda _m: None)
    out = cfg.out
    run_id = new_run_id(now)
    for s in only or []:
        cfg.site(s)
    key, key_source = pseudonym_key(cfg)
    outcome = RefreshOutcome(run_id, "ok", key_source=key_source)
    check_output_dir(cfg)  # also for a Config not made by load_config
    stack = ExitStack()
    try:
        try:
            claim(out)     # the marker: carpool's own folder (etl.outdir)
        except OSError as exc:
            raise storage_error(exc, "marking the output folder") from None
        holder = stack.enter_context(refresh_lock(out, on_stale=warn or say, command="refresh", run_id=run_id))
    except StorageError as exc:   # out/ not writable at all: try to say so in the run log anyway
        outcome.status, outcome.message = "failed", str(exc)
        problem = try_append_run(out, _run_record(cfg, outcome, now, now))
        if problem:
            exc.args = (f"{exc}; {problem}",)
        raise
    with stack:
        try:
            holder.phase("pruning")
            publish.prune(out)
            _refresh(cfg, now, outcome, holder, key, only, full, say, warn or say, site_hook, allow_shrink)
            if outcome.status != "failed":
                say("building the validation docs" if docs else "checking the validation docs")
                holder.phase("validation docs")
                if docs:
                    datadocs.build(cfg, outcome.sites, warn or say, say)
                outcome.stale_docs = datadocs.check(cfg, outcome.sites, docs_warn or warn or say,
                                                    _built(publish.current(out)).get("quality_digests"))
        except Exception as exc:  # noqa: BLE001 - storage faults and build failures: keep the old warehouse
            _failed(out, outcome, exc, holder.record["phase"])
        holder.phase("recording the run")
        problem = try_append_run(out, _run_record(cfg, outcome, now, now))
        if problem:
            outcome.message = f"{outcome.message}; {problem}"
            outcome.storage_fault = True
        return outcome


def _refresh(cfg: Config, now: datetime, outcome: RefreshOutcome, holder, key: bytes, only, full: bool,
             say: Progress, warn: Progress, site_hook, allow_shrink: bool = False) -> None:
    """The refresh proper: fills `outcome` (sites, status, message, the published warehouse)."""
    out = cfg.out
    salt = f"{code_version()}|{key_fingerprint(key)}"
    holder.phase("hashing site inputs")
    digests = sitecache.load_digests(out)
    todo: list[tuple] = []
    thresholds: dict[str, tuple[float, str]] = {}
    for site in [s for s in cfg.sites if s.enabled]:
        if site_hook:
            site_hook(site.id)
        mapping = site_mapping(cfg, site)
        thresholds[site.id] = quarantine_threshold(cfg, mapping)
        folder = export_dir(cfg, site, mapping)
        files = [folder / s.path for s in mapping.sources.values() if (folder / s.path).is_file()]
        h = sitecache.input_hash(files, mapping.site_dir, salt, digests)
        prior, problem = sitecache.check(out, site.id)
        if problem:
            warn(f"{site.id}: cached output unusable ({problem}); rebuilding this site from its export")
        wanted = only is None or site.id in only
        if prior and not full and (prior["input_hash"] == h or not wanted):
            if prior["input_hash"] != h:
                warn(f"{site.id}: inputs changed but not refreshed (not in --site); using its last good output")
            say(f"{site.id}: unchanged, reusing validated output")
            outcome.sites.append(sitecache.summary(out, site.id))  # tables loaded only if we build
            continue
        say(f"{site.id}: reading, mapping and validating")
        todo.append((site, h))
    holder.phase("reading sites " + ", ".join(s.id for s, _ in todo))
    _run_and_save(cfg, outcome, todo, key, allow_shrink)
    sitecache.save_digests(out, digests)
    if outcome.failures:
        outcome.status = "failed"
        outcome.message = "; ".join(f"{k}: {v}" for k, v in outcome.failures.items())
        return
    signature = _signature(cfg, outcome.sites)
    live = publish.current(out)
    if live and not full and _built_from(live) == signature:
        outcome.status = "no_changes"
        outcome.warehouse = out / "warehouse.duckdb"
        outcome.message = "no changes"
        return
    say("building the pooled warehouse")
    import pandas as pd

    from warehouse import quality
    from warehouse.build import WarehouseInput

    holder.phase("loading cached sites")
    outcome.sites = [_load_cached(cfg, outcome, s, key, warn) if s.reused else s for s in outcome.sites]
    if outcome.failures:
        outcome.status = "failed"
        outcome.message = "; ".join(f"{k}: {v}" for k, v in outcome.failures.items())
        return
    over = [s for s in outcome.sites if s.quarantined_pct > thresholds[s.site_id][0]]
    if over:
        outcome.status = "data_errors"
        outcome.message = "; ".join(f"{s.site_id}: {s.quarantined_pct:.0f}% of patients quarantined "
                                    f"(threshold {thresholds[s.site_id][0]:g}%, {thresholds[s.site_id][1]})"
                                    for s in over)
    run_dir = publish.staging_dir(out, outcome.run_id)
    record = _run_record(cfg, outcome, now, now)
    runs = pd.DataFrame(refresh_runs(read_runs(out, warn)) + [record])
    tables: dict[str, dict[str, Path]] = {}   # table -> site -> its Parquet file in the site cache
    for s in outcome.sites:
        for name, path in s.tables.items():
            tables.setdefault(name, {})[s.site_id] = path
    data = WarehouseInput(outcome.run_id, [s.site_id for s in outcome.sites], tables,
                          _concat([s.quarantine for s in outcome.sites]), _files(outcome.sites), _runs_frame(runs),
                          {"cutoff_date": cfg.cutoff_date.isoformat(), "study": cfg.study, "run_id": outcome.run_id,
                           "key_source": outcome.key_source},
                          quality.frame([r for s in outcome.sites
                                         for r in quality.site_checks(s.site_id, s.pre_quarantine, s.previous_rows)]))
    holder.phase("building the warehouse")
    build(run_dir, data)
    digests = datadocs.site_digests(datadocs.published_quality(out, run_dir / "warehouse.duckdb"), data.site_ids)
    (run_dir / "build.json").write_text(json.dumps({"signature": signature, "run_id": outcome.run_id,
                                                    "quality_digests": digests}))
    publish.mark_published(run_dir)
    holder.phase("publishing")
    publish.publish(out, run_dir)
    outcome.warehouse = out / "warehouse.duckdb"


def build(run_dir: Path, data) -> None:
    """`warehouse.build.build`, imported when a warehouse is built."""
    from warehouse.build import build as build_warehouse

    build_warehouse(run_dir, data)


def _failed(out: Path, outcome: RefreshOutcome, exc: Exception, phase: str) -> None:
    """A phase failed: drop the unpublished staging run and say why in one line. A storage
    fault in any phase is exit 3; any other failure to build or publish is exit 1; anything
    else is a bug and is raised."""
    fault = storage_fault(exc) is not None or isinstance(exc, OSError)
    if not fault and phase not in ("building the warehouse", "publishing"):
        raise exc
    staged = out / "runs" / outcome.run_id
    if staged.exists() and publish.current(out) != staged.resolve():
        shutil.rmtree(staged, ignore_errors=True)
    published = outcome.warehouse is not None and outcome.status != "failed"
    if fault:
        outcome.storage_fault = True
        text = str(storage_error(exc, phase))
        if published:   # only the docs failed: the new warehouse is published and stays
            text = text.replace("nothing published was changed",
                                "the warehouse is published; `carpool docs` rebuilds the missing validation docs")
    else:
        text = f"warehouse build failed, previous warehouse kept: {type(exc).__name__}: {exc}"
    if not published:
        outcome.status = "failed"
        outcome.warehouse = None
    outcome.message = "; ".join(m for m in (outcome.message if published else "", text) if m)


def _run_and_save(cfg: Config, outcome: RefreshOutcome, todo: list[tuple], key: bytes,
                  allow_shrink: bool = False) -> None:
    for (site, h), result in zip(todo, _run_sites(cfg, [s for s, _ in todo], key), strict=True):
        if isinstance(result, InputError):
            outcome.failures[site.id] = str(result)
            continue
        from etl.validate.validation_report import write_validation_report

        write_validation_report(cfg.out / "validation" / site.id, result, cfg.path, outcome.run_id,  # every refresh
                                f"Data Docs not rebuilt for this run: run `{datadocs.command(cfg)}`")
        why = None if allow_shrink else shrink_reason(sitecache.cached(cfg.out, site.id), result,
                                                      cfg.quality.max_shrink_pct)
        if why:  # not cached either: the next run re-reads the export and asks again
            outcome.failures[site.id] = why
            continue
        outcome.sites.append(sitecache.save(cfg.out, replace(result, input_hash=h)))
        shutil.rmtree(_work_dir(cfg, site.id), ignore_errors=True)
    order = {s.id: i for i, s in enumerate(cfg.sites)}
    outcome.sites.sort(key=lambda s: order[s.site_id])


def _load_cached(cfg: Config, outcome: RefreshOutcome, summary: SiteOutput, key: bytes, warn) -> SiteOutput:
    """A reused site's tables; a cache that cannot be read is rebuilt from the site's export."""
    try:
        return sitecache.load(cfg.out, summary.site_id)
    except sitecache.corrupt_errors() as exc:
        warn(f"{summary.site_id}: cached output unreadable ({type(exc).__name__}: {str(exc)[:120]}); "
             "rebuilding this site from its export")
    result = next(_run_sites(cfg, [cfg.site(summary.site_id)], key))
    if isinstance(result, InputError):
        outcome.failures[summary.site_id] = str(result)
        return summary
    return sitecache.save(cfg.out, replace(result, input_hash=summary.input_hash))


def shrink_reason(prior: dict | None, now: SiteOutput, max_pct: float) -> str | None:
    """Why a site's new output must not replace its last good one: its loaded patients fell
    by more than `max_pct` percent (a header-only or truncated export), else None."""
    if not prior:
        return None
    before = int(prior["patients_read"]) - int(prior["patients_quarantined"])
    after = now.patients_loaded
    if before <= 0 or after >= before:
        return None
    drop = 100.0 * (before - after) / before
    if drop <= max_pct:
        return None
    return (f"patients loaded fell from {before} to {after} (-{drop:.0f}%, more than "
            f"quality.max_shrink_pct = {max_pct:g}%) against its last good run; not published, "
            f"the last good output is kept (check the export; rerun with --allow-shrink if intended)")


def _work_dir(cfg: Config, site_id: str) -> Path:
    return cfg.out / "sites" / f".{site_id}.tmpwork"  # a killed run's leftover goes with publish.prune


# sites mapped at once, in threads of this process (never worker processes: a refresh killed
# with SIGKILL must leave nothing behind holding the lock or memory). A site's pandas-side
# work holds the GIL while another site's DuckDB scan runs on every core; the DuckDB path
# itself takes one table at a time (etl.compile.duckpath), so memory stays bounded.
SITE_THREADS = int(os.environ.get("CARPOOL_SITE_THREADS", "2"))


def _run_sites(cfg: Config, sites: list, key: bytes) -> Iterator:
    """Each site's output (or its InputError), in the order of `sites`, as each is ready:
    the caller saves one and drops it before the next (at most SITE_THREADS are held)."""
    if not sites:
        return
    from etl.site import run_site
    from schemas.pandera_models import warm_models

    def one(site):
        try:
            return run_site(cfg, site, key, work_dir=_work_dir(cfg, site.id))
        except InputError as exc:
            return exc
    if len(sites) < 2 or SITE_THREADS < 2:
        yield from map(one, sites)
        return
    warm_models()   # import pandera's ibis backend once, before the threads need it
    todo = deque(sites)
    with ThreadPoolExecutor(max_workers=SITE_THREADS, thread_name_prefix="site") as pool:
        running = deque(pool.submit(one, todo.popleft()) for _ in range(min(SITE_THREADS, len(todo))))
        try:
            while running:
                result = running.popleft().result()
                if todo:
                    running.append(pool.submit(one, todo.popleft()))
                yield result
        finally:   # a bug in one site, or the caller stopped: the sites not yet started are not
            for f in running:
                f.cancel()


def _signature(cfg: Config, sites: list[SiteOutput]) -> str:
    parts = [code_version(), cfg.config_hash()] + sorted(f"{s.site_id}:{s.input_hash}" for s in sites)
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def _built(run_dir: Path | None) -> dict:
    """A published run's build.json: the signature it was built from, the quality digests."""
    try:
        built = json.loads((run_dir / "build.json").read_text())
    except (OSError, ValueError, TypeError):
        return {}
    return built if isinstance(built, dict) else {}


def _built_from(run_dir: Path) -> str | None:
    return _built(run_dir).get("signature")


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    import pandas as pd

    frames = [f for f in frames if f is not None and len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _files(sites: list[SiteOutput]) -> pd.DataFrame:
    rows = [s.files.assign(site_id=s.site_id) for s in sites]
    return _concat(rows)


def _runs_frame(runs: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    runs = runs.copy()
    for col in ("started_at", "finished_at"):
        runs[col] = pd.to_datetime(runs[col], utc=True, format="ISO8601", errors="coerce").dt.tz_convert(None)
    runs["sites"] = runs["sites"].map(lambda v: v if isinstance(v, str) else json.dumps(v, sort_keys=True))
    return runs


def _run_record(cfg: Config, outcome: RefreshOutcome, started: datetime, finished: datetime) -> dict:
    return {"command": "refresh", "run_id": outcome.run_id, "started_at": started.astimezone(UTC).isoformat(),
            "finished_at": datetime.now(UTC).isoformat() if finished is started else finished.isoformat(),
            "status": outcome.status, "code_version": code_version(), "config_hash": cfg.config_hash(),
            "sites": {s.site_id: s.counts() for s in outcome.sites}, "message": outcome.message,
            "unmapped_columns": {s.site_id: s.unmapped for s in outcome.sites if s.unmapped},
            "key_source": outcome.key_source, **({"banner": DEMO_BANNER} if outcome.key_source == "demo" else {})}
