"""Excel cells whose value the reader cannot trust: error cells and formulas with no saved result.

calamine (and pandas) read `#N/A`, `#VALUE!`, `#DIV/0!` ... and a formula cell the writing
program never calculated as an empty cell, so a `#VALUE!` death date would load the patient
as alive. This module looks at the sheet's XML itself (xlsx/xlsm are zip files of XML) and
lists those cells by sheet row and column, for rules EXCEL_ERROR_CELL and
EXCEL_UNCACHED_FORMULA. It streams the XML, so a huge sheet costs time, not memory.
"""
from __future__ import annotations

import posixpath
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import iterparse

NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
CELL_REF = re.compile(r"([A-Z]+)(\d+)")


@dataclass(frozen=True)
class BadCell:
    row: int          # sheet row as Excel shows it
    col: int          # 0-based column index
    rule_id: str      # EXCEL_ERROR_CELL | EXCEL_UNCACHED_FORMULA
    shown: str        # the error text (`#N/A`) or the formula (`=A1/0`)


def bad_cells(path: Path, sheet: str) -> list[BadCell]:
    """Error cells and formula cells without a cached value on one sheet ([] for non-zip workbooks)."""
    if not zipfile.is_zipfile(path):
        return []  # legacy .xls: calamine reports its error cells itself
    with zipfile.ZipFile(path) as z:
        member = _sheet_member(z, sheet)
        if member is None:
            return []
        if not _may_hold_bad_cells(z, member):
            return []
        out = []
        with z.open(member) as fh:
            for _, el in iterparse(fh, events=("end",)):
                if el.tag != f"{NS}c":
                    if el.tag == f"{NS}row":
                        el.clear()
                    continue
                ref = CELL_REF.fullmatch(el.get("r", ""))
                formula = el.find(f"{NS}f")
                value = el.find(f"{NS}v")
                has_value = value is not None and (value.text or "") != ""
                if ref and el.get("t") == "e":
                    out.append(BadCell(int(ref[2]), _col(ref[1]), "EXCEL_ERROR_CELL",
                                       (value.text if value is not None else "") or "#ERROR"))
                elif ref and formula is not None and not has_value and el.get("t") != "str":
                    out.append(BadCell(int(ref[2]), _col(ref[1]), "EXCEL_UNCACHED_FORMULA",
                                       "=" + (formula.text or "(shared formula)")))
        return out


MAYBE_BAD = re.compile(rb"""\st\s*=\s*["']e["']|<(?:[\w.-]+:)?f[\s>/]""")
CHUNK = 1 << 22


def _may_hold_bad_cells(z: zipfile.ZipFile, member: str) -> bool:
    """Does the sheet's XML hold any error-typed cell (t="e") or formula (<f>) at all? A byte
    scan, so the XML parse (seconds for a large sheet) runs only for sheets that may have one."""
    tail = b""
    with z.open(member) as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            if MAYBE_BAD.search(tail + chunk):
                return True
            tail = chunk[-64:]
    return False


def _col(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def _sheet_member(z: zipfile.ZipFile, sheet: str) -> str | None:
    try:
        with z.open("xl/workbook.xml") as fh:
            rid = next((el.get(f"{REL_NS}id") for _, el in iterparse(fh)
                        if el.tag == f"{NS}sheet" and el.get("name") == sheet), None)
        with z.open("xl/_rels/workbook.xml.rels") as fh:
            target = next((el.get("Target") for _, el in iterparse(fh)
                           if el.tag == f"{PKG_REL}Relationship" and el.get("Id") == rid), None)
    except KeyError:
        return None
    if target is None:
        return None
    member = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
    return member if member in z.namelist() else None
