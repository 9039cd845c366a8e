"""Source columns no mapping reads: listed on every refresh, so no column is dropped unseen.

A column is *mapped* when the mapping names it anywhere (a column spec, a `when:`, a
`where:`, an identifier, a derivation argument), and *ignored* when its source lists it
under `ignore:` with a reason. Every other column of every source is unmapped: the
refresh prints it, the run log and the per-site validation report list it. The header of
a source the DuckDB path reads is taken from the file's header line, not from a full read.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

from etl.compile.mapping import SiteMapping

if TYPE_CHECKING:
    from etl.read.readers import RawTable


def unmapped_columns(mapping: SiteMapping, raw: dict[str, RawTable], folder: Path) -> dict[str, list[str]]:
    """Source file (its label) -> its unmapped columns, in file order; only files that have some."""
    from etl.read.readers import ROW
    from etl.read.relations import DATE_TWIN
    from etl.validate.cell_findings import mentioned_columns

    used = mentioned_columns(mapping)
    out: dict[str, list[str]] = {}
    for name, source in mapping.sources.items():
        if name in raw:
            label, header = raw[name].label, [str(c) for c in raw[name].frame.columns]
        else:
            label, header = Path(source.path).name, _csv_header(folder / source.path, source)
        ignored = set(source.ignore)
        cols = [c for c in header if c != ROW and not c.endswith(DATE_TWIN) and c not in used and c not in ignored]
        if cols:
            out[label] = cols
    return out


def _csv_header(path: Path, source) -> list[str]:
    """The header line of a CSV source (as the reader finds it); [] when it cannot be read
    (the read itself reports that, with the file and line)."""
    try:
        with path.open(encoding=source.encoding, newline="", errors="replace") as fh:
            for n, record in enumerate(csv.reader(fh, delimiter=source.delimiter), start=1):
                if n >= source.header_row and any(h.strip() for h in record):
                    return [h.strip().removeprefix("\ufeff").strip() for h in record]
    except (OSError, LookupError, csv.Error):
        return []
    return []


def unmapped_text(site_id: str, unmapped: dict[str, list[str]]) -> str | None:
    """One line for the refresh output, or None when every column is mapped or ignored."""
    if not unmapped:
        return None
    n = sum(len(v) for v in unmapped.values())
    files = "; ".join(f"{f}: {_names(cols)}" for f, cols in unmapped.items())
    return (f"{site_id}: {n} unmapped source column{'s' if n != 1 else ''} ({files}); map them, or list them "
            "under the source's `ignore:` with a reason")


SHOWN = 20   # columns named per file on the one line; the report and run log list them all


def _names(cols: list[str]) -> str:
    """A file's unmapped columns, the first SHOWN of them (each cut to 40 characters): a
    2,000-column export must not print a 13,000-character line."""
    shown = ", ".join(c if len(c) <= 40 else c[:40] + "…" for c in cols[:SHOWN])
    return shown + (f" and {len(cols) - SHOWN} more (see the site's validation report)" if len(cols) > SHOWN else "")
