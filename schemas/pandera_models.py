"""One pandera model per common-schema table, generated from `common.yml` + the catalog,
run inside DuckDB through pandera's ibis backend.

Field and row rules live here: required fields, code sets, plausible ranges, grade
within its scale. Each pandera check is named after its catalog rule id. Every check of
a table's model is first counted in one SQL aggregate of the checks' own expressions
(`counted`: compiled by ibis once per table shape, then plain SQL for every site); a
table where none fails is done. Otherwise pandera validates the site's DuckDB table in
SQL against the failing part of the model (`lazy=True`, `failing_part`) and must find
exactly those checks failing; then only for a check that fails are its failing rows
fetched, by the table's row key, so a failure maps straight back to a quarantine
finding. Nothing is copied to pandas but the failing rows.

The checks are written as ibis expressions over the whole table (not pandera's builtin
`isin`/`in_range`, whose ibis output carries no row key), so the same expression that
pandera ran selects the failing rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache

import duckdb
import pandas as pd

from schemas.catalog import Finding, finding, rule_for
from schemas.model import Table, code_attr, codes, common_schema

GRADE_RULE = "GRADE_OUT_OF_SCALE"
UNKNOWN_SCALE_MAX = 5.0   # a scale without max_grade is checked against ASTCT's 0..5


@dataclass(frozen=True)
class Failure:
    """One failing row of one rule: `key` is the row key's value (`_row_id`, or `_row`)."""

    key: int
    rule_id: str
    column: str
    value: object
    expected: str
    local_id: str | None


def _isin(values: list[str]):
    return lambda d: d.table[d.key].isin(values)


def _between(lo: float, hi: float):
    return lambda d: d.table[d.key].between(lo, hi)


def _grade_in_scale(d):
    import ibis

    t = d.table
    top = ibis.cases(*((t.source_scale == s, float(m)) for s, m in code_attr("grading_scale", "max_grade").items()
                       if m), else_=UNKNOWN_SCALE_MAX)
    return t.source_grade.isnull() | ((t.source_grade >= 0) & (t.source_grade <= top))


def warm_models() -> None:
    """Build every table's model (importing pandera's ibis backend) in the calling thread."""
    import ibis.backends.duckdb  # noqa: F401 - loaded here, not first in a site thread

    for name in common_schema():
        table_model(name)


@cache
def table_model(name: str):
    """The pandera (ibis) model of one table."""
    import pandera.ibis as pa

    table: Table = common_schema()[name]
    columns = {}
    for col in table.columns:
        checks = []
        if col.codelist:
            checks.append(pa.Check(_isin(codes(col.codelist)), name="UNKNOWN_CODE"))
        if col.min is not None or col.max is not None:
            lo = col.min if col.min is not None else float("-inf")
            hi = col.max if col.max is not None else float("inf")
            checks.append(pa.Check(_between(lo, hi), name=rule_for("field_range", name, col.name, "OUT_OF_RANGE")))
        columns[col.name] = pa.Column(nullable=not col.required, checks=checks, required=True, title=col.description)
    frame_checks = [pa.Check(_grade_in_scale, name=GRADE_RULE)] if name == "toxicity" else []
    return pa.DataFrameSchema(columns, checks=frame_checks, name=name, strict=False)


def failures(con: duckdb.DuckDBPyConnection, relation: str, name: str, key: str = "_row_id") -> list[Failure]:
    """Validate the DuckDB relation `relation` against `name`'s model; the failing rows,
    ordered by key, then by the model's column and check order."""
    import ibis
    from pandera.api.ibis.types import IbisData
    from pandera.errors import SchemaErrorReason, SchemaErrors

    counts = counted(con, relation, name)
    if not any(counts.values()):
        return []
    t = ibis.duckdb.from_connection(con).table(relation)
    model = failing_part(name, frozenset(k for k, n in counts.items() if n))
    try:
        model.validate(t, lazy=True)
        return []
    except SchemaErrors as exc:
        errors = exc.schema_errors
    table = common_schema()[name]
    lid = t["local_id"] if "local_id" in t.columns else ibis.null().cast("string")
    failing: set[tuple[str | None, str]] = set()
    for err in errors:
        if err.reason_code not in (SchemaErrorReason.DATAFRAME_CHECK, SchemaErrorReason.SERIES_CONTAINS_NULLS):
            raise RuntimeError(f"pandera model {name!r} could not run on {relation}: {err}")
        check = err.check if isinstance(err.check, str) else err.check.name
        failing.add((err.schema.name if err.schema is not model else None, check))
    if failing != {k for k, n in counts.items() if n}:
        raise RuntimeError(f"pandera model {name!r}: pandera found {sorted(failing, key=str)}, the aggregate "
                           f"{sorted((k for k, n in counts.items() if n), key=str)}")
    out: list[Failure] = []
    order = {c: i for i, c in enumerate(table.column_names)}
    for column, check in sorted(failing, key=lambda x: (order.get(x[0], -1), x[1])):
        if column is None:  # the frame check: grade within its scale
            bad = t.filter(~_grade_in_scale(IbisData(t, None)))
            rows = bad.select(k=bad[key], v=bad.source_grade, s=bad.source_scale, lid=lid).to_pandas()
            maxes = code_attr("grading_scale", "max_grade")
            out += [Failure(int(r.k), GRADE_RULE, "source_grade", _py(r.v), f"{r.s} (0..{maxes.get(r.s, '?')})",
                            _py(r.lid)) for r in rows.itertuples()]
            continue
        col = table.column(column)
        if check == "not_nullable":
            bad, rule, expected = t.filter(t[column].isnull()), "REQUIRED_MISSING", ""
        else:
            fn = next(c for c in model.columns[column].checks if c.name == check)._check_fn
            bad = t.filter(~fn(IbisData(t, column)) & t[column].notnull())
            rule, expected = check, (col.codelist if check == "UNKNOWN_CODE" else col.range_text)
        rows = bad.select(k=bad[key], v=bad[column], lid=lid).to_pandas()
        out += [Failure(int(r.k), rule, column, _py(r.v), expected, _py(r.lid)) for r in rows.itertuples()]
    return sorted(out, key=lambda f: f.key)


