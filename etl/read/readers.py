"""Readers: one export file in, one `RawTable` out, with row numbers a person can open.

Every reader keeps the source values raw (strings for text files, the cell's own Python
value for Excel and SPSS) and records each row's number as the person sees it: the line
number in a CSV (the header is line 1), the sheet row in Excel (title rows included), the
case number in SPSS. A file that cannot be read at all raises `InputError` naming it.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from etl.compile.mapping import Source
from etl.errors import InputError
from etl.read.encoding import detect_encoding, wide
from etl.read.excel_cells import bad_cells
from etl.read.workbook_limits import check_workbook
from schemas.catalog import catalog

ROW = "_source_row"
MAX_FIELD_CHARS = 10 * 1024 * 1024  # one CSV field; cells over CELL_TOO_LONG's limit become findings
csv.field_size_limit(MAX_FIELD_CHARS)


@dataclass(frozen=True)
class RawTable:
    """One source as read: raw values, a `_source_row` column, and SPSS value labels."""

    name: str
    path: Path
    frame: pd.DataFrame
    value_labels: dict[str, dict] = field(default_factory=dict)
    sheet: str | None = None
    bad_cells: tuple[tuple[int, str, str, str], ...] = ()   # (row, column, rule_id, shown): see excel_cells

    @property
    def label(self) -> str:
        """How a person finds the rows: the file name, plus the sheet for workbooks."""
        return f"{self.path.name} [{self.sheet}]" if self.sheet else self.path.name

    @property
    def rows_read(self) -> int:
        return len(self.frame)


def read_source(name: str, source: Source, export_dir: Path) -> RawTable:
    path = export_dir / source.path
    if not path.is_file():
        raise InputError(f"{path}: file not found (source {name!r})")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    reader = {"csv": _read_csv, "redcap": _read_csv, "excel": _read_excel, "sav": _read_sav}[source.format]
    try:
        frame, labels = reader(path, source)
        bad = _excel_bad_cells(path, source, frame) if source.format == "excel" else ()
    except InputError:
        raise
    except Exception as exc:  # a library's parse error: the file, not carpool, is wrong
        raise InputError(f"{path}: cannot read as {source.format}: {exc}") from None
    sheet = (source.sheet or "") if source.format == "excel" else None
    return RawTable(name, path, frame, labels, sheet or None, bad)


def _excel_bad_cells(path: Path, source: Source, frame: pd.DataFrame) -> tuple[tuple[int, str, str, str], ...]:
    """Error cells and uncached formulas in the data rows, by header: read as empty, never trusted."""
    from python_calamine import CalamineWorkbook

    sheet = source.sheet or CalamineWorkbook.from_path(str(path)).sheet_names[0]
    header = [c for c in frame.columns if c != ROW]
    rows = set(frame[ROW])
    return tuple((c.row, header[c.col], c.rule_id, c.shown) for c in bad_cells(path, sheet)
                 if c.row in rows and c.col < len(header))


def _read_csv(path: Path, source: Source) -> tuple[pd.DataFrame, dict]:
    data = path.read_bytes()
    if b"\x00" in data[:4096] and not wide(source.encoding):
        raise InputError(f"{path}: looks like a binary file, not {source.format} text{_hint(data, path)}")
    try:
        text = data.decode(source.encoding)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not valid {source.encoding} at byte {exc.start} "
                         f"(set `encoding:` for this source{_hint(data, path)})") from None
    except LookupError:
        raise InputError(f"{path}: unknown encoding {source.encoding!r}") from None
    text = text.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=source.delimiter, strict=True)
    header, rows, numbers = None, [], []
    for record in _records(path, reader):
        line = reader.line_num
        if header is None:
            if line >= source.header_row and any(h.strip() for h in record):
                header = [h.strip() for h in record]
            continue
        cells = [c.strip() for c in record]
        if not any(cells):
            continue  # blank line: nothing to load, nothing lost
        if len(record) != len(header):
            raise InputError(f"{path}: line {line}: {len(record)} fields, header has {len(header)} "
                             f"(truncated file or wrong delimiter {source.delimiter!r}?)")
        rows.append(cells)
        numbers.append(line)
    if header is None:
        raise InputError(f"{path}: no header row (expected on line {source.header_row})")
    check_header(path, header)
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    frame[ROW] = numbers
    return frame, {}


def _hint(data: bytes, path: Path) -> str:
    """`; it looks like big5`: the detected encoding, as a suggestion (never applied silently)."""
    try:
        return f"; it looks like {detect_encoding(data, path)[0]}"
    except InputError:
        return ""


def _records(path: Path, reader):
    """csv records; a broken quote (e.g. a file cut inside a quoted field) is an InputError,
    not the rest of the file swallowed into one cell."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "field limit" in str(exc):
                raise InputError(f"{path}: line {reader.line_num}: a field longer than {MAX_FIELD_CHARS:,} "
                                 "characters (the field size limit): a stray \" that swallowed the rest of "
                                 "the file, or not a data export") from None
            raise InputError(f"{path}: line {reader.line_num}: {exc} (unbalanced quote: "
                             f"truncated file or a stray \" in a value?)") from None


