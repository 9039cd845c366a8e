"""`carpool scaffold`: a first draft of `sites/<new>/mapping.yml` and its code lists.

The draft is for a person to review, not to trust. From the profile of the export
(`etl.onboarding.profile`) it writes:
- `sources:` with the sniffed encoding, delimiter, decimal, sheet and header row;
- `identifiers:` with every probable direct identifier (dropped, never loaded);
- per common-schema table, the source columns matched to its fields by header/label
  similarity (`etl/onboarding/synonyms.yml`: English, abbreviations, Chinese, REDCap labels) and by
  content (a date for a date field, a code for a code-list field); REDCap repeating
  instruments get a `where:` on `redcap_repeat_instrument`, checkbox fields whose choices
  are codes a `melt:` group per choice;
- `codes/<field>.csv` for code-list fields: every observed source value and every choice
  the REDCap dictionary (or SPSS value labels) declares; `target_value` is the common code
  when the value or its label IS one (`Male` -> `M`), else `TODO`; a value outside the
  declared choices is `TODO` with a note, never an empty target that would read as missing;
- a per-row grading-scale column becomes `source_scale: {from: ..., codes: ...}`; without
  one, source_scale is a TODO (the scaffold never assumes a scale);
- units read from labels (`Body weight (kg)`, `IL-6 [pg/mL]`) as `unit:`;
- a `# TODO` comment for every required field still unmapped and every REDCap checkbox
  option no melt group handles.
The draft parses with `etl.compile.mapping.load_mapping`; `carpool validate` refuses it while
any TODO is left (`etl.onboarding.todos`).
"""
from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter
from pathlib import Path

import yaml

from etl.compile import convert
from etl.config import SITE_ID
from etl.errors import InputError, UsageError
from etl.onboarding.headers import field_synonyms, normalize, score
from etl.onboarding.profile import ColumnProfile, TableProfile, profile_paths
from schemas.model import Column, codelist, codes, common_schema

THRESHOLD = 0.6
# filled by carpool itself (etl/compile/harmonize.py) or by the lab unit logic: never drafted
AUTOMATIC = {"site_id", "grade_astct", "grade_method", "dex_equiv_mg", "source_value", "source_unit"}
HINTS = {"infusion.product": "{value: CD19_41BB}? (a constant when the export has no product column)",
         "toxicity.source_scale": "no per-row scale column found. Ask the center which scale each grade "
                                  "is on; only if it is ONE scale for every row, write {value: <code>} (codes: "
                                  + ", ".join(codes("grading_scale")) + ")",
         "toxicity.tox_type": "{value: CRS} in a melt group, or a column with CRS/ICANS",
         "patient.age_years": "{derive: age_at_infusion} (needs identifiers.birth_date)"}
INSTRUMENT = "redcap_repeat_instrument"


def scaffold(paths: list[Path], site_id: str, sites_dir: Path, dictionary: Path | None = None,
             force: bool = False) -> tuple[list[Path], list[str]]:
    if not SITE_ID.match(site_id):
        raise UsageError(f"site id {site_id!r} must match {SITE_ID.pattern} (lower-case, digits, _)")
    site_dir = Path(sites_dir) / site_id
    mapping_path = site_dir / "mapping.yml"
    if mapping_path.exists() and not force:
        raise UsageError(f"{mapping_path} exists; scaffold never overwrites a mapping (use --force)")
    tables, errors = profile_paths(paths, dictionary)
    if errors:
        raise InputError(errors[0])
    if not tables:
        raise UsageError("no export file to scaffold from")
    draft = Draft(site_id, site_dir, tables)
    text, code_lists = draft.render()
    site_dir.mkdir(parents=True, exist_ok=True)
    written = [mapping_path]
    mapping_path.write_text(text, encoding="utf-8")
    for rel, rows in code_lists.items():
        path = site_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["source_value", "target_value", "source_label", "count", "note"])
            w.writerows(rows)
        written.append(path)
    return written, draft.todos


