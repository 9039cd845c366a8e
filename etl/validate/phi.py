"""Keep direct identifiers out of the quarantine: mask values that contain one, hash local ids.

Every quarantine record is shown to people (validation HTML, quarantine.csv) and loaded
into the warehouse, so a record must never carry a name, MRN, phone or birth date, nor the
center's own patient id:
- `value` is replaced by `***` when it contains any identifier value of the site: as a
  substring for identifiers of 4 characters or more and for non-Latin ones (a 3-character
  Chinese name), as a whole token for short Latin ones (a 2-letter name), and by digit
  sequence for numbers of 7+ digits written with other separators (`170-0000-5666` in
  `+86 17000005666`);
- the same identifiers are masked inside `message`;
- a record about the patient id itself (`column_name = local_id`, e.g. ORPHAN_ROW) shows
  the id's keyed hash (the `study_id` it would get), never the id.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import pandas as pd

MASK = "***"
SHORT = 4            # below this length an identifier is matched as a whole token only
DIGITS_MIN = 7       # phone/MRN numbers matched by their digits whatever the separators
ID_COLUMN = "local_id"


class IdentifierMatcher:
    """Finds any of one site's identifier values inside a text."""

    def __init__(self, identifiers: Iterable[str]):
        values = {str(v).strip() for v in identifiers if v is not None and str(v).strip()}
        values = {v for v in values if v != MASK}
        # a short Latin identifier (`Bo`) only as a whole token; a short CJK one (`赵勇秀`) has
        # no word boundaries around it in `CR赵勇秀`, so it is matched anywhere
        long = sorted((v for v in values if len(v) >= SHORT or not v.isascii()), key=len, reverse=True)
        short = sorted((v for v in values if len(v) < SHORT and v.isascii()), key=len, reverse=True)
        parts = [re.escape(v) for v in long] + [rf"(?<!\w){re.escape(v)}(?!\w)" for v in short]
        self.pattern = re.compile("|".join(parts), re.IGNORECASE) if parts else None
        digits = {re.sub(r"\D", "", v) for v in values}
        self.digits = sorted((d for d in digits if len(d) >= DIGITS_MIN), key=len, reverse=True)

    def found_in(self, text: str) -> bool:
        if not text:
            return False
        if self.pattern is not None and self.pattern.search(text):
            return True
        if self.digits:
            have = re.sub(r"\D", "", text)
            return any(d in have for d in self.digits)
        return False

    def mask(self, text: str) -> str:
        """`text` with every identifier replaced by `***` (a number by its digit run)."""
        if not text:
            return text
        if self.pattern is not None:
            text = self.pattern.sub(MASK, text)
        for d in self.digits:
            loose = r"\D{0,3}".join(re.escape(c) for c in d)
            text = re.sub(loose, MASK, text)
        return text


def mask_quarantine(q: pd.DataFrame, identifiers: Iterable[str],
                    hash_id: Callable[[str], str] | None = None) -> pd.DataFrame:
    """Quarantine records with identifiers masked in `value` and `message`; with `hash_id`,
    a value that is the patient id (`column_name = local_id`) becomes its keyed hash, and the
    records' `local_id` column becomes `study_id`, the patient's pseudonym (NULL where the
    record names no patient)."""
    q = q.copy()
    if hash_id is not None and ID_COLUMN in q.columns:
        hashed: dict[str, str] = {}
        lids = q.pop(ID_COLUMN)
        q.insert(min(1, len(q.columns)), "study_id", pd.Series(
            [hashed.setdefault(v, hash_id(v)) if isinstance(v, str) and v else None for v in lids],
            index=q.index, dtype=object))
    if q.empty:
        return q
    matcher = IdentifierMatcher(identifiers)
    values = q["value"].fillna("").astype(str)
    messages = q["message"].fillna("").astype(str)
    if hash_id is not None:
        is_id = q["column_name"].eq(ID_COLUMN) & values.ne("") & values.ne(MASK)
        for i in q.index[is_id]:
            raw, hashed = values[i], hash_id(values[i])
            messages[i] = messages[i].replace(repr(raw), repr(hashed)).replace(raw, hashed)
            values[i] = hashed
    hit = values.map(matcher.found_in)
    q["value"] = values.where(~hit, MASK)
    q["message"] = messages.map(matcher.mask)
    return q
