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
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from etl.config import Config, pseudonym_key
from etl.errors import InputError
from etl.site import export_dir, run_site, site_mapping
from etl.version import code_version
from warehouse import publish, sitecache
from warehouse.build import WarehouseInput, build
from warehouse.lock import refresh_lock
from warehouse.runlog import append_run, read_runs
from warehouse.sitecache import SiteOutput

Progress = Callable[[str], None]


@dataclass
class RefreshOutcome:
    run_id: str
    status: str                      # ok | data_errors | no_changes | failed
    sites: list[SiteOutput] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    warehouse: Path | None = None
    message: str = ""

    @property
    def exit_code(self) -> int:
        return 0 if self.status in ("ok", "no_changes") else 1


def new_run_id(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def key_fingerprint(key: bytes) -> str:
    """Identifies the key without revealing it: cached outputs made under another key are stale."""
    return hmac.new(key, b"carpool key fingerprint", hashlib.sha256).hexdigest()[:12]


def refresh(cfg: Config, now: datetime, only: list[str] | None = None, full: bool = False,
            progress: Progress | None = None, warn: Progress | None = None,
            site_hook: Callable[[str], None] | None = None) -> RefreshOutcome:
    say = progress or (lambda _m: None)
    out = cfg.out
    run_id = new_run_id(now)
    for s in only or []:
        cfg.site(s)
    with refresh_lock(out, on_stale=warn):
        publish.prune(out)
        key, _ = pseudonym_key(cfg)
        salt = f"{code_version()}|{key_fingerprint(key)}"
        outcome = RefreshOutcome(run_id, "ok")
        digests = sitecache.load_digests(out)
        todo: list[tuple] = []
        for site in [s for s in cfg.sites if s.enabled]:
            if site_hook:
                site_hook(site.id)
            mapping = site_mapping(cfg, site)
            folder = export_dir(cfg, site, mapping)
            files = [folder / s.path for s in mapping.sources.values() if (folder / s.path).is_file()]
            h = sitecache.input_hash(files, mapping.site_dir, salt, digests)
            prior = sitecache.cached(out, site.id)
            wanted = only is None or site.id in only
            if prior and not full and (prior["input_hash"] == h or not wanted):
                if prior["input_hash"] != h:
                    (warn or say)(f"{site.id}: inputs changed but not refreshed (not in --site); "
                                  "using its last good output")
                say(f"{site.id}: unchanged, reusing validated output")
                outcome.sites.append(sitecache.summary(out, site.id))  # tables loaded only if we build
                continue
            say(f"{site.id}: reading, mapping and validating")
            todo.append((site, h))
        for (site, h), result in zip(todo, _run_sites(cfg, [s for s, _ in todo], key), strict=True):
            if isinstance(result, InputError):
                outcome.failures[site.id] = str(result)
                continue
            outcome.sites.append(sitecache.save(out, replace(result, input_hash=h)))
            shutil.rmtree(_work_dir(cfg, site.id), ignore_errors=True)
        sitecache.save_digests(out, digests)
        order = {s.id: i for i, s in enumerate(cfg.sites)}
        outcome.sites.sort(key=lambda s: order[s.site_id])
        if outcome.failures:
            outcome.status = "failed"
            outcome.message = "; ".join(f"{k}: {v}" for k, v in outcome.failures.items())
            append_run(out, _run_record(cfg, outcome, now, now))
            return outcome
        signature = _signature(cfg, outcome.sites)
        live = publish.current(out)
        if live and not full and _built_from(live) == signature:
            outcome.status = "no_changes"
            outcome.warehouse = out / "warehouse.duckdb"
            outcome.message = "no changes"
            append_run(out, _run_record(cfg, outcome, now, now))
            return outcome
        say("building the pooled warehouse")
        outcome.sites = [sitecache.load(out, s.site_id) if s.reused else s for s in outcome.sites]
        over = [s for s in outcome.sites if s.quarantined_pct > cfg.quality.max_quarantined_pct]
        if over:
            outcome.status = "data_errors"
            outcome.message = "; ".join(f"{s.site_id}: {s.quarantined_pct:.0f}% of patients quarantined "
                                        f"(threshold {cfg.quality.max_quarantined_pct:g}%)" for s in over)
        run_dir = publish.staging_dir(out, run_id)
        record = _run_record(cfg, outcome, now, now)
        runs = pd.DataFrame(read_runs(out) + [record])
        tables: dict[str, dict[str, Path]] = {}
        for s in outcome.sites:
            for name, path in s.tables.items():
                tables.setdefault(name, {})[s.site_id] = path
        data = WarehouseInput(run_id, [s.site_id for s in outcome.sites], tables,
                              _concat([s.quarantine for s in outcome.sites]),
                              _files(outcome.sites), _runs_frame(runs),
                              {"cutoff_date": cfg.cutoff_date.isoformat(), "study": cfg.study, "run_id": run_id})
        try:
            build(run_dir, data)
            (run_dir / "build.json").write_text(json.dumps({"signature": signature, "run_id": run_id}))
            publish.mark_published(run_dir)
            publish.publish(out, run_dir)
        except Exception as exc:  # noqa: BLE001 - any build/publish failure: keep the old warehouse, record why
            shutil.rmtree(run_dir, ignore_errors=True)
            outcome.status = "failed"
            outcome.message = f"warehouse build failed, previous warehouse kept: {type(exc).__name__}: {exc}"
            append_run(out, _run_record(cfg, outcome, now, now))
            return outcome
        outcome.warehouse = out / "warehouse.duckdb"
        append_run(out, record)
        return outcome


def _work_dir(cfg: Config, site_id: str) -> Path:
    return cfg.out / "sites" / f".{site_id}.tmpwork"  # a killed run's leftover goes with publish.prune


def _run_sites(cfg: Config, sites: list, key: bytes) -> list:
    """Sites one after another, in this process: DuckDB already uses every core, and a
    refresh killed with SIGKILL must leave no worker behind holding the lock or memory."""
    out = []
    for site in sites:
        try:
            out.append(run_site(cfg, site, key, work_dir=_work_dir(cfg, site.id)))
        except InputError as exc:
            out.append(exc)
    return out


def _signature(cfg: Config, sites: list[SiteOutput]) -> str:
    parts = [code_version(), cfg.config_hash()] + sorted(f"{s.site_id}:{s.input_hash}" for s in sites)
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def _built_from(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "build.json").read_text())["signature"]
    except (OSError, ValueError, KeyError):
        return None


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if f is not None and len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _files(sites: list[SiteOutput]) -> pd.DataFrame:
    rows = [s.files.assign(site_id=s.site_id) for s in sites]
    return _concat(rows)


def _runs_frame(runs: pd.DataFrame) -> pd.DataFrame:
    runs = runs.copy()
    for col in ("started_at", "finished_at"):
        runs[col] = pd.to_datetime(runs[col], utc=True).dt.tz_convert(None)
    runs["sites"] = runs["sites"].map(lambda v: v if isinstance(v, str) else json.dumps(v, sort_keys=True))
    return runs


def _run_record(cfg: Config, outcome: RefreshOutcome, started: datetime, finished: datetime) -> dict:
    return {"run_id": outcome.run_id, "started_at": started.astimezone(UTC).isoformat(),
            "finished_at": datetime.now(UTC).isoformat() if finished is started else finished.isoformat(),
            "status": outcome.status, "code_version": code_version(), "config_hash": cfg.config_hash(),
            "sites": {s.site_id: s.counts() for s in outcome.sites}, "message": outcome.message}
