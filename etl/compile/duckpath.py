"""The DuckDB path: one large table read, mapped, validated, pseudonymized and written in SQL.

Used for every table whose shape allows it, whatever its size
(labs: millions of rows). It gives the same rows and the same quarantine as the other
path (`etl.compile.compiler`, then `etl.validate.quarantine` over the mapped frames), which
the tests check on the demo centers, but never holds the table in pandas. Both run the
same pandera model (`schemas.pandera_models`, in DuckDB) and the same duplicate/orphan SQL
(`schemas.rules`):

1. pass 1 streams the CSV through the compiled conversions (`etl.compile.sqlcompile`) into a
   mapped Parquet file (typed values plus, per column, the conversion rule broken);
2. pass 2 runs the pandera model, duplicates, orphans and the patient cascade over it
   in SQL, and writes the loaded rows (study ids joined in) and the
   quarantine rows as Parquet.
Memory is bounded by DuckDB's `memory_limit` (it spills to `work_dir`). Only the distinct
local ids (for the HMAC study ids, which DuckDB cannot compute) and the quarantine rows
come back to Python.

Supported: plain-row tables (no melt/pivot/distinct/derive/relative_to) of CSV sources
whose only cross-table rules are duplicates and orphans (`eligible`). Anything else, or
a CSV whose line numbers cannot be recovered by position (blank or multi-line records),
falls back to the pandas path (`NotSqlable`).
"""
from __future__ import annotations

import codecs
import csv
import shutil
import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from etl.compile import convert
from etl.compile import sqlcompile as sc
from etl.compile.compiler import load_codes
from etl.compile.mapping import SiteMapping
from etl.errors import ConfigError, InputError
from etl.read.readers import check_header
from etl.validate import prequarantine
from etl.validate.pseudonymize import study_id
from etl.validate.quarantine import NO_CASCADE, QUARANTINE_COLUMNS, mask_identifiers, unmapped_records
from etl.validate.where import source_columns
from schemas import cell_limits, id_text, rules
from schemas.catalog import catalog
from schemas.model import code_attr, common_schema
from schemas.pandera_models import failures
from warehouse import layout

ROW_RULES = {"duplicate", "duplicate_exact", "orphan", "cascade", "unmapped", "read"}
FIELD_RULES = {"field_type", "field_date", "field_required", "field_codelist", "field_range", "value_limit",
               "date_limit"}   # pandera's model, and sqlcompile.limit_checks


class NotSqlable(Exception):
    """This table (or file) must go through the pandas path; the message says why."""


def eligible(mapping: SiteMapping, tname: str) -> str | None:
    """None when the SQL path can run the table; otherwise the reason it cannot."""
    tmap = mapping.tables[tname]
    if tname == "patient" or tname in _cross_table_tables():
        return f"{tname} takes part in cross-table rules beyond duplicates/orphans"
    if tmap.melt or tmap.pivot or tmap.distinct:
        return "melt/pivot/distinct shapes"
    if any(r.table == tname for r in mapping.rules):
        return "site rules (mapping.yml rules:) on this table"
    if any(s.derive or s.relative_to for s in tmap.columns.values()):
        return "derived or relative columns"
    src = mapping.sources[tmap.source]
    if src.format not in ("csv", "redcap"):
        return f"{src.format} source"
    return None


def _cross_table_tables() -> set[str]:
    skip = ROW_RULES | FIELD_RULES | {"missing_child"}
    tables = {c.table for c in catalog().values() if c.table != "*" and c.check_type not in skip}
    tables |= {"infusion", "response"}          # reference dates of the date-order rules
    tables |= {c.table for c in catalog().values() if c.check_type == "missing_child"}
    return tables


@dataclass
class SqlTable:
    """What the SQL path produced for one table."""

    table: str
    label: str                          # source file label, as in quarantine.source_file
    parquet: Path                       # loaded rows, pseudonymized, pandas-path columns
    quarantine: pd.DataFrame            # QUARANTINE_COLUMNS
    rows_read: int                      # non-blank data rows of the file
    used: set[int] = field(default_factory=set)         # only when the file is shared with other tables
    bad: set[int] = field(default_factory=set)          # source rows with an error (shared files only)
    file_counts: dict | None = None     # rows_read/loaded/quarantined when the file is the table's alone
    rows_loaded: int = 0
    pre_quarantine: prequarantine.TableProfile | None = None   # the mapped rows before quarantine


