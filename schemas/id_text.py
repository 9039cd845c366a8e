"""Rule ID_CONFUSABLE: a patient id must be plain text that cannot pass for another id.

Caught: invisible format characters (bidi controls such as U+202E, zero-width spaces,
BOM: unicodedata category Cf), other control characters, letters of two scripts in one
id (Latin with Cyrillic or Greek), and a Cyrillic/Greek lookalike of a Latin id (`А0001`
with a Cyrillic А). An id wholly in one non-Latin script (e.g. `ПАЦ-1`) is fine. The
finding names the character by its Unicode name, never echoing the id.
"""
from __future__ import annotations

import unicodedata

import pandas as pd

from schemas.catalog import Finding, finding

RULE = "ID_CONFUSABLE"
COLUMN = "local_id"
# Cyrillic and Greek capitals and small letters that render like Latin ones.
LOOKALIKE = set("АВЕКМНОРСТХУІЈЅаеорсхуіјѕԁһԛԝΑΒΕΖΗΙΚΜΝΟΡΤΥΧνοϲ")


def _script(ch: str) -> str | None:
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    for script in ("LATIN", "CYRILLIC", "GREEK"):
        if name.startswith(script):
            return script
    return "OTHER"


def problem(text: str) -> str | None:
    """Why `text` is not a safe id (naming the character), or None."""
    if text.isascii() and text.isprintable():
        return None     # printable ASCII: no invisible character, Latin letters only
    for ch in text:
        cat = unicodedata.category(ch)
        if cat in ("Cf", "Cc", "Zl", "Zp") or (cat == "Zs" and ch != " "):
            return f"the invisible character U+{ord(ch):04X} {unicodedata.name(ch, 'control')}"
    scripts = {s for s in map(_script, text) if s}
    if "LATIN" in scripts and scripts & {"CYRILLIC", "GREEK"}:
        ch = next(c for c in text if _script(c) in ("CYRILLIC", "GREEK"))
        return f"U+{ord(ch):04X} {unicodedata.name(ch)} among Latin letters"
    if scripts and scripts <= {"CYRILLIC", "GREEK"} and all(c in LOOKALIKE for c in text if c.isalpha()):
        ch = next(c for c in text if c.isalpha())
        return f"U+{ord(ch):04X} {unicodedata.name(ch)}, which looks like a Latin letter"
    return None


def id_text_findings(tables: dict[str, pd.DataFrame]) -> list[Finding]:
    out: list[Finding] = []
    for name, frame in tables.items():
        if COLUMN not in frame.columns:
            continue
        for rid, lid in zip(frame["_row_id"], frame[COLUMN], strict=True):
            why = problem(lid) if isinstance(lid, str) else None
            if why:
                out.append(finding(RULE, name, int(rid), COLUMN, lid, local_id=lid, detail=why))
    return out