def _read_excel(path: Path, source: Source) -> tuple[pd.DataFrame, dict]:
    from python_calamine import CalamineWorkbook

    check_workbook(path, source.sheet)  # before calamine sizes its grid from the declared range
    try:
        book = CalamineWorkbook.from_path(str(path))
    except Exception as exc:
        raise InputError(f"{path}: not a readable Excel workbook ({exc})") from None
    sheet_name = source.sheet or book.sheet_names[0]
    if sheet_name not in book.sheet_names:
        raise InputError(f"{path}: no sheet {sheet_name!r} (sheets: {', '.join(book.sheet_names)})")
    cells = book.get_sheet_by_name(sheet_name).to_python(skip_empty_area=False)
    if len(cells) < source.header_row:
        raise InputError(f"{path} [{sheet_name}]: no header on row {source.header_row}")
    header = [str(h).strip() for h in cells[source.header_row - 1]]
    while header and header[-1] == "":
        header.pop()
    check_header(path, header)
    rows, numbers = [], []
    for i, row in enumerate(cells[source.header_row:], start=source.header_row + 1):
        row = list(row[: len(header)]) + [""] * (len(header) - len(row))
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in row):
            continue
        rows.append([v.strip() if isinstance(v, str) else v for v in row])
        numbers.append(i)
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    frame[ROW] = numbers
    return frame, {}


def _read_sav(path: Path, source: Source) -> tuple[pd.DataFrame, dict]:
    import pyreadstat

    frame, meta = pyreadstat.read_sav(str(path), apply_value_formats=False)
    frame = frame.astype(object).where(frame.notna(), None)
    labels = {k: dict(v) for k, v in meta.variable_value_labels.items()}
    if source.value_labels:
        for col, lab in labels.items():
            frame[col] = [lab.get(v, v) for v in frame[col]]
    frame[ROW] = range(1, len(frame) + 1)
    return frame, labels


HEADER_SHOWN = 40  # characters of an oversized header cell shown in the error


def check_header(path: Path, header: list[str]) -> None:
    """A header a person can act on: no repeated names, and no cell longer than the catalog's
    cell limit (CELL_TOO_LONG), which is a pasted document, not a column name; the error shows
    only its start, never the whole cell."""
    limit = int(catalog()["CELL_TOO_LONG"].limit)
    for i, h in enumerate(header, start=1):
        if len(h) > limit:
            raise InputError(f"{path}: header column {i} is {len(h):,} characters long (more than {limit:,}; "
                             f"starts {h[:HEADER_SHOWN]!r}…): not a header row (check header_row and the file)")
    seen = set()
    for h in header:
        if h in seen:
            raise InputError(f"{path}: column {h!r} appears twice in the header")
        seen.add(h)
