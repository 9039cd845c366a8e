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

import _sre
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from re._casefix import _EXTRA_CASES

import pandas as pd

MASK = "***"
SHORT = 4            # below this length an identifier is matched as a whole token only
DIGITS_MIN = 7       # phone/MRN numbers matched by their digits whatever the separators
ID_COLUMN = "local_id"


class _Fold(dict):
    """Code point -> one representative of its case class as `re.IGNORECASE` sees it
    (simple lower case, plus the extra equivalences of `re._casefix`), for `str.translate`."""

    def __missing__(self, cp: int) -> int:
        low = _sre.unicode_tolower(cp)
        self[cp] = min((low, *_EXTRA_CASES.get(low, ())))
        return self[cp]


_FOLD = _Fold()
GRAM = 4             # identifiers of this length or more are indexed by their first GRAM folded characters


class _Index:
    """Which of many strings occur in a text: a necessary condition, checked in time linear in
    the text (prefix lookups), so the costly exact test runs only on the few texts that pass."""

    def __init__(self, needles: Iterable[str], gram: int):
        self.gram, self.long, self.short = gram, {}, {}
        for i, n in enumerate(needles):
            if len(n) >= gram:
                self.long.setdefault(n[:gram], []).append((i, n))
            elif n:
                self.short.setdefault(len(n), {}).setdefault(n, []).append(i)

    def hits(self, text: str) -> list[int]:
        """Indexes (in needle order) of the needles that are substrings of `text`."""
        out = set()
        g, long, short = self.gram, self.long, self.short
        for i in range(len(text)):
            for k, n in long.get(text[i:i + g], ()):
                if text.startswith(n, i):
                    out.add(k)
            for size, table in short.items():
                out.update(table.get(text[i:i + size], ()))
        return sorted(out)


class IdentifierMatcher:
    """Finds any of one site's identifier values inside a text."""

    def __init__(self, identifiers: Iterable[str]):
        values = {str(v).strip() for v in identifiers if v is not None and str(v).strip()}
        values = {v for v in values if v != MASK}
        # a short Latin identifier (`Bo`) only as a whole token; a short CJK one (`赵勇秀`) has
        # no word boundaries around it in `CR赵勇秀`, so it is matched anywhere
        long = sorted((v for v in values if len(v) >= SHORT or not v.isascii()), key=lambda v: (-len(v), v))
        short = sorted((v for v in values if len(v) < SHORT and v.isascii()), key=lambda v: (-len(v), v))
        self._parts = [re.escape(v) for v in long] + [rf"(?<!\w){re.escape(v)}(?!\w)" for v in short]
        self._pattern = None     # compiled on first use: thousands of names take a while
        self._names = _Index([v.translate(_FOLD) for v in long + short], GRAM)
        digits = {re.sub(r"\D", "", v) for v in values}
        self.digits = sorted((d for d in digits if len(d) >= DIGITS_MIN), key=lambda d: (-len(d), d))
        self._loose: dict[str, re.Pattern] = {}
        self._numbers = _Index(self.digits, DIGITS_MIN)

    @property
    def pattern(self) -> re.Pattern | None:
        if self._pattern is None and self._parts:
            self._pattern = re.compile("|".join(self._parts), re.IGNORECASE)
        return self._pattern

    def _may_name(self, text: str) -> bool:
        return bool(self._parts) and bool(self._names.hits(text.translate(_FOLD)))

    def found_in(self, text: str) -> bool:
        if not text:
            return False
        if self._may_name(text) and self.pattern.search(text):
            return True
        return bool(self.digits) and bool(self._numbers.hits(_NON_DIGIT.sub("", text)))

    def mask(self, text: str) -> str:
        """`text` with every identifier replaced by `***` (a number by its digit run)."""
        if not text:
            return text
        if self._may_name(text):
            text = self.pattern.sub(MASK, text)
        if not self.digits:
            return text
        todo = self._numbers.hits(_NON_DIGIT.sub("", text))
        while todo:  # each number in turn, as one re.sub per number would (a number absent is a no-op)
            k = todo.pop(0)
            d = self.digits[k]
            if d not in self._loose:
                self._loose[d] = re.compile(r"\D{0,3}".join(re.escape(c) for c in d))
            text, n = self._loose[d].subn(MASK, text)
            if n:   # the text changed: later numbers are looked for in what is left
                todo = [j for j in self._numbers.hits(_NON_DIGIT.sub("", text)) if j > k]
        return text


_NON_DIGIT = re.compile(r"\D")


@lru_cache(maxsize=8)
def _matcher(identifiers: frozenset[str]) -> IdentifierMatcher:
    return IdentifierMatcher(identifiers)


def matcher_for(identifiers: Iterable[str]) -> IdentifierMatcher:
    """One matcher per set of identifiers: a site's steps share it (its index takes a while)."""
    return _matcher(frozenset(str(v) for v in identifiers if v is not None))


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
    matcher = matcher_for(identifiers)
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
    return _shorten(q)


def _shorten(q: pd.DataFrame) -> pd.DataFrame:
    """An oversized value (longer than rule CELL_TOO_LONG's limit: a pasted document) is shown
    by its start only, in `value` and in the message, whatever rule the record is under."""
    from schemas.catalog import catalog
    from schemas.cell_limits import RULE, shown

    limit = int(catalog()[RULE].limit)
    for i in q.index[q["value"].str.len() > limit]:
        raw = q.at[i, "value"]
        q.at[i, "message"] = q.at[i, "message"].replace(repr(raw), repr(shown(raw))).replace(raw, shown(raw))
        q.at[i, "value"] = shown(raw)
    return q
