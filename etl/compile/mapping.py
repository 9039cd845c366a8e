"""The per-center mapping file (`sites/<center>/mapping.yml`) as a typed model.

A mapping says, declaratively, how one center's export becomes common-schema tables:
which files to read and how (`sources`), where the direct identifiers are
(`identifiers`), and for each target table where its rows and columns come from
(`tables`). Column specs name registered conversions (date formats, units, code lists,
derivations); they never hold code. Unknown keys are rejected with file, line and key.

Three row shapes cover the exports carpool has met:
- plain rows: one target row per (filtered) source row;
- `melt`: several column groups of a wide row become several target rows
  (one-row-per-patient exports: a CRS group and an ICANS group -> two toxicity rows);
- `pivot`: several event rows of one patient become one target row
  (event-level exports: death / relapse / last-contact events -> one outcome row).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from etl.compile.convert import DATE_FORMATS
from etl.errors import ConfigError
from etl.yamlfile import load_model

if TYPE_CHECKING:
    from etl.config import Config, SiteConfig

Scalar = str | int | float | bool


def _date_formats(v: Any) -> Any:
    """A date format is a registered name (iso, dmy, ...), excel_serial, or a strftime pattern."""
    for fmt in [v] if isinstance(v, str) else (v or []):
        known = fmt in DATE_FORMATS or fmt == "excel_serial"
        if isinstance(fmt, str) and not known and "%" not in fmt:
            raise ValueError(f"unknown date format {fmt!r} (known: {', '.join(DATE_FORMATS)}, "
                             "excel_serial, or a strftime pattern such as %d.%m.%Y)")
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Source(_Strict):
    """One file (or one sheet of a workbook) of the export."""

    path: str = Field(description="File path relative to the site's export folder.")
    format: Literal["csv", "excel", "sav", "redcap"]
    encoding: str = "utf-8"
    delimiter: str = ","
    decimal: Literal[".", ","] = "."
    sheet: str | None = Field(None, description="Excel: sheet name.")
    header_row: int = Field(1, ge=1, description="Row number (as a person sees it) of the header.")
    value_labels: bool = Field(False, description="SPSS: replace codes by their value labels.")
    dictionary: str | None = Field(None, description="REDCap: the data dictionary CSV.")
    ignore: dict[str, str] = Field(
        default_factory=dict, description="Source columns deliberately not mapped: column -> reason. A refresh "
                                          "lists every other unmapped column.")

    @field_validator("ignore")
    @classmethod
    def _reasons(cls, v: dict[str, str]) -> dict[str, str]:
        blank = [c for c, why in v.items() if not str(why or "").strip()]
        if blank:
            raise ValueError(f"give a reason for each ignored column: {blank}")
        return v


class Unknown(_Strict):
    """A required date the site declares unknown: loaded as null with a warning, not quarantined."""

    reason: str = Field(min_length=3, description="Why the date is unknown (shown in every finding).")
    values: list[str] = Field(
        default_factory=list, description="Source values that mean 'unknown' (e.g. REDCap's missing-data code "
                                          "UNK); empty: a blank cell.")


class ColumnSpec(_Strict):
    """Where one target column comes from, and how its value is converted."""

    from_: str | None = Field(None, alias="from", description="Source column.")
    value: Scalar | None = Field(None, description="A constant.")
    codes: str | None = Field(
        None, description="Code list CSV (source_value,target_value), relative to the site folder.")
    date: str | list[str] | None = Field(
        None, description="Date formats: iso, dmy, ymd_slash, excel_serial, or a strftime pattern.")
    relative_to: str | None = Field(
        None, description="Source column with the reference date; the value is days after it.")
    unit: str | None = Field(None, description="Source unit (converted to the canonical unit).")
    unit_from: str | None = Field(None, description="Source column holding each row's unit.")
    derive: str | None = Field(None, description="A registered derivation, e.g. per_kg, age_at.")
    args: dict[str, str] = Field(default_factory=dict, description="Derivation arguments (source columns).")
    when: str | None = Field(None, description="pivot only: the event value this column is taken from.")
    unknown: Unknown | None = Field(None, description="A required date the site declares unknown (common.yml "
                                                      "`unknown_ok`): rule DATE_UNKNOWN_DECLARED, a warning.")

    _known_dates = field_validator("date")(_date_formats)

    @model_validator(mode="after")
    def _one_origin(self) -> ColumnSpec:
        origins = [x for x in (self.from_, self.derive) if x is not None] + (
            ["value"] if self.value is not None else [])
        if len(origins) != 1:
            raise ValueError("give exactly one of from, value or derive")
        return self


def _column_specs(v: Any) -> Any:
    """Allow the shorthand `target: source_column`."""
    if isinstance(v, dict):
        return {k: ({"from": s} if isinstance(s, str) else s) for k, s in v.items()}
    return v


class _WithColumns(_Strict):
    """A block with a `columns:` map that allows the shorthand `target: source_column`."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and "columns" in data:
            data = {**data, "columns": _column_specs(data["columns"])}
        return data


