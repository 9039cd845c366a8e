"""Bounds checked on an Excel workbook *before* a reader opens it.

Regression (issue 15): an XLSX whose used range reaches XFD1048576 aborted the process;
calamine sized its cell grid from the sheet's declared `<dimension>` and tried to
allocate about 512 GB. An .xlsx is a zip of XML parts, so each sheet's declared range
(and the uncompressed size of its XML) can be read cheaply from the head of its part,
without reading any cells. A sheet over the limits is an `InputError` naming the file,
the sheet and what to do, never a crash.
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree as ET

from etl.errors import InputError

MAX_CELLS = 30_000_000             # declared rows x columns a reader may allocate
MAX_PART_BYTES = 2 * 1024 ** 3     # uncompressed XML of one sheet
MAX_RATIO = 200                    # uncompressed : compressed, for parts over 100 MB (zip bombs)
REF = re.compile(r"^\$?([A-Z]{1,3})\$?(\d+)(?::\$?([A-Z]{1,3})\$?(\d+))?$")
NS = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
      "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
      "p": "http://schemas.openxmlformats.org/package/2006/relationships"}


def check_workbook(path: Path, sheet: str | None = None) -> None:
    """Raise InputError when `sheet` (default: every sheet) declares more cells than a reader
    should allocate, or its XML is too large. Non-zip workbooks (.xls, .ods) are not checked."""
    if not zipfile.is_zipfile(path):
        return
    with zipfile.ZipFile(path) as zf:
        for name, part in _sheet_parts(zf).items():
            if sheet is not None and name != sheet:
                continue
            try:
                info = zf.getinfo(part)
            except KeyError:
                continue
            where = f"{path} [{name}]"
            if info.file_size > MAX_PART_BYTES or (
                    info.file_size > 100 * 1024 ** 2 and info.file_size > MAX_RATIO * max(info.compress_size, 1)):
                raise InputError(f"{where}: the sheet's XML unpacks to {info.file_size:,} bytes "
                                 f"(limit {MAX_PART_BYTES:,}, or a zip bomb): export it as CSV instead")
            ref = _dimension(zf, part)
            cells = _cells(ref) if ref else 0
            if cells > MAX_CELLS:
                raise InputError(f"{where}: the sheet declares a used range of {ref} ({cells:,} cells, limit "
                                 f"{MAX_CELLS:,}): delete the empty rows and columns after the data and save "
                                 "again, or export the sheet as CSV")


def _sheet_parts(zf: zipfile.ZipFile) -> dict[str, str]:
    """{sheet name: zip part} from xl/workbook.xml and its relationships."""
    try:
        book = ET.fromstring(zf.read("xl/workbook.xml"))
        rels = ET.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, ET.ParseError):
        return {}
    targets = {r.get("Id"): r.get("Target", "") for r in rels.findall("p:Relationship", NS)}
    out = {}
    for s in book.iterfind("m:sheets/m:sheet", NS):
        target = targets.get(s.get(f"{{{NS['r']}}}id"), "")
        part = target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)
        out[s.get("name", "")] = part
    return out


def _dimension(zf: zipfile.ZipFile, part: str) -> str | None:
    """The `<dimension ref=...>` of a sheet part, read from its head (stops at the cells)."""
    with zf.open(part) as fh:
        try:
            for _event, elem in ET.iterparse(fh, events=("start",)):
                tag = elem.tag.rsplit("}", 1)[-1]
                if tag == "dimension":
                    return elem.get("ref")
                if tag == "sheetData":
                    return None
        except ET.ParseError:
            return None
    return None


def _cells(ref: str) -> int:
    m = REF.match(ref.strip().upper())
    if not m:
        return 0
    c1, r1, c2, r2 = m.group(1), int(m.group(2)), m.group(3) or m.group(1), int(m.group(4) or m.group(2))
    return (abs(_col(c2) - _col(c1)) + 1) * (abs(r2 - r1) + 1)


def _col(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n