def run_table(mapping: SiteMapping, tname: str, export_dir: Path, work_dir: Path, *, key: bytes,
              patients: set[str] | None, causes: dict[str, str], identifiers: set[str],
              shared: bool, cutoff: date | None = None) -> SqlTable:
    """Map and validate `tname` in DuckDB. `patients`: local ids of the site's patient table
    (None: no patient table, no orphan rule); `causes`: local id -> cascade detail for
    quarantined patients; `shared`: other tables read the same file (return row sets)."""
    why = eligible(mapping, tname)
    if why:
        raise NotSqlable(why)
    tmap = mapping.tables[tname]
    source = mapping.sources[tmap.source]
    path = export_dir / source.path
    work_dir.mkdir(parents=True, exist_ok=True)
    with _ONE_AT_A_TIME:   # see below
        csv_path, header, header_line = _utf8(path, source, work_dir)
        con = duckdb.connect(config={"memory_limit": layout.MEMORY_LIMIT, "temp_directory": str(work_dir / "spill"),
                                     "preserve_insertion_order": "false"})
        try:
            return _run(con, mapping, tname, path, csv_path, header, header_line, work_dir, key, patients, causes,
                        identifiers, shared, cutoff)
        finally:
            con.close()
            if csv_path != path:
                csv_path.unlink(missing_ok=True)
            shutil.rmtree(work_dir / "spill", ignore_errors=True)


# one table on this path at a time, whatever the number of sites mapped concurrently: its
# connection's memory_limit then bounds the refresh's large-table memory, and the DuckDB
# scan already uses every core (the sites' pandas-side work overlaps it)
_ONE_AT_A_TIME = threading.Lock()


