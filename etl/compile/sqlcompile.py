"""Compile a mapping's column specs and the check catalog into DuckDB SQL expressions.

The conversions of `etl.compile.compiler` and the catalog's message templates as SQL.
The field rules themselves (required, codelist, min/max of `schemas/common.yml`) are the
pandera models (`schemas.pandera_models`), run in DuckDB; the conversions come from the mapping's column specs and
the registered conversions in `etl.compile.convert` (date formats, `UNITS`, missing-value
markers). Each compiled column yields four expressions: the converted value, the rule
broken while converting (or NULL), the value shown in the finding, and what was expected.
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import date

from etl.compile import convert
from etl.compile.mapping import ColumnSpec
from schemas.catalog import catalog
from schemas.limits import sql_limit_checks
from schemas.model import Column, Table

MISSING = convert.MISSING_MARKERS   # etl.compile.convert.is_missing, as SQL


def lit(v: object) -> str:
    """A SQL literal."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int | float):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


MISSING_LONGEST = max(len(v.encode()) for v in MISSING)


def missing_to_null(expr: str) -> str:
    t = f"trim({expr})"
    # a cell longer than every marker is never one (most cells): tested first. The markers
    # are a constant list (a constant IN list is planned as a mark join: 1.6x the cost per
    # cell). `expr` is written 3 times: it may itself be a compiled expression, and the
    # statement's size is what DuckDB spends binding it. 1.25M rows x 5 columns: 1.15 s CPU
    # with an OR of the 7 equalities, 0.61 s like this
    markers = "[" + ", ".join(lit(v) for v in MISSING) + "]"
    return f"CASE WHEN strlen({t}) > {MISSING_LONGEST} THEN {t} WHEN NOT list_contains({markers}, {t}) THEN {t} END"


def one_of(expr: str, values) -> str:
    """`expr IN (values)` as a scalar test (DuckDB plans a long IN list as a join)."""
    return f"list_contains([{', '.join(lit(v) for v in values)}], {expr})"


def norm(expr: str) -> str:
    """etl.compile.convert.norm_text in SQL: strip a '.0' from whole numbers written as floats."""
    # the regex only where it can match: most cells do not end in '.0' (RE2's `$` is the text's end)
    return f"CASE WHEN ends_with({expr}, '.0') THEN regexp_replace({expr}, '^(-*[0-9]+)\\.0$', '\\1') ELSE {expr} END"


def py_repr(expr: str) -> str:
    """Python's repr() of a string, as the catalog's `{value!r}` renders it."""
    bs = f"replace({expr}, '\\', '\\\\')"
    return (f"CASE WHEN {expr} IS NULL THEN 'None' WHEN contains({expr}, '''') AND NOT contains({expr}, '\"') "
            f"THEN '\"' || {bs} || '\"' ELSE '''' || replace({bs}, '''', '\\''') || '''' END")


def message(rule_id: str, column: str = "f.column_name", value: str = "f.value", expected: str = "f.expected",
            detail: str = "f.detail") -> str:
    """The catalog's message template for `rule_id` as a SQL string expression over the
    finding's columns (`{value!r}` renders as Python's repr, as `Check.format` does)."""
    exprs = {"column": column, "value": f"coalesce({value}, 'None')", "expected": f"coalesce({expected}, '')",
             "detail": f"coalesce({detail}, '')"}
    check = catalog()[rule_id]
    parts = []
    for literal, fld, spec, conv in string.Formatter().parse(check.message):
        if literal:
            parts.append(lit(literal))
        if fld is None:
            continue
        if fld == "limit":  # a number of the catalog, not of the row
            parts.append(lit(format(check.limit, spec)))
        else:
            parts.append(py_repr(value) if fld == "value" and conv == "r" else exprs[fld])
    return "(" + " || ".join(parts or ["''"]) + ")"


def number_text(expr: str, decimal: str) -> str:
    s = f"replace(replace({expr}, chr(160), ''), ' ', '')"
    if decimal == ",":
        return (f"CASE WHEN length({s}) - length(replace({s}, ',', '')) = 1 AND contains({s}, '.') "
                f"THEN replace(replace({s}, '.', ''), ',', '.') ELSE replace({s}, ',', '.') END")
    return s


@dataclass(frozen=True)
class Compiled:
    """One target column. `parsed` is computed once (projected as column `p` by the caller);
    value, rule (NULL = fine), shown value and expected text refer to `base` and `p`."""

    parsed: str
    value: str
    rule: str
    shown: str
    expected: str