@lru_cache(maxsize=256)
def failing_part(name: str, failing: frozenset) -> object:
    """`name`'s model cut to the checks the aggregate found failing (`(column or None,
    check)`): pandera validates and reports exactly those. Every other check of the model
    counted 0 failing rows in `counted`, which ran the same check functions."""
    import pandera.ibis as pa

    model = table_model(name)
    columns = {}
    for column, spec in model.columns.items():
        checks = [c for c in spec.checks if (column, c.name) in failing]
        nulls = (column, "not_nullable") in failing
        if checks or nulls:
            columns[column] = pa.Column(nullable=not nulls, checks=checks, required=True, title=spec.title)
    frame_checks = [c for c in model.checks if (None, c.name) in failing]
    return pa.DataFrameSchema(columns, checks=frame_checks, name=name, strict=False)


def counted(con: duckdb.DuckDBPyConnection, relation: str, name: str) -> dict[tuple[str | None, str], int]:
    """The model's checks counted in one SQL aggregate: (column or None, check) -> failing
    rows. A table where all are 0 passes `model.validate` (the same expressions, which also
    need every column); pandera then runs only on tables with failures, for its report.
    This saves pandera's one query per column and check on the clean tables. The SQL is
    compiled by ibis once per table, relation name and column types, then run as plain SQL
    (every site's table of the same shape runs the same statement)."""
    shape = tuple(tuple(r[:2]) for r in con.execute(f"DESCRIBE {relation}").fetchall())
    sql, keys = _counts_sql(con, relation, name, shape)
    if not keys:
        return {}
    row = con.execute(sql).fetchall()[0]
    return {k: int(row[i] or 0) for i, k in enumerate(keys)}


_COUNTS_SQL: dict[tuple, tuple[str, tuple]] = {}


def _counts_sql(con, relation: str, name: str, shape: tuple) -> tuple[str, tuple]:
    key = (relation, name, shape)
    if key not in _COUNTS_SQL:   # a race computes it twice, the same
        import ibis

        t = ibis.duckdb.from_connection(con).table(relation)
        exprs = failing_exprs(t, table_model(name))
        agg = t.aggregate(**{f"n{i}": e.cast("int64").sum() for i, e in enumerate(exprs.values())})
        _COUNTS_SQL[key] = (str(ibis.to_sql(agg, dialect="duckdb")), tuple(exprs)) if exprs else ("", ())
    return _COUNTS_SQL[key]


def failing_exprs(t, model) -> dict:
    """(column or None, check) -> the ibis expression true on the rows failing that check."""
    from pandera.api.ibis.types import IbisData

    exprs = {}
    for column, spec in model.columns.items():
        if not spec.nullable:
            exprs[(column, "not_nullable")] = t[column].isnull()
        for chk in spec.checks:
            exprs[(column, chk.name)] = ~chk._check_fn(IbisData(t, column)) & t[column].notnull()
    for chk in model.checks:
        exprs[(None, chk.name)] = ~chk._check_fn(IbisData(t, None))
    return exprs


def validate_table(name: str, frame: pd.DataFrame, reported: set[tuple[int, str]],
                   con: duckdb.DuckDBPyConnection | None = None) -> list[Finding]:
    """The model run over a mapped frame registered in DuckDB; findings except those
    already reported for the same row and column (by the mapper, or by harmonization: a
    grade out of its scale is one GRADE_OUT_OF_SCALE, not also OUT_OF_RANGE)."""
    con = con or duckdb.connect()
    con.register("_pandera_frame", frame)
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE _pandera_table AS SELECT "
                    f"{common_schema()[name].typed_select(set(frame.columns), ('_row_id',))} FROM _pandera_frame")
        found = failures(con, "_pandera_table", name)
    finally:
        con.unregister("_pandera_frame")
        con.execute("DROP TABLE IF EXISTS _pandera_table")
    return [finding(f.rule_id, name, f.key, f.column, f.value, local_id=f.local_id, expected=f.expected)
            for f in found if (f.key, f.column) not in reported]


def _py(v: object) -> object:
    """A fetched value as the mapper shows it (None for NULL; numpy scalars as Python)."""
    if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA or v is pd.NaT:
        return None
    return v.item() if hasattr(v, "item") else v