class MeltGroup(_WithColumns):
    when: str = Field(description="Source column: the group yields a row only where it is filled.")
    skip: list[Scalar] = Field(default_factory=list, description="Values of `when` that mean no row (e.g. 0 = no CRS).")
    columns: dict[str, ColumnSpec]


class Pivot(_Strict):
    key: str = Field(description="Source column that identifies the patient.")
    event_column: str = Field(description="Source column holding the event type (`when:` values).")


class TableMap(_WithColumns):
    source: str = Field(description="Name of an entry in `sources`.")
    where: dict[str, list[Scalar]] | None = Field(
        None, description="Keep only rows whose column is one of these values.")
    distinct: bool = Field(False, description="Collapse repeated rows of one patient (denormalized exports).")
    columns: dict[str, ColumnSpec] = Field(default_factory=dict)
    melt: list[MeltGroup] | None = None
    pivot: Pivot | None = None

    @model_validator(mode="after")
    def _shape(self) -> TableMap:
        if self.melt and self.pivot:
            raise ValueError("use either melt or pivot, not both")
        if self.pivot:
            missing = [k for k, c in self.columns.items() if c.when is None and c.from_ != self.pivot.key
                       and c.value is None and c.derive is None]
            if missing:
                raise ValueError(f"pivot columns need `when:` (the event they come from): {missing}")
        return self


class SiteRule(_Strict):
    """A plausibility rule of the check catalog instantiated with the site's own limit.
    The rule's type, severity, message and how-to-fix stay in schemas/checks.csv."""

    rule: str = Field(description="Catalog rule id whose type a site may use (schemas.site_rules.TUNABLE).")
    limit: float | None = Field(None, description="onset_window: days after infusion (only tighter than the "
                                                  "catalog's).")
    table: str | None = Field(None, description="site_limit: the common-schema table.")
    column: str | None = Field(None, description="site_limit: a numeric column of that table.")
    min: float | None = None
    max: float | None = None
    where: dict[str, list[Scalar]] | None = Field(None, description="Only rows whose column is one of these.")
    reason: str = ""

    @model_validator(mode="after")
    def _known(self) -> SiteRule:
        from schemas.site_rules import rule_problem

        problem = rule_problem(self)
        if problem:
            raise ValueError(problem)
        return self


class SiteQuality(_Strict):
    """The site's own quarantine threshold (overrides carpool.yml quality.max_quarantined_pct)."""

    max_quarantined_pct: float = Field(ge=0, le=100)
    reason: str = Field(min_length=3, description="Why this site's threshold differs from the study's.")


class Identifiers(_Strict):
    """Direct identifiers: read for pseudonymization and checks, never loaded."""

    source: str
    local_id: str
    columns: list[str] = Field(description="Every source column holding a direct identifier.")
    name: str | None = None
    birth_date: ColumnSpec | None = None


