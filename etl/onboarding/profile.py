"""`carpool profile`: what is in an export carpool has never seen, column by column.

For each table in each file (every sheet of a workbook): how it was read (sniffed
encoding, delimiter, decimal, header row), and per column the inferred type, null share,
distinct count, min/max, top values, the date formats that parse, whether it looks like a
code needing a code list, and whether it is a probable DIRECT IDENTIFIER. Identifier
columns keep only counts and a value *shape* (`999-9999-9999`): their values never leave
this module, so no report can print them. REDCap exports are read with their data
dictionary (field labels, choices, checkbox `field___k` columns, repeating instruments).
"""
from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path

from etl.compile import convert
from etl.errors import InputError
from etl.onboarding.headers import CJK, CJK_CHARS, field_synonyms, identifier_kind, normalize, score
from etl.read.readers import ROW, read_source
from etl.read.sniff import DICTIONARY_HEADERS, Sniffed, decode, is_dictionary, sniff
from schemas.model import HERE as SCHEMA_DIR
from schemas.model import codelist

TOP = 5
CODE_MAX_DISTINCT = 20
DATE_TRIES = ["iso", "ymd_slash", "dmy", "mdy", "%d.%m.%Y", "%Y%m%d", "%Y-%m-%d %H:%M:%S"]
SERIAL_RANGE = (20000, 60000)        # Excel serial numbers for 1954..2064
_DATE_HINT = re.compile(r"date|day|dob|birth|日期|时间|_dt$", re.I)
_PATTERNS = {  # content patterns of direct identifiers (checked on text values), in any language
    "email": re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.I),
    "national_id": re.compile(r"^\d{17}[\dXx]$|^\d{3}-\d{2}-\d{4}$|^\d{6}-[1-8]\d{6}$"  # CN, US SSN, KR RRN
                              r"|^[A-Z]{6}\d{2}[A-EHLMPR-T]\d{2}[A-Z]\d{3}[A-Z]$"),           # IT codice fiscale
    "phone": re.compile(r"^(?=(?:\D*\d){9,15}\D*$)(\+|00|0|\()?[\d(][\d\s().\-/]{6,}\d$"),
    "mrn": re.compile(r"^(MRN|KIS|NHC|IPP|PID|HN|H|MR)[-\s#:]?\d{4,}$|^[A-Z]{0,3}[-\s]?\d{7,12}$", re.I),
}
_NAME_WORD = re.compile(r"^[^\W\d_]+(['’\-][^\W\d_]+)*\.?$")
_CJK_NAME = re.compile(f"^[{CJK_CHARS}]{{2,4}}$|^[{CJK_CHARS}]{{1,3}}[ \u3000·・][{CJK_CHARS}]{{1,4}}$")
_PARTICLES = {"van", "von", "der", "den", "de", "del", "della", "di", "da", "dos", "du", "la", "le", "y", "e", "bin"}
_DATE_VALUE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$")
TREATMENT_ERA = 2005   # CAR-T dates lie after this; a file's only date column before it holds births


@cache
def _clinical_words() -> frozenset[str]:
    """Words of the common code lists' codes and descriptions, and a few clinical words."""
    words = {"remission", "response", "disease", "relapse", "grade", "positive", "negative", "iv", "po",
             "yes", "no", "unknown", "not", "done", "male", "female", "none", "other", "missing"}
    for f in (SCHEMA_DIR / "codelists").glob("*.csv"):
        for row in codelist(f.stem):
            words.update(normalize(f"{row.get('code', '')} {row.get('description', '')}").split())
    return frozenset(w for w in words if len(w) > 1)


def looks_like_name(text: str) -> bool:
    """A person's name in any script: `Wang Wei`, `MÜLLER, Jürgen`, `José de la Peña`, `陳大文`, `김민준`."""
    t = " ".join(text.replace(",", " , ").split())
    if _CJK_NAME.match(t):
        return True
    words = [w for w in t.split() if w != ","]
    if not 2 <= len(words) <= 5 or t.count(",") > 1 or not all(_NAME_WORD.match(w) for w in words):
        return False
    if 2 * sum(normalize(w) in _clinical_words() for w in words) > len(words):
        return False  # `Complete Remission`, `Dexamethasone IV`: words of the common code lists
    capitals = [w for w in words if w.lower() not in _PARTICLES]
    return len(capitals) >= 2 and all(w[0].isupper() for w in capitals) and any(
        not w.isupper() for w in capitals) or (t.count(",") == 1 and all(w[0].isupper() for w in capitals))


