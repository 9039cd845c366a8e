"""Apply a site mapping to raw source tables: common-schema rows plus findings.

Every target row keeps its lineage: `_row_id` (unique within the table), `_source_file`,
`_source_row` (first source row) and `_source_rows` (all `(file, row)` it came from, so
per-file reconciliation can count source rows). A value that cannot be converted is set
to null and reported as a finding (DATE_UNPARSEABLE, TYPE_MISMATCH, UNKNOWN_CODE); the
validation layer then decides, by severity, whether the row is loaded or quarantined.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pandas as pd

from etl.compile import convert
from etl.compile.mapping import ColumnSpec, SiteMapping, TableMap
from etl.errors import ConfigError
from etl.read.readers import ROW, RawTable
from schemas.catalog import Finding, finding
from schemas.model import Column, Table, code_attr, common_schema

LINEAGE = ["_row_id", "_source_file", "_source_row", "_source_rows"]


@dataclass
class MappedTable:
    name: str
    frame: pd.DataFrame
    reported: set[tuple[int, str]] = field(default_factory=set)  # (row_id, column) already flagged


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


class Mapper:
    """Maps one site's raw tables; collects findings as it goes."""

    def __init__(self, mapping: SiteMapping, raw: dict[str, RawTable]):
        self.m = mapping
        self.raw = raw
        self.schema = common_schema()
        self.findings: list[Finding] = []

    # -- public -------------------------------------------------------------------------
    def map_all(self) -> dict[str, MappedTable]:
        return {t: self.map_table(t, tm) for t, tm in self.m.tables.items()}

    def map_table(self, tname: str, tmap: TableMap) -> MappedTable:
        table = self.schema[tname]
        raw = self.raw[tmap.source]
        self._check_columns(tname, tmap, raw)
        frame = raw.frame
        if tmap.where:
            keep = pd.Series(True, index=frame.index)
            for col, allowed in tmap.where.items():
                keep &= frame[col].map(convert.norm_text).isin({convert.norm_text(a) for a in allowed})
            frame = frame[keep]
        out = MappedTable(tname, pd.DataFrame())
        if tmap.pivot:
            rows = self._pivot_rows(tname, table, tmap, raw, frame, out)
        else:
            groups = tmap.melt or [None]
            skips = {id(g): {convert.norm_text(x) for x in g.skip} for g in groups if g is not None}
            rows = []
            for rec in frame.to_dict("records"):
                for g in groups:
                    if g is not None and (convert.is_missing(rec.get(g.when))
                                          or convert.norm_text(rec.get(g.when)) in skips[id(g)]):
                        continue
                    specs = {**tmap.columns, **(g.columns if g else {})}
                    rows.append(self._row(tname, table, specs, rec, raw, out, [rec[ROW]], len(rows)))
        out.frame = _typed(table, rows)
        if tmap.distinct:
            out.frame = self._distinct(tname, table, out)
        return out

    # -- rows ---------------------------------------------------------------------------
    def _row(self, tname: str, table: Table, specs: dict[str, ColumnSpec], rec: dict, raw: RawTable,
             out: MappedTable, source_rows: list[int], row_id: int) -> dict:
        row: dict = {"_row_id": row_id, "_source_file": raw.label, "_source_row": source_rows[0],
                     "_source_rows": tuple((raw.label, r) for r in source_rows)}
        for col, spec in specs.items():
            row[col] = self._cell(tname, table.column(col), spec, rec, raw, out, row_id, _local(rec, specs))
        if tname == "lab" and "value" in specs:
            self._lab_units(row, specs["value"], rec, out, tname)
        return row

    def _cell(self, tname: str, column: Column, spec: ColumnSpec, rec: dict, raw: RawTable,
              out: MappedTable, row_id: int, local_id: str | None) -> object:
        """One converted value; a conversion problem becomes a finding and a null."""
        try:
            return self._value(column, spec, rec, raw)
        except _CellError as err:
            out.reported.add((row_id, column.name))
            self.findings.append(finding(err.rule, tname, row_id, column.name, err.value,
                                         expected=err.expected, local_id=local_id))
            return None

    def _value(self, column: Column, spec: ColumnSpec, rec: dict, raw: RawTable) -> object:
        decimal = self.m.sources[raw.name].decimal
        if spec.derive:
            return self._derive(column, spec, rec, decimal)
        v = spec.value if spec.value is not None else rec.get(spec.from_)
        if convert.is_missing(v):
            return None
        if spec.from_ and raw.value_labels.get(spec.from_) and spec.codes is None and column.codelist:
            v = raw.value_labels[spec.from_].get(v, v)
        if spec.codes:
            table = load_codes(self.m.site_dir / spec.codes)
            key = convert.norm_text(v)
            if key not in table:
                raise _CellError("UNKNOWN_CODE", v, f"{spec.codes}")
            v = table[key]
            if convert.is_missing(v):
                return None
        try:
            if column.type == "date":
                if spec.relative_to:
                    ref = convert.parse_date(rec.get(spec.relative_to), self.m.formats_for(None))
                    return convert.storable_date(convert.add_days(ref, convert.parse_int(v, decimal)))
                return convert.storable_date(convert.parse_date(v, self.m.formats_for(spec)))
            if column.type == "int":
                return convert.parse_int(v, decimal)
            if column.type == "float":
                x = convert.parse_number(v, decimal)
                if spec.unit and column.unit:
                    x = convert.convert_unit(x, spec.unit, column.unit)
                return x
            if column.type == "bool":
                return convert.parse_bool(v)
        except ValueError as exc:
            rule = "DATE_UNPARSEABLE" if column.type == "date" else "TYPE_MISMATCH"
            raise _CellError(rule, v, str(exc)) from None
        return convert.norm_text(v)

    def _derive(self, column: Column, spec: ColumnSpec, rec: dict, decimal: str) -> object:
        a = spec.args
        try:
            if spec.derive == "per_kg":
                total = rec.get(a["total"])
                weight = rec.get(a["weight_kg"])
                if convert.is_missing(total) or convert.is_missing(weight):
                    return None
                return convert.per_kg(convert.parse_number(total, decimal),
                                      convert.parse_number(weight, decimal), spec.unit or "10^6 cells")
        except KeyError as exc:
            raise ConfigError(f"{self.m.path}: derive {spec.derive} needs argument {exc}") from None
        except ValueError as exc:
            raise _CellError("TYPE_MISMATCH", rec.get(a.get("total")), str(exc)) from None
        if spec.derive == "age_at_infusion":
            return None  # filled by harmonize once the infusion date is known
        raise ConfigError(f"{self.m.path}: unknown derivation {spec.derive!r} (known: per_kg, age_at_infusion)")

    def _lab_units(self, row: dict, spec: ColumnSpec, rec: dict, out: MappedTable, tname: str) -> None:
        raw_value = rec.get(spec.from_) if spec.from_ else spec.value
        row.setdefault("source_value", None if convert.is_missing(raw_value) else convert.norm_text(raw_value))
        unit = rec.get(spec.unit_from) if spec.unit_from else spec.unit
        row.setdefault("source_unit", None if convert.is_missing(unit) else str(unit).strip())
        target = code_attr("analyte", "unit").get(row.get("analyte") or "")
        if row.get("value") is None or target is None or row["source_unit"] is None:
            return
        try:
            row["value"] = convert.convert_unit(row["value"], row["source_unit"], target)
        except ValueError as exc:
            row["value"] = None
            out.reported.add((row["_row_id"], "value"))
            self.findings.append(finding("TYPE_MISMATCH", tname, row["_row_id"], "source_unit",
                                         row["source_unit"], expected=str(exc), local_id=row.get("local_id")))

    # -- shapes -------------------------------------------------------------------------
    def _pivot_rows(self, tname, table, tmap, raw, frame, out) -> list[dict]:
        key, on = tmap.pivot.key, tmap.pivot.event_column
        rows = []
        groups: dict = {}  # records by key in first-seen order, null keys left out (as groupby does)
        for rec in frame.to_dict("records"):
            if not pd.isna(rec[key]):
                groups.setdefault(rec[key], []).append(rec)
        for recs in groups.values():
            merged, used = {}, []
            for col, spec in tmap.columns.items():
                if spec.when is None:
                    continue
                hits = [r for r in recs if convert.norm_text(r[on]) == convert.norm_text(spec.when)]
                if hits:
                    merged[col] = hits[0]
                    used += [r[ROW] for r in hits]
            rec0 = recs[0]
            src = sorted(set(used)) or [rec0[ROW]]
            row_id = len(rows)
            row = {"_row_id": row_id, "_source_file": raw.label, "_source_row": src[0],
                   "_source_rows": tuple((raw.label, r) for r in src)}
            for col, spec in tmap.columns.items():
                rec = merged.get(col, rec0 if spec.when is None else None)
                if rec is None:
                    row[col] = None
                    continue
                row[col] = self._cell(tname, table.column(col), spec, rec, raw, out, row_id,
                                      _local(rec0, tmap.columns))
            rows.append(row)
        return rows

    def _distinct(self, tname: str, table: Table, out: MappedTable) -> pd.DataFrame:
        """Collapse repeated rows of one patient; differing repeats are a conflict."""
        frame = out.frame
        value_cols = [c for c in table.column_names if c in frame.columns]
        keep = []
        for _, group in frame.groupby("local_id", sort=False, dropna=False):
            first = group.iloc[0].to_dict()
            distinct = group[value_cols].astype(str).drop_duplicates()
            first["_source_rows"] = tuple(r for rows in group["_source_rows"] for r in rows)
            if len(distinct) > 1:
                cols = [c for c in value_cols if group[c].astype(str).nunique() > 1]
                self.findings.append(finding("DUPLICATE_CONFLICT", tname, int(first["_row_id"]), ",".join(cols),
                                             "", local_id=first.get("local_id"),
                                             detail=f"{len(group)} rows for one patient disagree on {', '.join(cols)}"))
            keep.append(first)
        return pd.DataFrame(keep, columns=frame.columns).astype(frame.dtypes.to_dict())

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


class _CellError(Exception):
    def __init__(self, rule: str, value: object, expected: str):
        super().__init__(rule)
        self.rule, self.value, self.expected = rule, convert.norm_text(value), expected


def _local(rec: dict, specs: dict[str, ColumnSpec]) -> str | None:
    spec = specs.get("local_id")
    return convert.norm_text(rec.get(spec.from_)) if spec and spec.from_ else None


DTYPES = {"string": object, "int": "Int64", "float": "float64", "bool": "boolean", "date": "datetime64[ns]"}


def _typed(table: Table, rows: list[dict]) -> pd.DataFrame:
    cols = LINEAGE + table.column_names
    frame = pd.DataFrame(rows, columns=cols) if rows else pd.DataFrame(columns=cols)
    for c in table.columns:
        if c.type == "date":
            frame[c.name] = pd.to_datetime(frame[c.name])
        elif c.type == "float":
            frame[c.name] = pd.to_numeric(frame[c.name]).astype("float64")
        else:
            frame[c.name] = frame[c.name].astype(DTYPES[c.type])
    frame["_row_id"] = frame["_row_id"].astype("int64")
    return frame
