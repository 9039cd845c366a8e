"""Great Expectations suites generated from the common schema.

``build_suites`` turns ``schemas/common.yml`` into one ``ExpectationSuite`` per
table. There is one generator per expectation *type* (column exists, not null,
in code list, between, row count, compound key unique); each reads the
column keys of common.yml and never knows about a particular table.

Running the suites and writing Data Docs is in ``etl/validate/gx_docs.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import great_expectations as gx
import great_expectations.expectations as gxe

from schemas.catalog import rule_for
from schemas.model import codes, raw_common_schema

Columns = dict[str, dict]
Generator = Callable[[str, Columns], Iterator[gxe.Expectation]]


load_common_schema = raw_common_schema  # the parsed common.yml, as the generators walk it


def _meta(table: str, column: str | None, rule_id: str | None = None) -> dict:
    return {"table": table, "column": column, "rule_id": rule_id}


def expect_columns_exist(table: str, columns: Columns) -> Iterator[gxe.Expectation]:
    for name in columns:
        yield gxe.ExpectColumnToExist(column=name, meta=_meta(table, name))


def expect_required_not_null(table: str, columns: Columns) -> Iterator[gxe.Expectation]:
    for name, spec in columns.items():
        if spec.get("required"):
            yield gxe.ExpectColumnValuesToNotBeNull(
                column=name, meta=_meta(table, name, "REQUIRED_MISSING")
            )


def expect_in_codelist(table: str, columns: Columns) -> Iterator[gxe.Expectation]:
    for name, spec in columns.items():
        if spec.get("codelist"):
            yield gxe.ExpectColumnValuesToBeInSet(
                column=name,
                value_set=codes(spec["codelist"]),
                meta=_meta(table, name, "UNKNOWN_CODE") | {"codelist": spec["codelist"]},
            )


def expect_in_range(table: str, columns: Columns) -> Iterator[gxe.Expectation]:
    for name, spec in columns.items():
        if "min" in spec or "max" in spec:
            yield gxe.ExpectColumnValuesToBeBetween(
                column=name,
                min_value=spec.get("min"),
                max_value=spec.get("max"),
                meta=_meta(table, name, rule_for("field_range", table, name, "OUT_OF_RANGE")),
            )


def expect_rows(table: str, columns: Columns) -> Iterator[gxe.Expectation]:
    yield gxe.ExpectTableRowCountToBeBetween(min_value=1, meta=_meta(table, None))


def expect_unique_key(table: str, columns: Columns) -> Iterator[gxe.Expectation]:
    key = [name for name, spec in columns.items() if spec.get("key")]
    if len(key) > 1:
        yield gxe.ExpectCompoundColumnsToBeUnique(
            column_list=key, meta=_meta(table, ", ".join(key), "DUPLICATE_CONFLICT")
        )
    elif key:
        yield gxe.ExpectColumnValuesToBeUnique(
            column=key[0], meta=_meta(table, key[0], "DUPLICATE_CONFLICT")
        )


GENERATORS: tuple[Generator, ...] = (
    expect_rows,
    expect_columns_exist,
    expect_required_not_null,
    expect_in_codelist,
    expect_in_range,
    expect_unique_key,
)


def build_suites(
    common_schema: dict, generators: tuple[Generator, ...] = GENERATORS
) -> dict[str, gx.ExpectationSuite]:
    """One suite per table of ``common_schema``, named after the table.

    Each expectation's ``meta`` names the table, column and the check-catalog
    rule it mirrors (``schemas/checks.csv``), so a failure can be reported
    in the same words as the pandera checks.
    """
    suites = {}
    for table, spec in common_schema["tables"].items():
        expectations = [e for generate in generators for e in generate(table, spec["columns"])]
        suites[table] = gx.ExpectationSuite(
            name=table, expectations=expectations, meta={"description": spec.get("description")}
        )
    return suites