def _utf8(path: Path, source, work_dir: Path) -> tuple[Path, list[str], int]:
    """The header (as the pandas reader finds it) and a UTF-8 file DuckDB can scan."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        codecs.lookup(source.encoding)
    except LookupError:
        raise InputError(f"{path}: unknown encoding {source.encoding!r}") from None
    with path.open(encoding=source.encoding, newline="", errors="strict") as fh:
        reader = csv.reader(fh, delimiter=source.delimiter, strict=True)
        header, line = None, 0
        try:
            for record in reader:
                line = reader.line_num
                if line >= source.header_row and any(h.strip() for h in record):
                    header = [h.strip().removeprefix("\ufeff").strip() for h in record]
                    break
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot read the header: {exc}") from None
    if header is None:
        raise InputError(f"{path}: no header row (expected on line {source.header_row})")
    check_header(path, header)
    if codecs.lookup(source.encoding).name == "utf-8":
        return path, header, line
    out = work_dir / f"{path.stem}.utf8.csv"
    try:
        with path.open(encoding=source.encoding, newline="") as src, out.open("w", encoding="utf-8", newline="") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not valid {source.encoding} at byte {exc.start} "
                         f"(set `encoding:` for this source)") from None
    return out, header, line


def _line_count(path: Path) -> int:
    n, last = 0, b"\n"
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


def _run(con, mapping, tname, path, csv_path, header, header_line, work_dir, key, patients, causes,
         identifiers, shared, cutoff) -> SqlTable:
    table = common_schema()[tname]
    tmap = mapping.tables[tname]
    source = mapping.sources[tmap.source]
    label = path.name
    site = mapping.site_id
    specs = dict(tmap.columns)
    needed = {s.from_ for s in specs.values() if s.from_} | {s.unit_from for s in specs.values() if s.unit_from}
    needed |= set(tmap.where or {})
    missing = sorted(needed - set(header))
    if missing:
        raise ConfigError(f"{mapping.path}: tables.{tname}: source {tmap.source!r} ({label}) has no "
                          f"column(s) {missing}; it has {sorted(header)}")
    src_cols = {h: f"s{i}" for i, h in enumerate(header)}
    columns = "{" + ", ".join(f"'s{i}': 'VARCHAR'" for i in range(len(header))) + "}"
    scan = (f"read_csv({sc.lit(str(csv_path))}, header=false, skip={header_line}, delim={sc.lit(source.delimiter)}, "
            f"quote='\"', escape='\"', all_varchar=true, auto_detect=false, columns={columns}, "
            f"null_padding=false, strict_mode=true)")
    # every cell empty or spaces (trim strips Unicode spaces, not tabs): one trim of the cells
    # joined, only for a row where no cell starts with an ASCII character other than a space,
    # which trim would keep (1.25M rows: 0.60 -> 0.13 s CPU)
    cells = [f"s{i}" for i in range(len(header))]
    kept = " OR ".join(f"coalesce(ascii({c}) BETWEEN 1 AND 127 AND ascii({c}) <> 32, FALSE)" for c in cells)
    blank = f"CASE WHEN {kept} THEN FALSE ELSE trim(concat({', '.join(cells)})) = '' END"
    raw = ", ".join(f"{sc.missing_to_null(src_cols[h])} AS {src_cols[h]}" for h in sorted(needed))
    where = " AND ".join(sc.one_of(sc.norm(src_cols[c]), [convert.norm_text(a) for a in allowed])
                         for c, allowed in (tmap.where or {}).items()) or "TRUE"

    # layer 1 (`b`): each column's source value, through its code list (a joined table);
    # layer 2 (`p`): each column parsed once; layer 3: value, rule, shown value, expected
    joins, inner, mid, values, outer = [], ["_row", "_used"], ["*"], ["*"], ["_used", "_row"]
    for i, (col, spec) in enumerate(specs.items()):
        raw_base = sc.lit(str(spec.value)) if spec.value is not None else src_cols[spec.from_]
        if spec.value is not None and str(spec.value).strip() in sc.MISSING:
            raw_base = "NULL"
        c = table.column(col)
        fmts = mapping.formats_for(spec)
        b, pcol = f"b{i}", f"p{i}"
        if spec.codes:
            frame = pd.DataFrame(list(load_codes(mapping.site_dir / spec.codes).items()), columns=["k", "v"])
            con.register(f"codes{i}", frame)
            joins.append(f"LEFT JOIN codes{i} ON codes{i}.k = {sc.norm(raw_base)}")
            inner += [f"CASE WHEN codes{i}.k IS NOT NULL THEN {sc.missing_to_null(f'codes{i}.v')} END AS {b}",
                      f"({raw_base} IS NOT NULL AND codes{i}.k IS NULL) AS u{i}", f"{sc.norm(raw_base)} AS r{i}"]
        else:
            inner.append(f"{raw_base} AS {b}")
        comp = sc.column(c, spec, b, source.decimal, fmts, pcol)
        mid.append(f"{comp.parsed} AS {pcol}")
        rule, shown, expected = comp.rule, comp.shown, comp.expected
        if spec.codes:  # UNKNOWN_CODE while mapping: the shown value is the source value
            rule = f"CASE WHEN u{i} THEN 'UNKNOWN_CODE' ELSE {rule} END"
            shown = f"CASE WHEN u{i} THEN r{i} ELSE {shown} END"
            expected = f"CASE WHEN u{i} THEN {sc.lit(spec.codes)} ELSE {expected} END"
        # the shown value and the expected text are only read for a row that broke the rule:
        # computed for those rows alone (DuckDB evaluates a CASE branch on its matching rows only)
        ruled = sc.ident(col + "__rule")
        values += [f"{comp.value} AS {sc.ident(col)}", f"{rule} AS {ruled}"]
        outer += [sc.ident(col), ruled,
                  f"CASE WHEN {ruled} IS NOT NULL THEN {shown} END AS {sc.ident(col + '__shown')}",
                  f"CASE WHEN {ruled} IS NOT NULL THEN {expected} END AS {sc.ident(col + '__exp')}"]
    lab = tname == "lab" and "value" in specs
    units = ""
    if lab:
        vspec = specs["value"]
        raw_value = src_cols[vspec.from_] if vspec.from_ else sc.lit(vspec.value)
        if "source_value" not in specs:
            inner.append(f"{sc.norm(raw_value)} AS _sv")
            outer.append("_sv AS source_value")
        if "source_unit" not in specs:
            inner.append(f"{src_cols[vspec.unit_from] if vspec.unit_from else sc.lit(vspec.unit)} AS _su")
            outer.append("_su AS source_unit")
        # as etl.compile.compiler._collect: convert to the analyte's canonical unit, or TYPE_MISMATCH on source_unit
        con.register("units", pd.DataFrame([(s, t, f) for (s, t), f in convert.UNITS.items()],
                                           columns=["su", "tu", "factor"]))
        con.register("analyte_unit", pd.DataFrame(list(code_attr("analyte", "unit").items()),
                                                  columns=["code", "unit"]))
        units = """,
          u AS (SELECT o.* REPLACE (
                CASE WHEN o.value IS NULL OR a.unit IS NULL OR o.source_unit IS NULL THEN o.value
                     WHEN u.factor IS NULL THEN NULL ELSE o.value * u.factor END AS value),
                (o.value IS NOT NULL AND a.unit IS NOT NULL AND o.source_unit IS NOT NULL
                 AND u.factor IS NULL) AS _unit_err,
                a.unit AS _target_unit
            FROM o LEFT JOIN analyte_unit a ON a.code = o.analyte
            LEFT JOIN units u ON u.su = o.source_unit AND u.tu = a.unit)"""
    # one scan of the file, materialized once (DuckDB spills it to work_dir beyond its memory_limit):
    # every check below and the loaded rows' COPY read this table, never the CSV again
    # the file is read in order (a row keeps its line number: WITH ORDINALITY, one thread) into
    # `r` as text alone; the conversions below then run over `r` on every core
    con.execute(f"CREATE TEMP TABLE r AS SELECT CAST(ordinality AS BIGINT) + {header_line} AS _row, "
                f"* EXCLUDE (ordinality) FROM {scan} WITH ORDINALITY")
    con.execute(f"""
        CREATE TEMP TABLE m AS (
          WITH src AS (SELECT _row, ({blank}) AS _blank, {raw} FROM r),
          kept AS (SELECT _row, coalesce({where}, FALSE) AS _used, * EXCLUDE (_row, _blank) FROM src WHERE NOT _blank),
          b AS (SELECT {', '.join(inner)} FROM kept {' '.join(joins)}),
          p AS (SELECT {', '.join(mid)} FROM b),
          v AS (SELECT {', '.join(values)} FROM p),
          o AS (SELECT {', '.join(outer)} FROM v){units}
          SELECT * FROM {'u' if lab else 'o'})""")
    con.execute("DROP TABLE r")
    rows_read = con.execute("SELECT count(*) FROM m").fetchone()[0]
    n_blank_ok = _line_count(csv_path) - header_line
    if rows_read != n_blank_ok:
        _verify_positions(con, scan, header_line, n_blank_ok, path)
    return _pass2(con, mapping, tname, label, site, work_dir, key, patients, causes, identifiers,
                  shared, rows_read, lab, cutoff)


def _verify_positions(con, scan: str, header_line: int, lines: int, path: Path) -> None:
    """Blank-only lines are fine (skipped, numbers kept); anything else shifts line numbers."""
    total = con.execute(f"SELECT count(*) FROM {scan}").fetchone()[0]
    if total != lines:
        raise NotSqlable(f"{path}: blank or multi-line records; row numbers need the line-by-line reader")


def _privacy(con, table) -> list[tuple]:
    """CELL_TOO_LONG (`schemas.cell_limits`) and ID_CONFUSABLE (`schemas.id_text`) over `t2`, as
    on every other table: SQL narrows down to the few candidate cells, the rules' own
    functions decide and word the finding. Rows as `rf`'s columns."""
    have = {d[0] for d in con.execute("SELECT * FROM t2 LIMIT 0").description}
    out = []
    limit = int(catalog()[cell_limits.RULE].limit)
    for col in (c.name for c in table.columns if c.type == "string" and c.name in have):
        q = sc.ident(col)
        for row, lid, text in con.execute(f"SELECT _row, local_id, {q} FROM t2 WHERE length({q}) > {limit} "
                                          "ORDER BY _row").fetchall():
            shown, detail = cell_limits.shown(text), f"{len(text):,}"
            out.append((row, cell_limits.RULE, col, shown, "", detail, None if col == id_text.COLUMN else lid))
    if id_text.COLUMN in have:   # an id of printable ASCII only is always plain (id_text.problem)
        ids = [v for (v,) in con.execute("SELECT DISTINCT local_id FROM t2 WHERE regexp_matches(local_id, '[^ -~]')"
                                         ).fetchall()]
        why = {v: id_text.problem(v) for v in ids}
        why = {v: w for v, w in why.items() if w}
        if why:
            rows = con.execute("SELECT _row, local_id FROM t2 WHERE list_contains($ids, local_id) ORDER BY _row",
                               {"ids": sorted(why)}).fetchall()
            out += [(row, id_text.RULE, id_text.COLUMN, lid, "", why[lid], lid) for row, lid in rows]
    return out


