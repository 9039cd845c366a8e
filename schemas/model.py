"""The common schema as typed objects, loaded from `schemas/common.yml` and code lists.

This is the one source for column types, units, ranges and code sets. The pandera
models (`schemas.pandera_models`), the GX suites and the warehouse data dictionary are
all generated from it.
"""
from __future__ import annotations

import copy
import csv
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

HERE = Path(__file__).parent
TYPES = {"string", "int", "float", "bool", "date"}
SQL_TYPES = {"string": "VARCHAR", "int": "BIGINT", "float": "DOUBLE", "bool": "BOOLEAN", "date": "TIMESTAMP"}
LINEAGE = ("source_file", "source_row")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool = False
    description: str = ""
    unit: str | None = None
    codelist: str | None = None
    min: float | None = None
    max: float | None = None
    key: bool = False
    unknown_ok: bool = False          # a site may declare this required date unknown (a warning)
    local_column: str | None = None   # keeps a site's own value where it maps to a class code

    @property
    def range_text(self) -> str:
        """The plausible range as a finding's `expected`: '0..100' or '>= 0'."""
        if self.max is None:
            return f">= {self.min:g}"
        lo = self.min if self.min is not None else float("-inf")
        return f"{lo:g}..{self.max:g}"


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    on_error: str
    columns: tuple[Column, ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def keys(self) -> list[str]:
        return [c.name for c in self.columns if c.key]

    def typed_select(self, have: set[str], lineage: tuple[str, ...] = ()) -> str:
        """A SQL select list: `lineage` columns, then this table's columns that are in `have`,
        each cast to its type (a column pandas left all-None would otherwise have no type)."""
        return ", ".join([*(f'"{c}"' for c in lineage if c in have),
                          *(f'CAST("{c.name}" AS {SQL_TYPES[c.type]}) AS "{c.name}"'
                            for c in self.columns if c.name in have)])

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name} has no column {name}")


def raw_common_schema() -> dict:
    """common.yml as parsed YAML (`{"tables": {table: {"columns": ...}}}`), for generators
    that walk its keys (the GX suites); `common_schema()` is the typed view of the same file.
    A fresh copy each call: the file is parsed once per process."""
    return copy.deepcopy(_parsed_common())


@cache
def _parsed_common() -> dict:
    # carpool's own file (not a site's): libyaml's safe loader where PyYAML has it, same result
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load((HERE / "common.yml").read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a safe loader


@cache
def common_schema() -> dict[str, Table]:
    """All tables of the common schema, in dependency order (patient first)."""
    raw = raw_common_schema()
    tables = {}
    for tname, t in raw["tables"].items():
        cols = []
        for cname, c in t["columns"].items():
            if c["type"] not in TYPES:
                raise ValueError(f"schemas/common.yml: {tname}.{cname}: unknown type {c['type']}")
            cols.append(Column(name=cname, **c))
        tables[tname] = Table(tname, t["description"], t["on_error"], tuple(cols))
    return tables


@cache
def codelist(name: str) -> tuple[dict[str, str], ...]:
    """Rows of `schemas/codelists/<name>.csv` as dicts (column `code` is the code)."""
    path = HERE / "codelists" / f"{name}.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        return tuple(csv.DictReader(fh))


def codes(name: str) -> list[str]:
    return [row["code"] for row in codelist(name)]


def class_codes(name: str) -> list[str]:
    """The codes of a code list a site may map its local values to (column `is_class`)."""
    return [row["code"] for row in codelist(name) if (row.get("is_class") or "").lower() == "true"]


def code_attr(name: str, attr: str) -> dict[str, str]:
    """A code list's extra column as {code: value}, e.g. code_attr('analyte', 'unit')."""
    return {row["code"]: row[attr] for row in codelist(name)}