class Draft:
    """Matches one export's columns to the common schema and renders the YAML text."""

    def __init__(self, site_id: str, site_dir: Path, tables: list[TableProfile]):
        self.site_id, self.site_dir = site_id, site_dir.resolve()
        self.sources = _unique_names(tables)
        self.schema = common_schema()
        self.todos: list[str] = []
        self.code_lists: dict[str, list] = {}
        self.melted: set[str] = set()   # checkbox columns some melt group handles

    # -- matching -----------------------------------------------------------------------
    def candidates(self, tp: TableProfile, tname: str) -> list[tuple[float, str, ColumnProfile]]:
        """(score, target, column) for every plausible pair, best first."""
        syn = field_synonyms()
        out = []
        targets = [c for c in self.schema[tname].columns if c.name not in AUTOMATIC]
        for cp in _usable(tp):
            for col in targets:
                names = syn.get(f"{tname}.{col.name}") or syn.get(col.name) or []
                s = score(names, cp.name, cp.label) * _compat(col, cp)
                if s >= THRESHOLD:
                    out.append((s, col.name, cp))
            if tname == "lab":
                s = score(syn["lab.unit_from"], cp.name, cp.label) * (1.0 if cp.type == "text" else 0.4)
                if s >= THRESHOLD:
                    out.append((s, "unit_from", cp))
        return sorted(out, key=lambda x: -x[0])

    def assign(self, tp: TableProfile, tname: str) -> tuple[dict[str, ColumnProfile], dict[str, list[str]]]:
        chosen, used, also = {}, set(), {}
        for _score, target, cp in self.candidates(tp, tname):
            if target in chosen:
                if cp.name not in used and cp.name != chosen[target].name:
                    also.setdefault(target, []).append(cp.name)
                continue
            if cp.name in used:
                continue
            chosen[target] = cp
            used.add(cp.name)
        return chosen, also

    # -- rendering ----------------------------------------------------------------------
    def render(self) -> tuple[str, dict[str, list]]:
        lines = [f"# {self.site_id}: DRAFT written by `carpool scaffold`. Review every line:",
                 "# matches are guesses from header names, labels and content. Fill each TODO,",
                 "# complete target_value in codes/*.csv, then run `carpool validate --site "
                 f"{self.site_id}`.",
                 "# Walkthrough: docs/onboarding.md", f"site_id: {self.site_id}",
                 f"description: {_q('Center ' + self.site_id + ' (draft)')}",
                 f"date_formats: [{', '.join(self.date_formats())}]", "", "sources:"]
        for name, tp in self.sources.items():
            lines.append(f"  {_q(name)}: {{{', '.join(f'{k}: {_q(v)}' for k, v in self.source(tp).items())}}}")
        lines += ["", *self.identifiers(), "", "tables:"]
        for tname in self.schema:
            lines += self.table(tname)
        lines += self.unhandled_checkboxes()
        return "\n".join(lines) + "\n", self.code_lists

    def source(self, tp: TableProfile) -> dict:
        src = {"path": self._rel(tp.path), "format": tp.format}
        for key, default in (("encoding", "utf-8"), ("delimiter", ","), ("decimal", "."), ("sheet", None),
                             ("header_row", 1)):
            v = tp.source.get(key, default)
            if v != default:
                src[key] = v
        if tp.dictionary:
            src["dictionary"] = self._rel(tp.dictionary)
        return src

    def _rel(self, path: str) -> str:
        return Path(os.path.relpath(Path(path).resolve(), self.site_dir)).as_posix()

    def date_formats(self) -> list[str]:
        """Per date column the format that parses all of it, or all the formats a mix needs."""
        used: Counter = Counter()
        for tp in self.sources.values():
            for c in tp.columns:
                fmts = {f: s for f, s in c.date_formats.items() if f != "native"}
                if c.type != "date" or not fmts:
                    continue
                full = [f for f, s in fmts.items() if s >= 0.99]
                used.update(full[:1] or sorted(fmts, key=lambda f: -fmts[f]))
        return [_q(f) for f, _ in used.most_common()] or ["iso"]

    def identifiers(self) -> list[str]:
        best = max(self.sources.items(), key=lambda kv: len(kv[1].identifiers))
        name, tp = best
        lid = self.assign(tp, "patient")[0].get("local_id")
        ids = tp.identifiers
        out = ["identifiers:                 # read for pseudonymization and checks; never loaded",
               f"  source: {_q(name)}"]
        if lid is None:
            out.append("  local_id: TODO            # TODO: the column with the center's patient id")
            self.todos.append("identifiers.local_id: the patient id column")
        else:
            out.append(f"  local_id: {_q(lid.name)}")
        out.append(f"  columns: [{', '.join(_q(c.name) for c in ids)}]"
                   + ("" if ids else "   # TODO: no identifier found; check the profile"))
        for kind, key in (("name", "name"), ("birth_date", "birth_date")):
            hit = next((c for c in ids if c.identifier.startswith(kind)), None)
            if hit is not None:
                out.append(f"  {key}: {_q(hit.name)}")
        for other, otp in self.sources.items():
            if other != name and otp.identifiers:
                out.append(f"  # also identifiers in {other}: {', '.join(c.name for c in otp.identifiers)} "
                           "(never mapped below)")
        return out

    def table(self, tname: str) -> list[str]:
        table = self.schema[tname]
        scored = []
        for name, tp in self.sources.items():
            chosen, also = self.assign(tp, tname)
            melt = self.checkbox_melt(tp, tname)
            total = sum(1 for t in chosen if t != "local_id") + 3 * len(melt)
            scored.append((total, name, tp, chosen, also, melt))
        total, name, tp, chosen, also, melt = max(scored, key=lambda x: x[0])
        required = [c.name for c in table.columns if c.required and c.name not in AUTOMATIC | {"local_id"}]
        if total == 0:
            self.todos.append(f"tables.{tname}: no source column matched")
            return ["", f"  # TODO: table {tname}: no source column matched. It needs: {', '.join(required)}.",
                    f"  # ({table.description}) See docs/onboarding.md."]
        if melt:  # the checkbox groups carry these fields; do not map them twice
            in_melt = {t for g in melt for t in g[2]} | {c for g in melt for c in g[3]}
            for t in [t for t, cp in chosen.items() if t != "local_id" and (t in in_melt or cp.name in in_melt)]:
                del chosen[t]
        where, dropped = self.instrument(tp, chosen, melt)
        out = ["", f"  {tname}:", f"    source: {_q(name)}"]
        if where is not None:
            out.append(f"    where: {{{INSTRUMENT}: [{_q(where)}]}}")
        out.append("    columns:")
        lid = chosen.get("local_id")
        if lid is None:
            self.todos.append(f"tables.{tname}.columns.local_id")
            out.append("      # TODO: local_id: the patient id column")
        covered = set(chosen) | {t for g in melt for t in g[2]}
        for col in table.columns:
            key = f"{tname}.{col.name}"
            if col.name in chosen:
                out.append(f"      {col.name}: {self.spec(tname, col, chosen[col.name], chosen, tp)}"
                           + (f"   # also matched: {', '.join(also[col.name])}" if col.name in also else ""))
            elif col.name == "age_years" and any(c.identifier.startswith("birth_date")
                                                 for t in self.sources.values() for c in t.identifiers):
                out.append("      age_years: {derive: age_at_infusion}   # from the birth date; check")
            elif col.required and col.name not in AUTOMATIC | covered | {"local_id"}:
                self.todos.append(f"{key} ({col.type}, required)")
                out.append(f"      # TODO: {col.name} ({col.type}, required): {HINTS.get(key, col.description)}")
        for c in dropped:
            out.append(f"      # left out: {c} is on another REDCap instrument than this table's rows")
        if melt:
            out.append("    melt:                      # one row per ticked checkbox choice")
            self.melted.update(when for when, *_ in melt)
            for when, label, cols, _ in melt:
                out += [f"      - when: {_q(when)}          # {label}", "        skip: [0]", "        columns:"]
                out += [f"          {t}: {v}" for t, v in cols.items()]
        return out

    def unhandled_checkboxes(self) -> list[str]:
        """A TODO per REDCap checkbox option that no melt group reads: nothing is dropped unsaid."""
        out = []
        for name, tp in self.sources.items():
            for c in tp.columns:
                if "___" in c.name and c.name not in self.melted and not c.identifier:
                    choice = c.label.split(": ", 1)[1] if ": " in c.label else "?"
                    self.todos.append(f"checkbox {c.name} ({choice}) in {name}: not mapped")
                    out.append(f"# TODO: checkbox option {c.name} ({choice}) in {name} is not mapped: add a melt "
                               "group for it, or delete this line if the option carries nothing the study needs")
        return [""] + out if out else []

    def spec(self, tname: str, col: Column, cp: ColumnProfile, chosen: dict, tp: TableProfile) -> str:
        if col.name == "unit_from":
            return _q(cp.name)
        unit = label_unit(cp)
        if tname == "lab" and col.name == "value":
            unit_col = chosen.get("unit_from")
            if unit_col:
                return f"{{from: {_q(cp.name)}, unit_from: {_q(unit_col.name)}}}"
            if unit:
                return f"{{from: {_q(cp.name)}, unit: {_q(unit)}}}   # unit from the label; check"
            return f"{_q(cp.name)}   # TODO: unit: the unit of these values (or unit_from: a unit column)"
        if col.unit and unit:
            if unit == col.unit:
                return f"{_q(cp.name)}   # unit {unit} (label), as the common schema"
            if (unit, col.unit) in convert.UNITS:
                return f"{{from: {_q(cp.name)}, unit: {_q(unit)}}}   # unit from the label; converted to {col.unit}"
            self.todos.append(f"{tname}.{col.name}: the label says {unit!r}, not convertible to {col.unit}")
            return (f"{_q(cp.name)}   # TODO: the label says unit {unit!r}; {col.name} is in {col.unit} "
                    "and carpool has no conversion: convert at the source or ask")
        if col.type == "date" and cp.type == "integer":
            ref = self.assign(tp, "infusion")[0].get("infusion_date")
            return (f"{{from: {_q(cp.name)}, relative_to: {_q(ref.name)}}}   # days after infusion?" if ref else
                    f"{_q(cp.name)}   # TODO: days after what? add relative_to: <date column>")
        needs_codes = col.codelist is not None or (col.type == "bool" and not _all_bool(cp))
        if needs_codes and not (col.codelist and _all_codes(cp, col.codelist)):
            rel = self.code_list(col, cp)
            return f"{{from: {_q(cp.name)}, codes: {rel}}}"
        return _q(cp.name)

    def code_list(self, col: Column, cp: ColumnProfile) -> str:
        """Draft a code list: the common code where the value or its label is one, else TODO.

        Declared choices (REDCap dictionary, SPSS value labels) are listed even if unseen; an
        observed value outside them is a TODO with a note (it will be an UNKNOWN_CODE)."""
        rel = f"codes/{col.name}.csv"
        if rel in self.code_lists:
            rel = f"codes/{col.name}_{normalize(cp.name).replace(' ', '_') or 'x'}.csv"
        known = _known_codes(col)
        choices = ", ".join(sorted(set(known.values()))) if len(set(known.values())) <= 12 else ""
        rows, todo = [], 0
        seen = dict(cp.top)
        unseen = [(v, 0) for v in cp.value_labels if v not in seen]  # labelled, not (yet) observed
        for v, n in [*cp.top, *unseen]:
            label = cp.value_labels.get(v, "")
            target = known.get(_alnum(v)) or known.get(_alnum(label), "")
            note = "matches the common code" if target else f"no common code matches; choose one of: {choices}"
            if cp.value_labels and v not in cp.value_labels:
                target, note = "", "NOT among the declared choices (REDCap dictionary / value labels); ask the center"
            elif not n:
                note += "; declared, not observed"
            if not target:
                target, todo = "TODO", todo + 1
            rows.append([v, target, label, n, note])
        self.code_lists[rel] = rows
        if todo:
            self.todos.append(f"{rel}: {todo} value(s) with target_value TODO")
        return rel

    def checkbox_melt(self, tp: TableProfile, tname: str) -> list[tuple[str, str, dict[str, str], set[str]]]:
        """REDCap checkbox (`field___k`) whose choices are codes of a field in this table."""
        table = self.schema[tname]
        groups = []
        for col in table.columns:
            if not col.codelist or col.name in AUTOMATIC:
                continue
            known = _known_codes(col)
            boxes = [c for c in tp.columns if "___" in c.name and ": " in c.label]
            hits = [(c, known[_alnum(c.label.split(": ", 1)[1])]) for c in boxes
                    if _alnum(c.label.split(": ", 1)[1]) in known]
            for box, code in hits:
                choice = box.label.split(": ", 1)[1].strip().lower()
                cols = {col.name: f"{{value: {code}}}"}
                related = [c for c in _usable(tp) if choice in c.label.lower() and c is not box]
                sub = TableProfile(tp.path, tp.name, tp.format, tp.source, tp.notes, tp.rows, related)
                chosen, _ = self.assign(sub, tname)
                for target, cp in chosen.items():
                    if target not in ("local_id", col.name, "unit_from"):
                        cols[target] = self.spec(tname, table.column(target), cp, chosen, tp)
                groups.append((box.name, box.label, cols, {cp.name for cp in chosen.values()}))
        return groups

    def instrument(self, tp: TableProfile, chosen: dict, melt: list) -> tuple[str | None, list[str]]:
        """REDCap: the instrument whose rows this table reads, and columns left out."""
        if not tp.instruments:
            return None, []
        insts = Counter(cp.instrument for t, cp in chosen.items() if t != "local_id")
        insts.update("" for _ in melt)
        where = insts.most_common(1)[0][0] if insts else ""
        dropped = [cp.name for t, cp in list(chosen.items()) if t != "local_id" and cp.instrument != where]
        for t in [t for t, cp in chosen.items() if t != "local_id" and cp.instrument != where]:
            del chosen[t]
        return where, dropped