def column(col: Column, spec: ColumnSpec, base: str, decimal: str, formats: list[str], p: str,
           text_source: bool = True) -> Compiled:
    """Convert `base` (a VARCHAR column: source value after missing-marker and code-list
    handling, NULL when missing) to the column's type, as `etl.compile.convert` defines them.
    `text_source`: the cell was text in the file (CSV), where a decimal comma is declared."""
    shown = norm(base)
    if col.type == "string":
        return Compiled(shown, p, "NULL", p, "''")
    if col.type in ("float", "int"):
        parsed = f"TRY_CAST({number_text(base, decimal)} AS DOUBLE)"
        checks = [(f"{p} IS NULL", convert.EXPECT_NUMBER), (f"NOT isfinite({p})", convert.EXPECT_FINITE)]
        value = p
        if decimal == "," and text_source:
            checks.insert(0, (f"regexp_matches(replace({base}, ' ', ''), {lit(convert.AMBIGUOUS_DECIMAL)})",
                              convert.EXPECT_DECIMAL_COMMA, "AMBIGUOUS_DECIMAL"))
        if col.type == "int":
            checks += [(f"{p} <> floor({p})", convert.EXPECT_WHOLE),
                      (f"abs({p}) >= {convert.INT_LIMIT}", convert.EXPECT_PLAUSIBLE_INT)]
            value = f"CAST({p} AS BIGINT)"
        elif spec.unit and col.unit:
            factor = convert.UNITS.get((spec.unit, col.unit))
            if factor is None:
                checks.append(("TRUE", convert.expect_unit(col.unit, spec.unit)))
            else:
                value = f"({p} * {factor!r})"
        return cases(base, parsed, value, "TYPE_MISMATCH", checks, shown)
    if col.type == "bool":
        b = f"lower(regexp_replace(trim({base}), '\\.0$', ''))"
        parsed = (f"CASE WHEN {one_of(b, sorted(convert.TRUE))} THEN TRUE "
                  f"WHEN {one_of(b, sorted(convert.FALSE))} THEN FALSE END")
        return cases(base, parsed, p, "TYPE_MISMATCH", [(f"{p} IS NULL", convert.EXPECT_BOOL)], shown)
    if col.type == "date":
        parsed = date_parse(base, formats)
        checks = [(f"{p} IS NULL", " or ".join(formats)),
                 (f"NOT ({p} BETWEEN DATE '{convert.DATE_MIN}' AND DATE '{convert.DATE_MAX}')",
                  f"a date between {convert.DATE_MIN} and {convert.DATE_MAX}")]
        return cases(base, parsed, p, "DATE_UNPARSEABLE", checks, shown)
    raise ValueError(f"no SQL conversion for type {col.type}")


def date_parse(base: str, formats: list[str]) -> str:
    """`base` parsed with the first matching format (etl.compile.convert.parse_date), or NULL."""
    tries = []
    for fmt in formats:
        if fmt == "excel_serial":
            n = f"TRY_CAST({number_text(base, '.')} AS DOUBLE)"
            tries.append(f"CASE WHEN {n} >= 1 AND {n} < {convert.EXCEL_SERIAL_MAX} AND {n} = floor({n}) "
                         f"THEN DATE '{convert.EXCEL_EPOCH}' + CAST({n} AS INTEGER) END")
        else:
            tries.append(f"CAST(try_strptime({base}, {lit(convert.DATE_FORMATS.get(fmt, fmt))}) AS DATE)")
    return f"coalesce({', '.join(tries)})" if len(tries) > 1 else tries[0]


def cases(base: str, parsed: str, value: str, rule: str, checks: list[tuple], shown: str) -> Compiled:
    """A conversion: value when no check fails, else the first failing check's expected text
    and rule. A check is (condition, expected) or (condition, expected, its own rule id)."""
    err = " OR ".join(f"({c[0]})" for c in checks)
    own = [c for c in checks if len(c) > 2]
    which = ("CASE " + " ".join(f"WHEN {c[0]} THEN {lit(c[2] if len(c) > 2 else rule)}" for c in checks)
             + " END") if own else lit(rule)
    rule_sql = f"CASE WHEN {base} IS NOT NULL AND ({err}) THEN {which} END"
    expected = "CASE " + " ".join(f"WHEN {c[0]} THEN {lit(c[1])}" for c in checks) + " END"
    return Compiled(parsed, f"CASE WHEN {base} IS NOT NULL AND NOT ({err}) THEN {value} END", rule_sql, shown,
                    expected)


@dataclass(frozen=True)
class FieldCheck:
    """A field rule of one column, compiled: the failing-row condition and its finding."""

    rule_id: str
    column: str
    failing: str        # SQL condition on the mapped row (value already typed)
    value: str          # SQL expression of the value shown
    expected: str       # SQL expression


def limit_checks(table: Table, cutoff: date | None = None) -> list[FieldCheck]:
    """The catalog's date and value limits for one table (`schemas.limits`; `cutoff`: the
    study cut-off date). The other field rules are pandera's (`schemas.pandera_models`)."""
    return [FieldCheck(*c) for c in sql_limit_checks(table, cutoff, ident)]