class SiteMapping(_Strict):
    site_id: str
    description: str = ""
    date_formats: list[str] = Field(default_factory=lambda: ["iso"])
    sources: dict[str, Source]
    identifiers: Identifiers
    tables: dict[str, TableMap]
    adapter: str | None = Field(None, description="Optional sites/<center>/adapter.py hook (exceptions only).")
    rules: list[SiteRule] = Field(default_factory=list, description="Site plausibility rules (catalog types, "
                                                                    "the site's limits).")
    quality: SiteQuality | None = None
    path: Path | None = Field(None, exclude=True)

    _known_dates = field_validator("date_formats")(_date_formats)

    @model_validator(mode="before")
    @classmethod
    def _birth_date_shorthand(cls, data: Any) -> Any:
        ids = data.get("identifiers") if isinstance(data, dict) else None
        if isinstance(ids, dict) and isinstance(ids.get("birth_date"), str):
            data = {**data, "identifiers": {**ids, "birth_date": {"from": ids["birth_date"]}}}
        return data

    @model_validator(mode="after")
    def _references(self) -> SiteMapping:
        from schemas.model import common_schema

        schema = common_schema()
        for tname, tmap in self.tables.items():
            if tname not in schema:
                raise ValueError(f"tables.{tname}: not a common-schema table ({', '.join(schema)})")
            if tmap.source not in self.sources:
                raise ValueError(f"tables.{tname}.source: {tmap.source!r} is not in sources")
            allowed = set(schema[tname].column_names)
            targets = set(tmap.columns) | {c for g in (tmap.melt or []) for c in g.columns}
            unknown = sorted(targets - allowed)
            if unknown:
                raise ValueError(f"tables.{tname}: unknown target columns {unknown}; "
                                 f"the {tname} table has {sorted(allowed)}")
            specs = list(tmap.columns.items()) + [x for g in (tmap.melt or []) for x in g.columns.items()]
            for cname, spec in specs:
                col = schema[tname].column(cname)
                if spec.unknown is not None and not (col.type == "date" and col.required and col.unknown_ok):
                    ok = [f"{t}.{c.name}" for t in schema.values() for c in t.columns if c.unknown_ok]
                    raise ValueError(f"tables.{tname}.{cname}: `unknown:` is only for the required dates no "
                                     f"analysis needs ({', '.join(ok)})")
        if self.identifiers.source not in self.sources:
            raise ValueError(f"identifiers.source: {self.identifiers.source!r} is not in sources")
        return self

    def formats_for(self, spec: ColumnSpec | None) -> list[str]:
        """The date formats a column is parsed with: its own `date:`, else the site's."""
        if spec is not None and spec.date:
            return [spec.date] if isinstance(spec.date, str) else list(spec.date)
        return list(self.date_formats)

    @property
    def site_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()


def load_mapping(path: Path) -> SiteMapping:
    path = Path(path).resolve()
    mapping = load_model(path, SiteMapping)
    return mapping.model_copy(update={"path": path})


def site_mapping(cfg: Config, site: SiteConfig) -> SiteMapping:
    """The mapping carpool.yml names for `site`, checked: its site_id, no open scaffold
    questions, every path inside its folder (what a refresh reads before hashing the inputs)."""
    from etl.onboarding.todos import refuse_todos
    from etl.read.paths import confine

    mapping = load_mapping(cfg.resolve(site.mapping))
    if mapping.site_id != site.id:
        raise ConfigError(f"{mapping.path}: site_id {mapping.site_id!r} does not match {cfg.path} site {site.id!r}")
    refuse_todos(mapping)  # a scaffold draft's open questions: never load a guess
    confine(mapping, export_dir(cfg, site, mapping))
    return mapping


def quarantine_threshold(cfg: Config, mapping: SiteMapping) -> tuple[float, str]:
    """The site's quarantine threshold (percent of patients) and where it is set: the
    mapping's `quality.max_quarantined_pct`, else carpool.yml's `quality.max_quarantined_pct`."""
    if mapping.quality is not None:
        return mapping.quality.max_quarantined_pct, f"{mapping.path} quality.max_quarantined_pct"
    return cfg.quality.max_quarantined_pct, "quality.max_quarantined_pct"


def export_dir(cfg: Config, site: SiteConfig, mapping: SiteMapping) -> Path:
    return cfg.resolve(site.export_dir) if site.export_dir else mapping.site_dir
