"""Showing data safely: every value carpool writes for a person is inert where it lands.

Export values and headers come from outside and may hold anything: `<script>`, an
`onerror=` attribute, rich console markup like `[b]`, or a spreadsheet formula like
`=HYPERLINK(...)`. Each output has one way out, defined here and used everywhere:
- HTML: `html_env` is a Jinja environment that escapes every template, whatever its
  file name (`select_autoescape()` alone skips `*.html.j2`).
- CSV a person opens in Excel or LibreOffice: `write_csv` / `neutralize_frame` prefix a
  text cell that starts with `= + - @`, tab or CR with `'` (OWASP "CSV injection").
  Numbers stay numbers: numeric columns are untouched, and a text cell that is a plain
  number (`-5`, `+1.5e3`) is not a formula either.
- Terminal: `plain` wraps a value as a rich `Text`, shown as written, never as markup.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:   # imported where used: a no-change refresh and `--help` load none of them
    import pandas as pd
    from jinja2 import BaseLoader, Environment
    from rich.text import Text

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def html_env(loader: BaseLoader) -> Environment:
    """A Jinja environment that autoescapes every template it loads (HTML out)."""
    from jinja2 import Environment

    return Environment(loader=loader, autoescape=True)


def neutralize_cell(value):
    """One CSV cell: a text value that a spreadsheet would run as a formula gets a leading `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def neutralize_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every text cell and every header neutralized; numeric columns unchanged."""
    import pandas as pd

    out = frame.copy()
    for col in range(out.shape[1]):  # by position: result columns may share a name
        values = out.iloc[:, col]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            out.isetitem(col, pd.Series([neutralize_cell(v) for v in values], index=out.index, dtype=object))
    out.columns = [neutralize_cell(str(c)) for c in out.columns]
    return out


def write_csv(frame: pd.DataFrame, target: Path | IO[str], **kwargs) -> None:
    """`DataFrame.to_csv` for a file a person opens: formulas neutralized, no index."""
    kwargs.setdefault("index", False)
    neutralize_frame(frame).to_csv(target, **kwargs)


def plain(value, style: str = "") -> Text:
    """A value for a rich table or line, in `style`: printed as data, markup characters and all."""
    from rich.text import Text

    return Text("" if value is None else str(value), style=style)
