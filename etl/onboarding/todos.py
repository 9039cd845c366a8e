"""The TODOs a `carpool scaffold` draft leaves for a person, and the check that none is left.

The draft marks every question it cannot answer with `TODO:` (a comment in mapping.yml, or
the value `TODO`) and every code it cannot translate with target_value `TODO` in its code
list. `open_todos` lists what is left, one line each with file and line; `refuse_todos`
stops `carpool validate` and `carpool refresh` until the list is empty, so a guess never
loads silently.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

from etl.errors import ConfigError

MARK = "TODO"
_IN_YAML = re.compile(r"#\s*TODO\b|:\s*TODO\s*(#|$)|^\s*-?\s*TODO\s*(#|$)")


def open_todos(mapping) -> list[str]:
    """`file:line: text` for every TODO left in the mapping file and its code lists."""
    out = []
    path = Path(mapping.path)
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if _IN_YAML.search(line):
            out.append(f"{path}:{i}: {line.strip()}")
    lists = {spec.codes for t in mapping.tables.values()
             for spec in [*t.columns.values(), *(c for g in (t.melt or []) for c in g.columns.values())] if spec.codes}
    for rel in sorted(lists):
        out += _code_list_todos(mapping.site_dir / rel)
    return out


def _code_list_todos(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []  # a missing or unreadable code list is reported by the mapping step itself
    return [f"{path}:{i}: source_value {r.get('source_value')!r} has target_value TODO"
            + (f" ({r['note']})" if r.get("note") else "")
            for i, r in enumerate(rows, start=2) if (r.get("target_value") or "").strip() == MARK]


def refuse_todos(mapping) -> None:
    todos = open_todos(mapping)
    if todos:
        listed = "\n".join(f"  {t}" for t in todos)
        raise ConfigError(f"{mapping.path}: the draft still has {len(todos)} TODO(s); answer each, "
                          f"then run again:\n{listed}")
