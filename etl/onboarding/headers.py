"""Header matching against the synonym lists in `etl/onboarding/synonyms.yml` (data, not code).

`normalize` turns a header or label into lower-case words in any script (accents dropped
from Latin letters; Chinese, Japanese and Korean kept as is);
`score` says how well a synonym list fits a header and its label (0..1);
`identifier_kind` names the kind of direct identifier a header announces, if any.
"""
from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path

import yaml

SYNONYMS = Path(__file__).with_name("synonyms.yml")
# Chinese, Japanese and Korean script (ideographs, kana, hangul), for character classes:
# words in these scripts are not separated by spaces, so their synonyms match as substrings.
CJK_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
CJK = re.compile(f"[{CJK_CHARS}]")
_SPLIT = re.compile(r"[^\w%()]+|_+")


@cache
def synonyms() -> dict:
    return yaml.safe_load(SYNONYMS.read_text(encoding="utf-8"))


def normalize(text: str | None) -> str:
    """`Bone-Marrow_Blasts (%)` -> `bone marrow blasts (%)`; camelCase split; `Teléfono` ->
    `telefono`; any other script kept."""
    if not text:
        return ""
    s = re.sub(r"([a-z])([A-Z])", r"\1 \2", _unaccent(str(text))).lower()
    s = s.replace("car-t", "car t")
    return " ".join(w for w in _SPLIT.split(s) if w)


def _unaccent(text: str) -> str:
    """Drop the accents of Latin letters (é -> e, ü -> u); other scripts unchanged."""
    out = []
    for ch in text:
        base = unicodedata.normalize("NFKD", ch)
        out.append(base[0] if ch.isalpha() and base[0].isascii() and len(base) > 1 else ch)
    return "".join(out)


def _words(s: str) -> list[str]:
    return re.sub(r"[()%]", " ", s).split()


def match(synonym: str, header: str) -> float:
    """0..1: 1 = equal; less when the synonym is only part of the header."""
    syn, head = normalize(synonym), normalize(header)
    if not syn or not head:
        return 0.0
    if syn == head or _words(syn) == _words(head):
        return 1.0
    if CJK.search(syn):
        return 0.5 + 0.5 * len(syn) / len(head) if syn in head else 0.0
    sw, hw = _words(syn), _words(head)
    n = len(sw)
    if any(hw[i:i + n] == sw for i in range(len(hw) - n + 1)):
        return 0.5 + 0.5 * len(" ".join(sw)) / len(" ".join(hw))
    return 0.0


def score(names: list[str], header: str, label: str | None = None) -> float:
    """Best fit of any synonym to the header or to its label (a label counts a little less)."""
    best = max((match(s, header) for s in names), default=0.0)
    if label:
        best = max(best, 0.95 * max((match(s, label) for s in names), default=0.0))
    return best


def identifier_kind(header: str, label: str | None = None) -> str | None:
    """`name`, `mrn`, `phone`, `birth_date`, `national_id`, `contact`, or None."""
    syn = synonyms()
    if normalize(header).startswith("redcap"):
        return None
    best, kind = 0.0, None
    for text, weight in ((header, 1.0), (label, 0.95)):
        if not text or set(_words(normalize(text))) & set(syn["not_identifier_words"]):
            continue
        for k, names in syn["identifiers"].items():
            s = weight * max(match(n, text) for n in names)
            if s > best:
                best, kind = s, k
    return kind if best >= 0.6 else None


def field_synonyms() -> dict[str, list[str]]:
    return synonyms()["fields"]
