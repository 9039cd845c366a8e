"""Where a mapping may point: its sources inside the site's export folder, its code lists
inside the site folder, and each a file, not a folder.

A mapping is written by hand (or drafted by `carpool scaffold`); `../../etc/passwd`, an
absolute path or a folder name is a mistake to name, with the file and the key, before any
reader opens it.
"""
from __future__ import annotations

from pathlib import Path

from etl.errors import ConfigError


def confine(mapping, export_folder: Path) -> None:
    """Raise ConfigError for a source or code-list path outside its folder or not a file."""
    where = mapping.path
    for name, src in mapping.sources.items():
        for key, rel in (("path", src.path), ("dictionary", src.dictionary)):
            if rel is not None:
                _inside(where, f"sources.{name}.{key}", export_folder, rel, must_exist=False)
    for tname, t in mapping.tables.items():
        specs = [*t.columns.items(), *((c, s) for g in (t.melt or []) for c, s in g.columns.items())]
        for col, spec in specs:
            if spec.codes:
                _inside(where, f"tables.{tname}.{col}.codes", mapping.site_dir, spec.codes, must_exist=True)


def _inside(where: Path, key: str, folder: Path, rel: str, must_exist: bool) -> None:
    path = (folder / rel).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise ConfigError(f"{where}: {key}: {rel!r} is outside the site folder {folder}; "
                          "keep the export and code lists inside it")
    if path.is_dir():
        raise ConfigError(f"{where}: {key}: {rel!r} is a folder, not a file")
    if must_exist and not path.is_file():
        raise ConfigError(f"{where}: {key}: {rel!r}: file not found")
    if must_exist:
        try:
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text at byte {exc.start} (save the code list as UTF-8)") from None
