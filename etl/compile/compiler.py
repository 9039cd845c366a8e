"""A site mapping compiled to DuckDB SQL: common-schema rows plus conversion findings.

One engine for every mapping feature and every size: each target table is one query over
the site's sources, registered in DuckDB by `etl.read.relations`. Column specs compile
through `etl.compile.sqlcompile` (types, date formats incl. Excel serials, decimal commas,
units) and here (code lists, SPSS value labels, days relative to a reference date,
`per_kg`, lab units per analyte); shapes compile to SQL too: `where` is a filter, `melt` a
UNION ALL over the groups, `pivot` a GROUP BY on the key with one join per event, and
`distinct` a GROUP BY on the patient. No cell passes through Python.

Every target row keeps its lineage: `_row_id` (unique within the table), `_source_file`,
`_source_row` (first source row) and `_source_rows` (all `(file, row)` it came from, so
per-file reconciliation can count source rows). A value that cannot be converted is NULL
and reported as a finding (DATE_UNPARSEABLE, TYPE_MISMATCH, UNKNOWN_CODE); the validation
layer then decides, by severity, whether the row is loaded or quarantined.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import duckdb
import pandas as pd

from etl.compile import convert
from etl.compile import sqlcompile as sc
from etl.compile.mapping import ColumnSpec, SiteMapping, TableMap
from etl.errors import ConfigError
from etl.read.readers import ROW, RawTable
from etl.read.relations import DATE_TWIN, register
from schemas.catalog import Finding, finding
from schemas.model import Column, Table, class_codes, code_attr, common_schema
from schemas.rules import conflicting_values

LINEAGE = ["_row_id", "_source_file", "_source_row", "_source_rows"]
DERIVATIONS = ("per_kg", "age_at_infusion")
UNKNOWN_RULE = "DATE_UNKNOWN_DECLARED"


@dataclass
class MappedTable:
    name: str
    frame: pd.DataFrame
    reported: set[tuple[int, str]] = field(default_factory=set)  # (row_id, column) already flagged
    groups: dict[int, int] = field(default_factory=dict)   # row_id -> melt group, where not group 0


@cache
def load_codes(path: Path) -> dict[str, str]:
    """A mapping code list: CSV with columns source_value,target_value."""
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        raise ConfigError(f"{path}: code list not found") from None
    if rows and not {"source_value", "target_value"} <= set(rows[0]):
        raise ConfigError(f"{path}: code list needs columns source_value,target_value")
    return {convert.norm_text(r["source_value"]): r["target_value"] for r in rows}


@cache
def load_local_names(path: Path) -> dict[str, str]:
    """A code list's optional `local_name` column: the name kept (in the table's local column,
    e.g. agent_local) where a source value maps to a class code; default the source value."""
    with path.open(encoding="utf-8", newline="") as fh:
        return {convert.norm_text(r["source_value"]): r["local_name"].strip() for r in csv.DictReader(fh)
                if (r.get("local_name") or "").strip()}


def lookup(table: dict, key: str) -> tuple[str, str]:
    """(is the key known, its value) for a small dict, as SQL list lookups."""
    keys = "[" + ", ".join(sc.lit(k) for k in table) + "]"
    vals = "[" + ", ".join("NULL" if v is None else sc.lit(v) for v in table.values()) + "]"
    return (f"list_contains({keys}, {key})", f"list_extract({vals}, list_position({keys}, {key}))")


class Record:
    """SQL expressions for the source cells of one record (a table alias)."""

    def __init__(self, alias: str, columns: set[str], source: str):
        self.alias, self.columns, self.source = alias, columns, source

    def text(self, col: str) -> str:
        return f"{self.alias}.{sc.ident(col)}"

    def native_date(self, col: str) -> str | None:
        return f"{self.alias}.{sc.ident(col + DATE_TWIN)}" if col + DATE_TWIN in self.columns else None


class Compiler:
    """Maps one site's sources in DuckDB; collects findings as it goes."""

    def __init__(self, mapping: SiteMapping, raw: dict[str, RawTable]):
        self.m = mapping
        self.raw = raw
        self.schema = common_schema()
        self.findings: list[Finding] = []
        self.con = duckdb.connect()
        self.rel: dict[str, str] = {}
        self._clean: dict[str, dict[str, str | None]] = {}   # code list -> its targets as cells read them
        self.cols: dict[str, set[str]] = {}
        for i, name in enumerate(raw):
            self.rel[name] = f"src{i}"
            register(self.con, f"src{i}", raw[name])
            self.cols[name] = set(self.con.execute(f"SELECT * FROM src{i} LIMIT 0").fetchdf().columns)

    # -- public -------------------------------------------------------------------------
    def map_all(self) -> dict[str, MappedTable]:
        return {t: self.map_table(t, tm) for t, tm in self.m.tables.items()}

    def map_table(self, tname: str, tmap: TableMap) -> MappedTable:
        table = self.schema[tname]
        raw = self.raw[tmap.source]
        self._check_columns(tname, tmap, raw)
        src = f"(SELECT * FROM {self.rel[tmap.source]} r WHERE {self._where(tmap)})"
        if tmap.pivot:
            sql = self._pivot(table, tmap, src, tmap.source)
        else:
            groups = tmap.melt or [None]
            parts = [self._plain(table, {**tmap.columns, **(g.columns if g else {})}, src, g, k, tmap.source)
                     for k, g in enumerate(groups)]
            sql = ("SELECT row_number() OVER (ORDER BY _pos, _g) - 1 AS _row_id, * FROM ("
                   + " UNION ALL ".join(parts) + ")")
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE m AS {sql}")
        if tmap.distinct:
            self._distinct(tname, table)
        order = list(dict.fromkeys([*tmap.columns, *(c for g in tmap.melt or [] for c in g.columns)]))
        return self._collect(tname, table, raw, order)

    # -- one record -> one row ------------------------------------------------------------
    def _plain(self, table: Table, specs: dict[str, ColumnSpec], src: str, group, k: int, source: str) -> str:
        rec = Record("r", self.cols[source], source)
        cond, blank = "TRUE", "NULL"
        if group is not None:
            when = rec.text(group.when)
            skip = sorted({convert.norm_text(x) for x in group.skip})
            cond = f"NOT ({sc.missing_to_null(when)} IS NULL OR coalesce({sc.one_of(sc.norm(when), skip)}, FALSE))" \
                if skip else f"{sc.missing_to_null(when)} IS NOT NULL"
            # a blank `when:` with values in the group's own columns: the row is kept and flagged
            own = sorted({s.from_ for s in group.columns.values() if s.from_} - {group.when}
                         - {s.from_ for s in self.m.tables[table.name].columns.values() if s.from_})
            if own:
                # a zero (grade 0, dose 0) says "none", as a `skip` value does: not a value
                filled = " || ".join(f"CASE WHEN coalesce({sc.norm(sc.missing_to_null(rec.text(c)))}, '0') <> '0' "
                                     f"THEN {sc.lit(', ' + c)} ELSE '' END" for c in own)
                blank = f"CASE WHEN {sc.missing_to_null(when)} IS NULL THEN nullif(ltrim({filled}, ', '), '') END"
                cond = f"({cond}) OR ({blank}) IS NOT NULL"
        lineage = (f"r._pos AS _pos, {k} AS _g, r.{ROW} AS _source_row, [r.{ROW}] AS _source_rows, "
                   f"{blank} AS _blank_when, {sc.lit(group.when if group else None)} AS _when")
        return self._row_sql(table, specs, {c: rec for c in specs}, rec, lineage, f"FROM {src} r WHERE {cond}")

    def _row_sql(self, table: Table, specs: dict[str, ColumnSpec], recs: dict[str, Record | None],
                 first: Record, lineage: str, from_sql: str) -> str:
        """Three layers: source value (`b`), parsed once (`p`), value + rule/shown/expected."""
        lid = specs.get("local_id")
        inner = [lineage, (f"{sc.norm(first.text(lid.from_))} AS _lid" if lid and lid.from_ else "NULL AS _lid")]
        mid, outer = ["*"], ["_pos", "_g", "_source_row", "_source_rows", "_lid", "_blank_when", "_when"]
        decimal = self.m.sources[first.source].decimal
        kept: dict[str, str] = {}   # local column -> the coded column's local value (class codes)
        for i, c in enumerate(table.columns):
            spec = specs.get(c.name)
            rec = recs.get(c.name)
            if spec is None and c.name in kept:
                outer += [f"{kept[c.name]} AS {sc.ident(c.name)}", f"NULL AS {sc.ident(c.name + '__rule')}",
                          f"NULL AS {sc.ident(c.name + '__shown')}", f"NULL AS {sc.ident(c.name + '__exp')}"]
                continue
            if spec is None and table.name == "lab" and c.name in ("source_value", "source_unit") \
                    and "value" in specs:  # the lab value's raw text and unit, unless mapped
                outer += [f"{'_sv' if c.name == 'source_value' else '_su'} AS {sc.ident(c.name)}",
                          f"NULL AS {sc.ident(c.name + '__rule')}", f"NULL AS {sc.ident(c.name + '__shown')}",
                          f"NULL AS {sc.ident(c.name + '__exp')}"]
                continue
            if spec is None or rec is None:
                outer += [f"NULL AS {sc.ident(c.name)}", f"NULL AS {sc.ident(c.name + '__rule')}",
                          f"NULL AS {sc.ident(c.name + '__shown')}", f"NULL AS {sc.ident(c.name + '__exp')}"]
                continue
            cell = self._cell(c, spec, rec, decimal, i)
            if c.local_column and spec.codes and c.codelist and class_codes(c.codelist):
                kept[c.local_column] = f"loc{i}"
            inner += cell.inner
            mid.append(f"{cell.compiled.parsed} AS p{i}")
            cp = cell.compiled
            outer += [f"{cp.value} AS {sc.ident(c.name)}", f"{cp.rule} AS {sc.ident(c.name + '__rule')}",
                      f"{cp.shown} AS {sc.ident(c.name + '__shown')}", f"{cp.expected} AS {sc.ident(c.name + '__exp')}"]
        lab = table.name == "lab" and "value" in specs
        if lab:
            v = specs["value"]
            rec = recs["value"] or first
            raw_value = rec.text(v.from_) if v.from_ else sc.lit(v.value)
            unit = rec.text(v.unit_from) if v.unit_from else sc.lit(v.unit)
            inner += [f"{sc.norm(sc.missing_to_null(raw_value))} AS _sv", f"{sc.missing_to_null(unit)} AS _su"]
        else:
            inner += ["NULL AS _sv", "NULL AS _su"]
        return (f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(mid)} FROM "
                f"(SELECT {', '.join(inner)} {from_sql}))")

    def _cell(self, c: Column, spec: ColumnSpec, rec: Record, decimal: str, i: int) -> _Cell:
        b, p = f"b{i}", f"p{i}"
        if spec.derive:
            return self._derive(c, spec, rec, decimal, i)
        raw = sc.lit(str(spec.value)) if spec.value is not None else rec.text(spec.from_)
        base = sc.missing_to_null(raw)
        inner = []
        labels = self.raw[rec.source].value_labels.get(spec.from_) if spec.from_ else None
        if labels and spec.codes is None and c.codelist:
            known, value = lookup({_key(k): str(v) for k, v in labels.items()}, base)
            base = f"CASE WHEN {known} THEN {value} ELSE {base} END"
        native = rec.native_date(spec.from_) if spec.from_ else None
        if spec.codes:
            codes = load_codes(self.m.site_dir / spec.codes)
            known, value = lookup(self._targets(spec.codes, codes), sc.norm(base))
            inner += [f"({base} IS NOT NULL AND NOT {known}) AS u{i}", f"{sc.norm(base)} AS r{i}"]
            classes = class_codes(c.codelist) if c.codelist and c.local_column else []
            if classes:  # a local value mapped to a class code keeps its own name (e.g. agent_local)
                names = load_local_names(self.m.site_dir / spec.codes)
                own = f"coalesce({lookup(names, sc.norm(base))[1]}, {sc.norm(base)})" if names else sc.norm(base)
                inner.append(f"CASE WHEN {known} AND {sc.one_of(value, classes)} THEN {own} END AS loc{i}")
            base = f"CASE WHEN {known} THEN {value} END"
            native = None
        inner.append(f"{base} AS {b}")
        if native:
            inner.append(f"{native} AS n{i}")
        if c.type == "date" and spec.relative_to:
            comp = self._relative(spec, rec, b, p, decimal, i, inner)
        else:
            text = self.m.sources[rec.source].format in ("csv", "redcap")
            comp = sc.column(c, spec, b, decimal, self.m.formats_for(spec), p, text_source=text)
            if native and c.type == "date":
                comp = sc.Compiled(f"coalesce(n{i}, {comp.parsed})", comp.value, comp.rule, comp.shown, comp.expected)
        if spec.codes:
            comp = sc.Compiled(comp.parsed, comp.value, f"CASE WHEN u{i} THEN 'UNKNOWN_CODE' ELSE {comp.rule} END",
                               f"CASE WHEN u{i} THEN r{i} ELSE {comp.shown} END",
                               f"CASE WHEN u{i} THEN {sc.lit(spec.codes)} ELSE {comp.expected} END")
        if spec.unknown is not None:  # declared unknown: null, a warning, never REQUIRED_MISSING
            said = sc.missing_to_null(raw)
            if spec.unknown.values:
                said = f"lower(trim({raw}))"
                inner.append(f"coalesce({sc.one_of(said, sorted({v.strip().lower() for v in spec.unknown.values}))}"
                             f", FALSE) AS k{i}")
            else:
                inner.append(f"({said} IS NULL) AS k{i}")
            inner.append(f"coalesce(trim({raw}), '') AS kv{i}")
            comp = sc.Compiled(comp.parsed, f"CASE WHEN k{i} THEN NULL ELSE {comp.value} END",
                               f"CASE WHEN k{i} THEN {sc.lit(UNKNOWN_RULE)} ELSE {comp.rule} END",
                               f"CASE WHEN k{i} THEN kv{i} ELSE {comp.shown} END",
                               f"CASE WHEN k{i} THEN {sc.lit(spec.unknown.reason)} ELSE {comp.expected} END")
        return _Cell(inner, comp)

    def _targets(self, path: str, codes: dict[str, str]) -> dict[str, str | None]:
        """A code list's target values as a looked-up cell reads them (`sc.missing_to_null`, NULL
        for a missing marker), worked out once here: the compiled statement carries the
        constants, not the expression around every lookup (its size is DuckDB's binding time)."""
        if path not in self._clean:
            expr = sc.missing_to_null("v")
            done = self.con.execute(f"SELECT list_transform($v, lambda v: {expr})", {"v": list(codes.values())}
                                    ).fetchone()[0] if codes else []
            self._clean[path] = dict(zip(codes, done, strict=True))
        return self._clean[path]

    def _relative(self, spec, rec: Record, b: str, p: str, decimal: str, i: int, inner: list[str]) -> sc.Compiled:
        """Days after a reference date (etl.compile.convert.add_days + storable_date)."""
        ref_text = sc.missing_to_null(rec.text(spec.relative_to))
        ref = sc.date_parse(ref_text, self.m.formats_for(None))
        native = rec.native_date(spec.relative_to)
        inner.append(f"{f'coalesce({native}, {ref})' if native else ref} AS ref{i}")
        n = f"TRY_CAST({sc.number_text(b, decimal)} AS DOUBLE)"
        in_range = f"{p} BETWEEN DATE '0001-01-01' - ref{i} AND DATE '9999-12-31' - ref{i}"
        d = f"(CASE WHEN {in_range} THEN ref{i} + CAST({p} AS INTEGER) END)"
        cases = [(f"ref{i} IS NULL", " or ".join(self.m.formats_for(None))),
                 (f"{p} IS NULL", convert.EXPECT_NUMBER), (f"NOT isfinite({p})", convert.EXPECT_FINITE),
                 (f"{p} <> floor({p})", convert.EXPECT_WHOLE),
                 (f"abs({p}) >= {convert.INT_LIMIT}", convert.EXPECT_PLAUSIBLE_INT),
                 (f"NOT ({in_range})", "a day count that gives a valid date"),
                 (f"NOT ({d} BETWEEN DATE '{convert.DATE_MIN}' AND DATE '{convert.DATE_MAX}')",
                  f"a date between {convert.DATE_MIN} and {convert.DATE_MAX}")]
        return sc.cases(b, n, d, "DATE_UNPARSEABLE", cases, sc.norm(b))

    def _derive(self, c: Column, spec: ColumnSpec, rec: Record, decimal: str, i: int) -> _Cell:
        if spec.derive == "age_at_infusion":  # filled by harmonize once the infusion date is known
            return _Cell([f"NULL AS b{i}"], sc.Compiled("NULL", "NULL", "NULL", "NULL", "NULL"))
        if spec.derive != "per_kg":
            raise ConfigError(f"{self.m.path}: unknown derivation {spec.derive!r} (known: {', '.join(DERIVATIONS)})")
        try:
            total, weight = (sc.missing_to_null(rec.text(spec.args[k])) for k in ("total", "weight_kg"))
        except KeyError as exc:
            raise ConfigError(f"{self.m.path}: derive {spec.derive} needs argument {exc}") from None
        unit = spec.unit or "10^6 cells"
        t = f"TRY_CAST({sc.number_text(f'b{i}', decimal)} AS DOUBLE)"
        inner = [f"CASE WHEN {weight} IS NOT NULL THEN {total} END AS b{i}",
                 f"TRY_CAST({sc.number_text(weight, decimal)} AS DOUBLE) AS wp{i}"]
        factor = convert.CELL_COUNT_1E6.get(unit)
        cases = [(f"p{i} IS NULL", convert.EXPECT_NUMBER), (f"NOT isfinite(p{i})", convert.EXPECT_FINITE),
                 (f"wp{i} IS NULL", convert.EXPECT_NUMBER), (f"NOT isfinite(wp{i})", convert.EXPECT_FINITE)]
        if factor is None:
            cases.append(("TRUE", f"a cell-count unit ({', '.join(convert.CELL_COUNT_1E6)})"))
        cases.append((f"wp{i} <= 0", "a positive body weight"))
        value = f"round_even(p{i} * {factor!r} / wp{i}, 6)" if factor is not None else "NULL"
        return _Cell(inner, sc.cases(f"b{i}", t, value, "TYPE_MISMATCH", cases, sc.norm(f"b{i}")))

    # -- shapes ---------------------------------------------------------------------------
    def _pivot(self, table: Table, tmap: TableMap, src: str, source: str) -> str:
        """Event rows of one key -> one row: each `when:` column from the key's first such event."""
        key, on = sc.ident(tmap.pivot.key), sc.ident(tmap.pivot.event_column)
        event = f"coalesce({sc.norm(f'r.{on}')}, 'None')"
        whens = sorted({convert.norm_text(s.when) for s in tmap.columns.values() if s.when is not None})
        hits = ", ".join(f"min(r._pos) FILTER (WHERE {event} = {sc.lit(w)}) AS h{k}" for k, w in enumerate(whens))
        grp = (f"SELECT r.{key} AS _k, min(r._pos) AS _p0, {hits + ', ' if hits else ''}"
               f"list_sort(list_distinct(list(r.{ROW}) FILTER (WHERE {sc.one_of(event, whens) if whens else 'FALSE'})))"
               f" AS _used FROM {src} r WHERE r.{key} IS NOT NULL GROUP BY r.{key}")
        cols = self.cols[source]
        first = Record("r0", cols, source)
        recs = {c: (first if s.when is None else Record(f"r{1 + whens.index(convert.norm_text(s.when))}", cols, source))
                for c, s in tmap.columns.items()}
        joins = " ".join(f"LEFT JOIN {src} r{k + 1} ON r{k + 1}._pos = g.h{k}" for k in range(len(whens)))
        from_sql = f"FROM ({grp}) g JOIN {src} r0 ON r0._pos = g._p0 {joins}"
        lineage = (f"g._p0 AS _pos, 0 AS _g, coalesce(g._used[1], r0.{ROW}) AS _source_row, "
                   f"CASE WHEN len(g._used) > 0 THEN g._used ELSE [r0.{ROW}] END AS _source_rows, "
                   "NULL AS _blank_when, NULL AS _when")
        specs = dict(tmap.columns)
        # a `when:` column whose event the key lacks is NULL (its record alias matches no row)
        sql = self._row_sql(table, specs, recs, first, lineage, from_sql)
        return f"SELECT row_number() OVER (ORDER BY _pos) - 1 AS _row_id, * FROM ({sql})"

    def _distinct(self, tname: str, table: Table) -> None:
        """Collapse repeated rows of one patient; differing repeats are a conflict."""
        values = table.column_names
        differ = " || ".join(f"CASE WHEN count(DISTINCT coalesce(CAST({sc.ident(v)} AS VARCHAR), chr(0))) > 1 "
                             f"THEN ',{v}' ELSE '' END" for v in values)
        shown = conflicting_values(table, [v for v in values if v not in ("site_id", "local_id")], "_row_id",
                                   "_source_row")
        self.con.execute(f"""CREATE OR REPLACE TEMP TABLE d AS SELECT local_id, min(_row_id) AS first_id,
                count(*) AS n, ltrim({differ}, ',') AS differ, {shown} AS shown,
                flatten(list(_source_rows ORDER BY _row_id)) AS all_rows
            FROM m GROUP BY local_id""")
        for rid, lid, n, differ, shown in self.con.execute(
                "SELECT first_id, local_id, n, differ, shown FROM d WHERE differ <> '' ORDER BY first_id").fetchall():
            self.findings.append(finding("DUPLICATE_CONFLICT", tname, int(rid), differ, "", local_id=lid,
                                         detail=f"{n} rows for one patient disagree: {shown}"))
        self.con.execute("""CREATE OR REPLACE TEMP TABLE m AS SELECT m.* REPLACE (d.all_rows AS _source_rows)
            FROM m JOIN d ON m._row_id = d.first_id ORDER BY m._row_id""")

    # -- results --------------------------------------------------------------------------
    def _collect(self, tname: str, table: Table, raw: RawTable, order: list[str]) -> MappedTable:
        """The mapped frame and its findings (in row, then mapping column order)."""
        lab = tname == "lab"
        if lab:  # convert to the analyte's canonical unit, or TYPE_MISMATCH on source_unit
            known_a, target = lookup(code_attr("analyte", "unit"), "m.analyte")
            pairs = {f"{s}\x00{t}": str(f) for (s, t), f in convert.UNITS.items()}
            known_u, factor = lookup(pairs, f"m.source_unit || chr(0) || ({target})")
            check = f"coalesce(m.value IS NOT NULL AND {known_a} AND m.source_unit IS NOT NULL, FALSE)"
            self.con.execute(f"""CREATE OR REPLACE TEMP TABLE m AS SELECT m.* REPLACE (
                    CASE WHEN NOT ({check}) THEN m.value
                         WHEN coalesce({known_u}, FALSE) THEN m.value * CAST({factor} AS DOUBLE) END AS value),
                  ({check} AND NOT coalesce({known_u}, FALSE)) AS _unit_err, {target} AS _target_unit FROM m""")
        out = MappedTable(tname, pd.DataFrame())
        parts = [f"SELECT _row_id, {sc.ident(c + '__rule')}, {sc.lit(c)}, {sc.ident(c + '__shown')}, "
                 f"{sc.ident(c + '__exp')}, _lid, {k} FROM m WHERE {sc.ident(c + '__rule')} IS NOT NULL"
                 for k, c in enumerate(order)]
        if lab:
            parts.append(f"SELECT _row_id, 'TYPE_MISMATCH', 'source_unit', source_unit, "
                         f"'a unit convertible to ' || _target_unit || ' (got ' || {sc.py_repr('source_unit')} || ')',"
                         f" _lid, {len(order)} FROM m WHERE _unit_err")
        parts.append("SELECT _row_id, 'MELT_WHEN_BLANK', _when, '', _blank_when, _lid, -1 FROM m "
                     "WHERE _blank_when IS NOT NULL")
        rows = self.con.execute(" UNION ALL ".join(parts) + " ORDER BY 1, 7").fetchall()
        for rid, rule, col, shown, expected, lid, _ in rows:
            if rule == "MELT_WHEN_BLANK":
                self.findings.append(finding(rule, tname, int(rid), col, "", local_id=lid,
                                             detail=f"filled: {expected}"))
                continue
            if rule == UNKNOWN_RULE:   # the site's reason is the detail
                self.findings.append(finding(rule, tname, int(rid), col, shown, local_id=lid, detail=expected))
                out.reported.add((int(rid), col))
                continue
            self.findings.append(finding(rule, tname, int(rid), col, shown, expected=expected, local_id=lid))
            out.reported.add((int(rid), "value" if col == "source_unit" else col))
        cols = ", ".join(sc.ident(c) for c in table.column_names)
        out.groups = dict(self.con.execute("SELECT _row_id, _g FROM m WHERE _g <> 0").fetchall())
        frame = self.con.execute(f"SELECT _row_id, _source_row, _source_rows, {cols} FROM m ORDER BY _row_id").df()
        label = raw.label
        frame.insert(1, "_source_file", label)
        frame["_source_rows"] = [tuple([(label, r) for r in rows.tolist()]) for rows in frame["_source_rows"]]
        out.frame = typed(table, frame)
        return out

    def _where(self, tmap: TableMap) -> str:
        return " AND ".join(sc.one_of(f"coalesce({sc.norm('r.' + sc.ident(c))}, 'None')",
                                      sorted({convert.norm_text(a) for a in allowed}))
                            for c, allowed in (tmap.where or {}).items()) or "TRUE"

    def _check_columns(self, tname: str, tmap: TableMap, raw: RawTable) -> None:
        specs = list(tmap.columns.values()) + [s for g in (tmap.melt or []) for s in g.columns.values()]
        needed = {s.from_ for s in specs if s.from_} | {s.relative_to for s in specs if s.relative_to}
        needed |= {s.unit_from for s in specs if s.unit_from} | set(tmap.where or {})
        needed |= {v for s in specs for v in s.args.values()} | {g.when for g in (tmap.melt or [])}
        if tmap.pivot:
            needed |= {tmap.pivot.key, tmap.pivot.event_column}
        missing = sorted(needed - set(raw.frame.columns))
        if missing:
            raise ConfigError(f"{self.m.path}: tables.{tname}: source {raw.name!r} ({raw.label}) has no "
                              f"column(s) {missing}; it has {sorted(c for c in raw.frame.columns if c != ROW)}")