@dataclass
class ColumnProfile:
    name: str
    label: str = ""
    instrument: str = ""            # REDCap: the (repeating) instrument whose rows hold it
    type: str = "empty"             # empty, integer, number, boolean, date, text
    rows: int = 0
    nulls: int = 0
    distinct: int = 0
    min: str | None = None
    max: str | None = None
    top: list[tuple[str, int]] = field(default_factory=list)
    date_formats: dict[str, float] = field(default_factory=dict)
    value_labels: dict[str, str] = field(default_factory=dict)
    code_like: bool = False
    identifier: str | None = None   # kind of direct identifier, e.g. "phone (header)"
    undeclared: list[str] = field(default_factory=list)  # values outside the declared choices
    shape: list[tuple[str, int]] = field(default_factory=list)

    @property
    def null_share(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0


@dataclass
class TableProfile:
    path: str
    name: str
    format: str
    source: dict                    # the `sources:` entry a mapping would use
    notes: list[str]
    rows: int
    columns: list[ColumnProfile]
    instruments: dict[str, int] = field(default_factory=dict)   # REDCap rows per instrument
    dictionary: str | None = None

    @property
    def identifiers(self) -> list[ColumnProfile]:
        return [c for c in self.columns if c.identifier]

    def to_dict(self) -> dict:
        d = asdict(self)
        for c, cd in zip(self.columns, d["columns"], strict=True):
            cd["null_share"] = round(c.null_share, 4)
        return d


def profile_paths(paths: list[Path], dictionary: Path | None = None) -> tuple[list[TableProfile], list[str]]:
    """Profile every path; a file that cannot be read gives one error line, not a stop."""
    tables, errors = [], []
    paths = [Path(p) for p in paths]
    found = {} if dictionary is not None else {
        p.parent.resolve(): p for p in paths if p.suffix.lower() == ".csv" and is_dictionary(p)}
    skip = {p.resolve() for p in found.values()}
    for p in paths:
        if p.resolve() in skip or (dictionary is not None and p.resolve() == Path(dictionary).resolve()):
            continue
        try:
            tables += profile_file(p, dictionary or found.get(p.parent.resolve()))
        except InputError as exc:
            errors.append(" ".join(str(exc).split()))
        except Exception as exc:  # a parser's surprise on a malformed file: still one line
            errors.append(f"{p}: cannot read ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})")
    return tables, errors


def profile_file(path: Path, dictionary: Path | None = None) -> list[TableProfile]:
    out = []
    for sn in sniff(path):
        if dictionary is not None and sn.source.format == "csv":
            sn = Sniffed(sn.path, sn.source.model_copy(update={"format": "redcap"}), sn.notes)
        out.append(profile_table(sn, dictionary))
    return out


def profile_table(sn: Sniffed, dictionary: Path | None = None) -> TableProfile:
    raw = read_source(sn.name, sn.source, sn.path.parent)
    frame = raw.frame.drop(columns=[ROW])
    labels, choices, forms, flagged = ({}, {}, {}, set())
    notes = list(sn.notes)
    if sn.source.format == "sav":
        labels = _sav_labels(sn.path)
    if dictionary is not None:
        labels, choices, forms, flagged = read_dictionary(Path(dictionary))
        notes.append(f"REDCap data dictionary {Path(dictionary).name}")
    source = sn.source.model_dump(exclude_defaults=True)
    source["path"] = str(sn.path)
    source["format"] = sn.source.format
    if dictionary is not None:
        source["dictionary"] = str(dictionary)
    inst_col = "redcap_repeat_instrument"
    instruments = {}
    if inst_col in frame.columns:
        counts = Counter(frame[inst_col].map(lambda v: "" if convert.is_missing(v) else str(v)))
        instruments = {k or "(base row)": n for k, n in counts.items()}
    cols = []
    for col in frame.columns:
        base = col.split("___")[0]
        label = labels.get(col) or labels.get(base, "")
        vlabels = dict(raw.value_labels.get(col, {})) or choices.get(base, {})
        if "___" in col and base in choices:
            label = f"{label}: {choices[base].get(col.split('___')[1], '?')}"
            vlabels = {"1": "checked", "0": "unchecked"}
        values = frame[col]
        inst = ""
        if instruments and col not in (inst_col, "redcap_repeat_instance", frame.columns[0]):
            inst = _instrument(frame, col, forms.get(base), inst_col)
            rows_of = frame[inst_col].map(lambda v: "" if convert.is_missing(v) else str(v))
            values = values[rows_of == inst]
        cp = profile_column(col, list(values), sn.source.decimal, label, vlabels)
        cp.instrument = inst
        if base in flagged and not cp.identifier:
            cp.identifier = "identifier (REDCap dictionary)"
            _hide(cp, list(values))
        cols.append(cp)
    _birth_dates(cols, frame)
    return TableProfile(str(sn.path), sn.name, sn.source.format, source, notes, len(frame), cols,
                        instruments, str(dictionary) if dictionary else None)


def _instrument(frame, col: str, form: str | None, inst_col: str) -> str:
    """The instrument whose rows hold the column: its form if repeating, else the base row."""
    present = frame.loc[frame[col].map(lambda v: not convert.is_missing(v)), inst_col]
    seen = {("" if convert.is_missing(v) else str(v)) for v in present}
    insts = {("" if convert.is_missing(v) else str(v)) for v in frame[inst_col]}
    if form is not None:
        return form if form in insts else ""
    return seen.pop() if len(seen) == 1 else ""


def profile_column(name: str, values: list, decimal: str = ".", label: str = "",
                   value_labels: dict | None = None) -> ColumnProfile:
    cp = ColumnProfile(name, label or "", rows=len(values))
    filled = [v for v in values if not convert.is_missing(v)]
    cp.nulls = len(values) - len(filled)
    keys = [_key(v) for v in filled]
    counts = Counter(keys)
    cp.distinct = len(counts)
    cp.value_labels = {_key(k): str(v) for k, v in (value_labels or {}).items()}
    kind = identifier_kind(name, label)
    if kind is None:
        kind = _content_identifier(filled, cp.distinct)
    else:
        kind = f"{kind} (header)"
    if kind:
        cp.identifier = kind
        _hide(cp, values)
        return cp
    if not filled:
        return cp
    cp.type, lo, hi = _infer(filled, decimal, name, cp)
    cp.min, cp.max = lo, hi
    cp.code_like = bool(cp.value_labels) or (
        cp.type in ("text", "boolean") and cp.distinct <= CODE_MAX_DISTINCT
        and cp.distinct <= max(2, len(filled) // 2)
        and not name.lower().startswith("redcap_") and score(field_synonyms()["local_id"], name, label) < 0.6)
    # a code list needs every observed code; other columns show a few frequent values
    cp.top = counts.most_common(CODE_MAX_DISTINCT if cp.code_like else TOP)
    if cp.value_labels:  # REDCap choices / SPSS value labels declare the codes: anything else is unknown
        cp.undeclared = sorted(k for k in counts if k not in cp.value_labels)
    return cp


def _hide(cp: ColumnProfile, values: list) -> None:
    """Keep only counts and value shapes of an identifier column."""
    filled = [v for v in values if not convert.is_missing(v)]
    cp.type = "date" if filled and all(isinstance(v, date) for v in filled) else "identifier"
    cp.min = cp.max = None
    cp.top, cp.date_formats, cp.value_labels = [], {}, {}
    cp.code_like = False
    cp.shape = Counter(_shape(v) for v in filled).most_common(3)


def _shape(v) -> str:
    if isinstance(v, datetime | date):
        return "(date)"
    s = _key(v)
    out = re.sub(r"[0-9]", "9", s)
    out = re.sub(r"[A-Z]", "A", out)
    out = re.sub(r"[a-z]", "a", out)
    out = CJK.sub("字", out)
    return re.sub(r"(.)\1{3,}", lambda m: f"{m.group(1)}{{{len(m.group(0))}}}", out)


def _content_identifier(filled: list, distinct: int) -> str | None:
    """The kind of identifier most values of a column look like (person names, phones,
    MRNs, national ids, e-mails), whatever the header says."""
    texts = [v.strip() for v in filled if isinstance(v, str)]
    if len(texts) < 3 or len(texts) < 0.8 * len(filled):
        return None
    undated = [t for t in texts if not _DATE_VALUE.match(t)]
    for kind, pattern in _PATTERNS.items():
        hits = sum(bool(pattern.match(t)) for t in undated)
        if hits >= 0.8 * len(texts) and (kind not in ("mrn", "phone") or distinct >= 0.5 * len(texts)):
            return f"{kind} (content)"
    names = sum(looks_like_name(t) for t in texts)
    if names >= 0.8 * len(texts) and distinct >= 0.7 * len(texts):
        return "name (content)"
    return None


def _key(v) -> str:
    if isinstance(v, datetime):
        return v.date().isoformat() if v.time() == datetime.min.time() else v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _infer(filled: list, decimal: str, name: str, cp: ColumnProfile) -> tuple[str, str | None, str | None]:
    if all(isinstance(v, datetime | date) for v in filled):
        ds = [v.date() if isinstance(v, datetime) else v for v in filled]
        cp.date_formats = {"native": 1.0}
        return "date", min(ds).isoformat(), max(ds).isoformat()
    nums = []
    for v in filled:
        try:
            nums.append(convert.parse_number(v, decimal))
        except ValueError:
            break
    lowered = {_key(v).lower() for v in filled}
    if lowered <= (convert.TRUE | convert.FALSE) and len(lowered) <= 2 and len(nums) < len(filled):
        return "boolean", None, None
    dates, parsed = _dates(filled, nums, name)
    cp.date_formats = dates
    if parsed and len(parsed) >= 0.9 * len(filled):
        return "date", min(parsed).isoformat(), max(parsed).isoformat()
    if len(nums) == len(filled):
        kind = "integer" if all(x.is_integer() for x in nums) else "number"
        fmt = (lambda x: str(int(x))) if kind == "integer" else (lambda x: f"{x:g}")
        return kind, fmt(min(nums)), fmt(max(nums))
    lengths = [len(_key(v)) for v in filled]
    return "text", f"{min(lengths)} chars", f"{max(lengths)} chars"


def _dates(filled: list, nums: list, name: str) -> tuple[dict[str, float], list[date]]:
    """Share of values each date format parses, and the dates any of them gives."""
    shares, parsed = {}, {}
    hint = bool(_DATE_HINT.search(name))
    for fmt in DATE_TRIES + ["excel_serial"]:
        ok = 0
        for i, v in enumerate(filled):
            if fmt == "excel_serial":
                if isinstance(v, str) or not hint:
                    continue
                if not (isinstance(v, int | float) and SERIAL_RANGE[0] <= v <= SERIAL_RANGE[1]):
                    continue
            elif not isinstance(v, str):
                continue
            try:
                d = convert.parse_date(v, [fmt])
            except (ValueError, KeyError):
                continue
            ok += 1
            parsed.setdefault(i, d)
        if ok:
            shares[fmt] = round(ok / len(filled), 4)
    return shares, list(parsed.values())


def _birth_dates(cols: list[ColumnProfile], frame) -> None:
    """A date column whose dates lie decades before the file's other dates: birth dates."""
    dated = [c for c in cols if c.type == "date" and c.min and not c.identifier]
    for c in dated:
        others = [int(o.max[:4]) for o in dated if o is not c] or [TREATMENT_ERA + 12]
        if int(c.max[:4]) < min(others) - 12:
            c.identifier = "birth_date (content: dates decades before the others)"
            _hide(c, list(frame[c.name]))
            c.type = "date"


def _sav_labels(path: Path) -> dict[str, str]:
    import pyreadstat

    try:
        _, meta = pyreadstat.read_sav(str(path), metadataonly=True)
    except Exception:
        return {}
    return {k: v for k, v in meta.column_names_to_labels.items() if v}


def read_dictionary(path: Path) -> tuple[dict, dict, dict, set]:
    """REDCap data dictionary -> (labels, choices, form of each field, identifier fields)."""
    text, _, _ = decode(path)
    rows = list(csv.reader(text.splitlines()))
    if not rows or rows[0][0].strip().lower() not in DICTIONARY_HEADERS:
        raise InputError(f"{path}: not a REDCap data dictionary (first column should be "
                         "'Variable / Field Name')")
    labels, choices, forms, flagged = {}, {}, {}, set()
    for r in rows[1:]:
        if len(r) < 6 or not r[0].strip():
            continue
        name, form, ftype, label = r[0].strip(), r[1].strip(), r[3].strip(), re.sub("<[^>]+>", "", r[4]).strip()
        labels[name], forms[name] = label, form
        if ftype == "yesno":
            choices[name] = {"1": "Yes", "0": "No"}
        elif ftype in ("radio", "dropdown", "checkbox") and r[5].strip():
            pairs = [c.split(",", 1) for c in r[5].split("|") if "," in c]
            choices[name] = {k.strip(): v.strip() for k, v in pairs}
        if len(r) > 10 and r[10].strip().lower() == "y":
            flagged.add(name)
        if len(r) > 7 and r[7].strip() in ("phone", "email"):
            flagged.add(name)
    return labels, choices, forms, flagged
