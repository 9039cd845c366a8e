"""Which text encoding an export is in: byte-order marks, UTF-8, UTF-16 without a BOM, and
otherwise charset-normalizer (Big5, GBK/GB18030, Shift-JIS, EUC-KR, the Windows code pages).

A wrong guess here is a privacy problem, not only a cosmetic one: a Big5 file read as
cp1252 turns `陳大文` into `³¯¤j¤å`, which no identifier rule recognizes and which decodes
straight back. So the guess is checked (the whole file must decode) and reported in the
profile's notes; a mapping's `encoding:` always overrides it.
"""
from __future__ import annotations

from pathlib import Path

from etl.errors import InputError

BOMS = [(b"\xef\xbb\xbf", "utf-8", "UTF-8 byte-order mark"),
        (b"\xff\xfe\x00\x00", "utf-32", "UTF-32 LE byte-order mark"),
        (b"\x00\x00\xfe\xff", "utf-32", "UTF-32 BE byte-order mark"),
        (b"\xff\xfe", "utf-16", "UTF-16 LE byte-order mark"),
        (b"\xfe\xff", "utf-16", "UTF-16 BE byte-order mark")]
# single-byte Western code pages charset-normalizer may rank above cp1252 on short Latin text
_WESTERN = ("cp125", "iso8859", "latin", "mac_", "cp8", "cp4", "cp7")
SAMPLE = 4096


def detect_encoding(data: bytes, path: Path | str = "") -> tuple[str, list[str]]:
    """(Python codec name, notes). Raises InputError for binary content or an undecodable file."""
    for bom, enc, note in BOMS:
        if data.startswith(bom):
            _check(data, enc, path)
            return enc, [f"{note} (ignored)"]
    utf16 = _utf16_without_bom(data[:SAMPLE])
    if utf16:
        _check(data, utf16, path)
        return utf16, [f"{utf16.upper()} without a byte-order mark"]
    if b"\x00" in data[:SAMPLE]:
        raise InputError(f"{path}: looks like a binary file, not CSV text")
    try:
        data.decode("utf-8")
        return "utf-8", []
    except UnicodeDecodeError:
        pass
    return _guess(data, path), []


def _utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 text without a BOM: mostly-ASCII text has a NUL in every other byte."""
    if len(head) < 4:
        return None
    even, odd = head[0::2], head[1::2]
    nul_even, nul_odd = even.count(0) / len(even), odd.count(0) / len(odd)
    if nul_odd > 0.1 and nul_even < 0.02:
        return "utf-16-le"
    if nul_even > 0.1 and nul_odd < 0.02:
        return "utf-16-be"
    return None


def _guess(data: bytes, path: Path | str) -> str:
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise InputError(f"{path}: not text in any known encoding (binary, or a damaged export)")
    best = matches[0].encoding
    if best.startswith(_WESTERN) and any(m.encoding == "cp1252" for m in matches):
        best = "cp1252"  # the code page Excel on Western Windows writes; latin-1 when nothing differs
        if not any(0x80 <= b <= 0x9F for b in data):
            best = "latin-1"
    _check(data, best, path)
    return best


def wide(enc: str) -> bool:
    """UTF-16/32: NUL bytes are text, not a sign of a binary file."""
    return enc.lower().replace("_", "-").startswith(("utf-16", "utf-32", "utf16", "utf32"))


def _check(data: bytes, enc: str, path: Path | str) -> None:
    try:
        text = data.decode(enc)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not valid {enc} at byte {exc.start} (set `encoding:` for this source)") from None
    bad = sum(1 for ch in text[:SAMPLE] if ord(ch) < 32 and ch not in "\t\r\n\f")
    if bad > 0.01 * min(len(text), SAMPLE) + 1:
        raise InputError(f"{path}: looks like a binary file, not CSV text (control characters as {enc})")