_UNIT = re.compile(r"[(\[]\s*([^()\[\]]+?)\s*[)\]]\s*$")
_UNIT_SPELLING = {"x10^6 cells/kg": "10^6 cells/kg", "x 10^6 cells/kg": "10^6 cells/kg",
                  "10e6 cells/kg": "10^6 cells/kg",
                  "x10^5 cells/kg": "10^5 cells/kg", "°c": "degC", "c": "degC", "ug/l": "ug/L", "μg/l": "µg/L",
                  "l/min": "L/min", "kg": "kg", "years": "years", "yrs": "years", "y": "years"}


def label_unit(cp: ColumnProfile) -> str | None:
    """The unit a label or header ends with, in carpool's spelling: `Body weight (kg)` -> kg."""
    known = {u for pair in convert.UNITS for u in pair} | set(convert.CELL_COUNT_1E6) | {"kg"}
    for text in (cp.label, cp.name):
        m = _UNIT.search(text or "")
        if not m:
            continue
        raw = m.group(1).strip()
        unit = _UNIT_SPELLING.get(raw.lower()) or next((u for u in known if u.lower() == raw.lower()), None)
        return unit or (raw if len(raw) <= 15 else None)
    return None


def _unique_names(tables: list[TableProfile]) -> dict[str, TableProfile]:
    out = {}
    for tp in tables:
        name = tp.source.get("sheet") or tp.name
        name = name if name not in out else f"{name}_{len(out)}"
        out[name] = tp
    return out


