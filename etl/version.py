"""The code version recorded with every run, and part of every site's input hash.

`carpool <version>+<hash of the project's Python sources>`: changing the code that maps,
validates or writes data changes it, committed or not, so an incremental refresh never
reuses output made by different code.
"""
from __future__ import annotations

import hashlib
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("etl", "schemas", "warehouse")


@cache
def code_version() -> str:
    try:
        v = version("carpool")
    except PackageNotFoundError:
        v = "0+unknown"
    h = hashlib.sha256()
    for d in CODE_DIRS:
        for p in sorted((ROOT / d).rglob("*")):
            if p.is_file() and p.suffix in {".py", ".sql"}:
                h.update(p.relative_to(ROOT).as_posix().encode())
                h.update(p.read_bytes())
    return f"carpool {v}+{h.hexdigest()[:10]}"