def _pass2(con, mapping, tname, label, site, work_dir, key, patients, causes, identifiers,
           shared, rows_read, lab, cutoff) -> SqlTable:
    table = common_schema()[tname]
    specs = mapping.tables[tname].columns
    # columns of the table the mapping does not fill are NULL, as in the pandas path
    have = set(specs) | ({"source_value", "source_unit"} if lab else set())
    fill = ", ".join(f"NULL AS {sc.ident(c.name)}" for c in table.columns
                     if c.name not in have and c.name != "site_id")
    # the used rows, typed and unit-converted (`m` already holds the lab unit conversion): a view,
    # not a copy of the table
    extra = "" if lab else ", FALSE AS _unit_err, NULL AS _target_unit"
    con.execute(f"CREATE TEMP VIEW t2 AS SELECT *, {sc.lit(site)} AS site_id{', ' + fill if fill else ''}{extra} "
                "FROM m WHERE _used")
    unit_err = "_unit_err" if lab else "FALSE"
    # a file shared with pandas-path tables: etl.validate.quarantine.resolve finds its unmapped rows
    unmapped = con.execute("SELECT _row FROM m WHERE NOT _used AND NOT $shared ORDER BY _row",
                           {"shared": shared}).fetchdf()["_row"]
    parts = []
    lid = "local_id"
    for col in specs:
        parts.append(f"SELECT _row, {sc.ident(col + '__rule')} AS rule_id, {sc.lit(col)} AS column_name, "
                     f"{sc.ident(col + '__shown')} AS value, {sc.ident(col + '__exp')} AS expected, '' AS detail, "
                     f"{lid} AS local_id FROM t2 WHERE {sc.ident(col + '__rule')} IS NOT NULL")
    if lab:
        parts.append(f"SELECT _row, 'TYPE_MISMATCH', 'source_unit', source_unit, "
                     f"'a unit convertible to ' || _target_unit || ' (got ' || {sc.py_repr('source_unit')} || ')', "
                     f"'', {lid} FROM t2 WHERE _unit_err")
    # the pandera model of the table, run in DuckDB; a column the conversion already flagged is not reported twice
    pf = pd.DataFrame([(f.key, f.rule_id, f.column, None if f.value is None else str(f.value), f.expected)
                       for f in failures(con, "t2", tname, key="_row")],
                      columns=["_row", "rule_id", "column_name", "value", "expected"]).astype(
        {"_row": "int64", "rule_id": object, "column_name": object, "value": object, "expected": object})
    con.register("pf", pf)
    flagged = {c: f"t2.{sc.ident(c + '__rule')} IS NOT NULL" for c in specs}
    if lab:
        flagged["value"] = f"{flagged.get('value', 'FALSE')} OR {unit_err}"
    reported = ("CASE pf.column_name " + " ".join(f"WHEN {sc.lit(c)} THEN {e}" for c, e in flagged.items())
                + " ELSE FALSE END") if flagged else "FALSE"
    parts.append(f"SELECT pf._row, pf.rule_id, pf.column_name, pf.value, pf.expected, '', t2.{lid} "
                 f"FROM pf JOIN t2 USING (_row) WHERE pf.rule_id = 'GRADE_OUT_OF_SCALE' OR NOT ({reported})")
    # the catalog's date and value limits (schemas.limits), which pandera's model does not carry
    for chk in sc.limit_checks(table, cutoff):
        reported = [f"{sc.ident(chk.column + '__rule')} IS NULL"] if chk.column in specs else []
        if chk.column == "value" and lab:
            reported.append(f"NOT {unit_err}")
        cond = " AND ".join([f"({chk.failing})"] + reported)
        parts.append(f"SELECT _row, {sc.lit(chk.rule_id)}, {sc.lit(chk.column)}, {chk.value}, {chk.expected}, '', "
                     f"{lid} FROM t2 WHERE {cond}")
    # the cross-table rules of schemas.rules that this table takes part in, over the same SQL
    tables = rules.Site(con, {tname: "t2"}, key="_row", row="_row")
    found = [(k, rule, col, "", "", detail, lid) for k, rule, col, detail, lid in rules.duplicates(tables, tname)]
    if patients is not None:
        con.register("patients", pd.DataFrame({"local_id": sorted(patients)}, dtype=object))
        tables = rules.Site(con, {"patient": "patients", tname: "t2"}, key="_row", row="_row")
        found += [(f.row_id, f.rule_id, f.column, f.value, "", "", f.local_id) for f in rules.orphans(tables)]
    found += _privacy(con, table)
    con.register("rf", pd.DataFrame(found, columns=["_row", "rule_id", "column_name", "value", "expected", "detail",
                                                    "local_id"], dtype=object).astype({"_row": "int64"}))
    parts.append("SELECT * FROM rf")
    con.execute("CREATE TEMP TABLE f AS " + " UNION ALL ".join(parts))
    # HOOK (GX Data Docs, dataset checks): the mapped rows before quarantine, masked and sampled in SQL
    pre = prequarantine.from_duckdb(con, "t2", "SELECT _row FROM f", tname,
                                    prequarantine.Masker(identifiers, lambda lid: study_id(key, site, lid)))
    # the patient cascade (etl.validate.quarantine.resolve): exact copies of a quarantined patient go with it
    con.register("causes", pd.DataFrame(list(causes.items()), columns=["local_id", "detail"], dtype=object))
    con.execute(f"DELETE FROM f WHERE {sc.one_of('rule_id', sorted(NO_CASCADE))} "
                "AND local_id IN (SELECT local_id FROM causes)")
    con.execute("""INSERT INTO f SELECT t2._row, 'CASCADE_PATIENT', '', '', '', c.detail, t2.local_id
                   FROM t2 JOIN causes c ON c.local_id = t2.local_id
                   WHERE t2._row NOT IN (SELECT _row FROM f)""")
    sev = pd.DataFrame([(r, c.severity) for r, c in catalog().items()], columns=["rule_id", "severity"])
    con.register("sev", sev)
    msg = "CASE f.rule_id " + " ".join(f"WHEN {sc.lit(r)} THEN {sc.message(r)}" for r in catalog()) + " END"
    srcs = source_columns(mapping, tname)
    each = ("CASE c " + " ".join(f"WHEN {sc.lit(c)} THEN {sc.lit(s)}" for c, s in srcs.items())
            + " ELSE '' END") if srcs else "''"   # a duplicate names several columns: a,b -> their sources
    src = (f"coalesce(array_to_string(list_filter(list_transform(string_split(f.column_name, ','), lambda c: {each}), "
           "lambda x: x <> ''), ', '), '')")
    quarantine = con.execute(f"""
        SELECT {sc.lit(site)} AS site_id, f.local_id, {sc.lit(label)} AS source_file,
               CAST(f._row AS BIGINT) AS source_row,
               {sc.lit(tname)} AS target_table, f.rule_id, sev.severity, f.column_name, {src} AS source_column,
               coalesce(f.value, '') AS value, {msg} AS message
        FROM f JOIN sev USING (rule_id)""").fetchdf()
    con.execute("CREATE TEMP TABLE bad AS SELECT DISTINCT f._row FROM f JOIN sev USING (rule_id) "
                "WHERE sev.severity = 'error'")
    bad_rows = "SELECT _row FROM bad"
    if len(unmapped):
        quarantine = pd.concat([quarantine, pd.DataFrame(unmapped_records(site, label, list(unmapped)))],
                               ignore_index=True)
    quarantine = mask_identifiers(quarantine, identifiers)
    # pseudonymize: HMAC study ids for the distinct local ids, joined in
    ids = con.execute("SELECT DISTINCT local_id FROM t2 ANTI JOIN bad USING (_row) WHERE local_id IS NOT NULL"
                      ).fetchdf()["local_id"]
    con.register("sid", pd.DataFrame({"local_id": ids, "study_id": [study_id(key, site, str(v)) for v in ids]}))
    # written once, in the warehouse's layout and types: the site cache moves this very file
    cols = layout.file_columns(layout.clinical_columns(tname))
    have = {"study_id", "source_file", "source_row"} | {c.name for c in table.columns if c.name != "local_id"}
    parquet = work_dir / f"{tname}.parquet"
    con.execute(f"""COPY (SELECT {layout.typed_select(cols, have)} FROM (
                        SELECT sid.study_id, {sc.lit(label)} AS source_file, _row AS source_row, t2.*
                        FROM t2 ANTI JOIN bad USING (_row) JOIN sid USING (local_id))
                    ORDER BY source_row) TO {sc.lit(str(parquet))} (FORMAT PARQUET)""")
    loaded = con.execute(f"SELECT count(*) FROM read_parquet({sc.lit(str(parquet))})").fetchone()[0]
    res = SqlTable(tname, label, parquet, quarantine[QUARANTINE_COLUMNS], rows_read, rows_loaded=int(loaded),
                   pre_quarantine=pre)
    if shared:
        res.used = set(con.execute("SELECT _row FROM t2").fetchdf()["_row"].astype(int))
        res.bad = set(con.execute(bad_rows).fetchdf()["_row"].astype(int))
    else:
        n_bad = con.execute("SELECT count(*) FROM bad").fetchone()[0] + len(unmapped)
        res.file_counts = {"rows_read": rows_read, "rows_loaded": rows_read - n_bad, "rows_quarantined": n_bad}
    return res
