"""Guess how to read an export nobody has described yet: format, encoding, delimiter,
decimal convention, header row, sheets, and whether a CSV is a REDCap data dictionary.

`sniff(path)` returns one `Sniffed` per readable table in the file (one per non-empty
sheet of a workbook) with a `Source` that `etl.read.readers.read_source` accepts, so the
profile and the mapping draft read the file exactly as a refresh will. A file that is
empty, binary, or not what its extension says raises `InputError` naming it (one line).
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from etl.compile.mapping import Source
from etl.errors import InputError
from etl.read.encoding import detect_encoding

EXCEL_EXT = {".xlsx", ".xlsm", ".xls", ".xlsb", ".ods"}
SAV_EXT = {".sav", ".zsav"}
DELIMITERS = [",", ";", "\t", "|"]
DICTIONARY_HEADERS = {"variable / field name", "field_name"}
_DEC_COMMA = re.compile(r"^-?\d+,\d+$")
_DEC_POINT = re.compile(r"^-?\d+\.\d+$")
_NUMBER = re.compile(r"^-?[\d.,]+$")


@dataclass(frozen=True)
class Sniffed:
    """One table found in a file, with how to read it and what was guessed."""

    path: Path
    source: Source
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        stem = re.sub(r"[^0-9a-zA-Z_]+", "_", self.path.stem).strip("_").lower() or "export"
        return f"{stem}_{_slug(self.source.sheet)}" if self.source.sheet else stem


def _slug(s: str) -> str:
    return re.sub(r"\W+", "_", s).strip("_").lower() or "sheet"


def kind(path: Path) -> str:
    """`excel`, `sav` or `text`, from the file's first bytes, checked against its extension."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    with path.open("rb") as fh:
        head = fh.read(8)
    if not head:
        raise InputError(f"{path}: file is empty")
    found = ("excel" if head[:4] in (b"PK\x03\x04", b"\xd0\xcf\x11\xe0") else
             "sav" if head[:4] in (b"$FL2", b"$FL3") else "text")
    ext = path.suffix.lower()
    expected = "excel" if ext in EXCEL_EXT else "sav" if ext in SAV_EXT else "text"
    what = {"excel": "an Excel workbook", "sav": "an SPSS .sav file", "text": "text (CSV?)"}
    if found != expected:
        raise InputError(f"{path}: named {ext or '(no extension)'} but the content is {what[found]}, "
                         f"not {what[expected]}; rename it or ask the center to re-export")
    return found


def sniff(path: Path) -> list[Sniffed]:
    path = Path(path)
    k = kind(path)
    if k == "sav":
        return [Sniffed(path, Source(path=path.name, format="sav"), ["SPSS system file"])]
    if k == "excel":
        return _sniff_excel(path)
    return [_sniff_text(path)]


def decode(path: Path) -> tuple[str, str, list[str]]:
    """(text, encoding, notes) of a text file; binary content raises InputError."""
    data = path.read_bytes()
    enc, notes = detect_encoding(data, path)
    return data.decode(enc).removeprefix("\ufeff"), enc, notes


def _sniff_text(path: Path) -> Sniffed:
    text, enc, notes = decode(path)
    head = text.splitlines()[:40]
    lines = [ln for ln in head if ln.strip()]
    if not lines:
        raise InputError(f"{path}: no data (only blank lines)")
    delim = _delimiter(lines)
    rows = list(csv.reader(io.StringIO("\n".join(head)), delimiter=delim))  # blank lines kept: numbering
    header_row = header_index(rows) + 1
    cells = [c.strip() for r in rows[header_row:] for c in r]
    comma = sum(bool(_DEC_COMMA.match(c)) for c in cells)
    point = sum(bool(_DEC_POINT.match(c)) for c in cells)
    decimal = "," if delim != "," and comma > point else "."
    header = [h.strip().lower() for h in rows[header_row - 1]]
    fmt = "redcap" if {"redcap_repeat_instrument", "redcap_event_name"} & set(header) else "csv"
    if not text.endswith(("\n", "\r")):
        notes.append("WARNING: the file does not end with a line break (cut short?)")
    notes = notes + [f"encoding {enc}", f"delimiter {_show(delim)}", f"decimal {_show(decimal)}",
                     f"header on line {header_row}"]
    if header and header[0] in DICTIONARY_HEADERS:
        fmt = "csv"
        notes.append("a REDCap data dictionary (pass it with --dictionary)")
    src = Source(path=path.name, format=fmt, encoding=enc, delimiter=delim, decimal=decimal,
                 header_row=header_row)
    return Sniffed(path, src, notes)


def is_dictionary(path: Path) -> bool:
    try:
        s = sniff(path)
    except InputError:
        return False
    return len(s) == 1 and any(n.startswith("a REDCap data dictionary") for n in s[0].notes)


def _show(c: str) -> str:
    return {"\t": "tab", ",": "',' (comma)", ";": "';' (semicolon)", ".": "'.' (point)", "|": "'|'"}[c]


def _delimiter(lines: list[str]) -> str:
    """The candidate giving the most rows with the same (>1) number of fields."""
    best, score = ",", (-1.0, 0)
    for d in DELIMITERS:
        counts = [len(r) for r in csv.reader(io.StringIO("\n".join(lines)), delimiter=d)]
        mode = max(set(counts), key=counts.count)
        if mode < 2:
            continue
        s = (counts.count(mode) / len(counts), mode)
        if s > score:
            best, score = d, s
    return best


def header_index(rows: list[list]) -> int:
    """0-based index of the header among the first rows: the first wide row of unique labels.

    Title rows above a header (a merged cell, an export date) are narrow; data rows
    below it hold numbers and dates.
    """
    width = max((sum(1 for c in r if _filled(c)) for r in rows[:15]), default=0)
    for i, r in enumerate(rows[:15]):
        filled = [str(c).strip() for c in r if _filled(c)]
        if len(filled) < max(1, 0.6 * width) or len(set(filled)) != len(filled):
            continue
        if all(isinstance(c, str) and not _NUMBER.match(c.strip()) for c in r if _filled(c)):
            return i
    return 0


def _filled(c) -> bool:
    return c is not None and not (isinstance(c, str) and not c.strip())


def _sniff_excel(path: Path) -> list[Sniffed]:
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
    except Exception as exc:
        raise InputError(f"{path}: not a readable Excel workbook ({_one_line(exc)})") from None
    out = []
    for sheet in book.sheet_names:
        try:
            rows = book.get_sheet_by_name(sheet).to_python(skip_empty_area=False, nrows=20)
        except TypeError:
            rows = book.get_sheet_by_name(sheet).to_python(skip_empty_area=False)[:20]
        if not any(_filled(c) for r in rows for c in r):
            continue
        h = header_index(rows) + 1
        notes = [f"sheet {sheet!r}", f"header on row {h}"]
        if h > 1:
            notes.append(f"{h - 1} title row(s) above the header")
        out.append(Sniffed(path, Source(path=path.name, format="excel", sheet=sheet, header_row=h), notes))
    if not out:
        raise InputError(f"{path}: every sheet is empty")
    return out


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]