@dataclass(frozen=True)
class _Cell:
    inner: list[str]           # layer-1 expressions (source value b<i>, helpers)
    compiled: sc.Compiled


def _key(v: object) -> str:
    """A value-label key as the relation writes the cell (str of the SPSS number)."""
    return str(v)


DTYPES = {"string": object, "int": "Int64", "float": "float64", "bool": "boolean", "date": "datetime64[ns]"}


def typed(table: Table, frame: pd.DataFrame | list[dict]) -> pd.DataFrame:
    """The table's columns with their pandas dtypes, lineage first (rows as a frame or dicts)."""
    cols = LINEAGE + table.column_names
    if isinstance(frame, list):
        frame = pd.DataFrame(frame, columns=cols)
    frame = frame.reindex(columns=cols) if len(frame) else pd.DataFrame(columns=cols)
    for c in table.columns:
        if c.type == "date":
            frame[c.name] = pd.to_datetime(frame[c.name], cache=False)   # cache: ~25 ms per column to decide
        elif c.type == "float":
            frame[c.name] = pd.to_numeric(frame[c.name]).astype("float64")
        elif c.type == "string":
            frame[c.name] = frame[c.name].astype(object).where(frame[c.name].notna(), None)
        else:
            frame[c.name] = frame[c.name].astype(DTYPES[c.type])
    frame["_row_id"] = frame["_row_id"].astype("int64")
    if len(frame):
        frame["_source_row"] = frame["_source_row"].astype("int64")
    return frame