def _usable(tp: TableProfile) -> list[ColumnProfile]:
    return [c for c in tp.columns if not c.identifier and c.type != "empty"
            and not c.name.startswith("redcap_") and not c.name.endswith("_complete") and "___" not in c.name]


def _compat(col: Column, cp: ColumnProfile) -> float:
    t, words = cp.type, set(normalize(f"{cp.name} {cp.label}").split())
    if col.name == "local_id":
        return 1.0 if t in ("text", "integer") else 0.3
    if col.type == "date":
        return 1.0 if t == "date" else 0.9 if t == "integer" and words & {"day", "days", "on", "res"} else 0.2
    if col.type == "int":
        return 1.0 if t == "integer" else 0.6 if t in ("number", "boolean") or cp.code_like else 0.1
    if col.type == "float":
        return 1.0 if t in ("integer", "number") else 0.3
    if col.type == "bool":
        return 1.0 if t == "boolean" or (t == "integer" and cp.distinct <= 2) else 0.8 if cp.code_like else 0.3
    if col.codelist:
        return 1.0 if cp.code_like or (t == "integer" and cp.distinct <= 10) else 0.7 if t == "text" else 0.4
    return 1.0 if t == "text" else 0.5


def _all_bool(cp: ColumnProfile) -> bool:
    try:
        return all(convert.parse_bool(v) in (True, False) for v, _ in cp.top)
    except ValueError:
        return False


