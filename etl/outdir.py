"""The output folder: carpool writes, replaces and deletes only inside a folder it owns.

Regression (issue 15): `output_dir: .` made the site cache (`out/sites/<id>/`) replace
every center's mapping, code lists and export under `sites/`, and an output_dir pointing
at an unrelated folder deleted files there too. So:
- `check_output_dir` (run by `load_config`) refuses an output_dir that is, contains or
  lies inside the config file's folder entries that matter: the config file itself, a
  site's folder (mapping, code lists) or export folder, or an export file; and a folder
  that exists, is not empty and has no carpool marker file.
  An output folder written by carpool before the marker existed (only carpool's own
  entries, with a run log) is accepted, and marked at the next refresh.
- `claim` creates the folder with its marker, `.carpool-output`, which is also the
  manifest: the top-level entries carpool creates there (`OWNED`).
- `remove` deletes a path only when it lies under an owned entry of a claimed folder;
  anything else raises instead of deleting.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from etl.errors import ConfigError

MARKER = ".carpool-output"
OWNED = ("runs", "current", "warehouse.duckdb", "parquet", "sites", "work", "report", "report.tmp",
         "validation", "snapshots", "run_log.jsonl", ".refresh.lock")


def check_output_dir(cfg) -> None:
    """Raise ConfigError when cfg.out could eat the config or the sites (see module docstring)."""
    out = cfg.out.resolve()
    where = f"{cfg.path}: output_dir {cfg.output_dir} ({out})"
    protected = [("the config file", cfg.path.resolve())] if cfg.path else []
    for site in cfg.sites:
        mapping = cfg.resolve(site.mapping).resolve()
        protected.append((f"site {site.id}'s folder", mapping.parent))
        if site.export_dir is not None:
            protected.append((f"site {site.id}'s export folder", cfg.resolve(site.export_dir).resolve()))
    for what, path in protected:
        if path == out or path.is_relative_to(out):
            raise ConfigError(f"{where} is or contains {what} ({path}); carpool replaces and deletes files "
                              "in its output folder: choose a separate folder such as out/")
        if out.is_relative_to(path) and path.is_dir():
            raise ConfigError(f"{where} lies inside {what} ({path}); choose a folder outside it")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{where} is a file, not a folder")
    if out.is_dir() and not (out / MARKER).is_file() and any(out.iterdir()) and not _pre_marker(out):
        raise ConfigError(f"{where} is a non-empty folder that carpool did not create (no {MARKER} marker); "
                          "carpool deletes files in its output folder: choose a new or empty folder")


def _pre_marker(out: Path) -> bool:
    """An output folder written by carpool before the marker existed: it holds a run log or
    runs, and nothing but entries carpool creates. The next refresh adds the marker."""
    names = {p.name for p in out.iterdir()}
    return bool(names & {"run_log.jsonl", "runs"}) and all(n in OWNED or n.startswith(".current.") for n in names)


def claim(out: Path) -> None:
    """Create the output folder (if needed) with its marker and manifest."""
    out.mkdir(parents=True, exist_ok=True)
    marker = out / MARKER
    if not marker.is_file():
        marker.write_text(json.dumps({"owner": "carpool", "owned": list(OWNED),
                                      "note": "carpool deletes only these entries of this folder"}, indent=2)
                          + "\n", encoding="utf-8")


def owns(out: Path, path: Path) -> bool:
    """True when `path` is an owned entry of the claimed folder `out`, or lies under one."""
    out, path = (Path(os.path.normpath(Path(p).absolute())) for p in (out, path))  # `..` folded, links kept
    if not (out / MARKER).is_file() or not path.is_relative_to(out) or path == out:
        return False
    top = path.relative_to(out).parts[0]
    return top in _owned(out) or top.startswith(".current.")


def remove(out: Path, path: Path) -> None:
    """Delete a file or folder that carpool owns; refuse (RuntimeError) anything else."""
    if not owns(out, path):
        raise RuntimeError(f"carpool refuses to delete {path}: not an entry it created in {out} "
                           f"(see {out / MARKER})")
    path = Path(path)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _owned(out: Path) -> set[str]:
    try:
        return set(json.loads((out / MARKER).read_text(encoding="utf-8"))["owned"])
    except (OSError, ValueError, KeyError, TypeError):
        return set(OWNED)