def _all_codes(cp: ColumnProfile, name: str) -> bool:
    valid = {r["code"] for r in codelist(name)}
    return bool(cp.top) and cp.distinct <= len(cp.top) and all(v in valid for v, _ in cp.top)


def _known_codes(col: Column) -> dict[str, str]:
    """Lower-case code or description -> code, for suggestions."""
    if col.type == "bool":
        return {**{_alnum(t): "true" for t in convert.TRUE}, **{_alnum(f): "false" for f in convert.FALSE}}
    if not col.codelist:
        return {}
    out = {}
    for r in codelist(col.codelist):
        for text in (r["code"], r.get("description", "")):
            out[_alnum(text)] = r["code"]
    out.pop("", None)
    return out


def _alnum(s: str) -> str:
    """`IL-6` -> `il6`, `Primary refractory` -> `primaryrefractory`: loose matching of codes."""
    return "".join(ch for ch in str(s).lower() if ch.isalnum())


def _q(v) -> str:
    """A YAML scalar: plain when it reads back unchanged, else double-quoted."""
    s = str(v)
    try:
        plain_ok = yaml.safe_load(f"k: {s}") == {"k": s} and not any(ch in s for ch in "[]{},#&*!|>'\"%@`")
    except yaml.YAMLError:
        plain_ok = False
    return s if plain_ok and s.strip() == s and s else json.dumps(s, ensure_ascii=False)
