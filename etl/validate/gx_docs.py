"""Validate one site's tables with Great Expectations and write Data Docs.

The tables are the site's mapped rows *before* quarantine (etl.validate.prequarantine:
failing rows plus a sample of the others, identifiers masked), so the docs show the
failures the quarantine then acts on. The suites come from the check catalog and
common.yml (schemas.expectations). The docs open offline (etl.validate.docs_offline).

GX runs on pandas batches, not on the DuckDB warehouse: GX 1.x fails on
DuckDB through SQLAlchemy (IndexError in resolve_metric_bundle, GX issues
10738 and 11579).

The context is ephemeral (in-memory stores) with a single Data Docs site
whose ``TupleFilesystemStoreBackend`` is rooted at ``docs_dir``, so nothing is
written outside it (no ``gx/`` folder in the cwd, no temp docs site). Progress
bars and analytics are switched off in the context config.

Each table runs as its own ``ValidationDefinition`` (a ``Checkpoint`` passes
one ``batch_parameters`` to all of its definitions, so it cannot carry seven
DataFrames); the docs are built once at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import great_expectations as gx
import pandas as pd
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

from etl.validate.docs_offline import make_offline, write_index
from schemas.expectations import build_suites, load_common_schema

DOCS_SITE = "carpool"
OUTCOME_COLUMNS = (
    "table", "expectation", "column", "rule_id", "success", "unexpected_count", "element_count",
)  # fmt: skip


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's result on one table."""

    table: str
    expectation: str
    column: str | None
    rule_id: str | None
    success: bool
    unexpected_count: int | None
    element_count: int | None


@dataclass(frozen=True)
class GXReport:
    """What a site's GX validation found, and where its Data Docs are."""

    site_id: str
    success: bool
    outcomes: tuple[ExpectationOutcome, ...]
    docs_index: Path
    skipped_tables: tuple[str, ...] = ()

    @property
    def summary(self) -> pd.DataFrame:
        """One row per (table, expectation), in ``OUTCOME_COLUMNS`` order."""
        rows = [[getattr(o, c) for c in OUTCOME_COLUMNS] for o in self.outcomes]
        return pd.DataFrame(rows, columns=list(OUTCOME_COLUMNS))

    def failures(self) -> tuple[ExpectationOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.success)

    def outcome(self, table: str, expectation: str, column: str | None) -> ExpectationOutcome:
        """The outcome of ``expectation`` (e.g. ``expect_column_values_to_be_in_set``)."""
        for o in self.outcomes:
            if (o.table, o.expectation, o.column) == (table, expectation, column):
                return o
        raise KeyError((table, expectation, column))


def _context(docs_dir: Path) -> gx.data_context.EphemeralDataContext:
    site = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(docs_dir),
        },
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites={DOCS_SITE: site},
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def _outcomes(table: str, result) -> list[ExpectationOutcome]:
    out = []
    for r in result.results:
        config = r.expectation_config
        meta = config.meta or {}
        out.append(
            ExpectationOutcome(
                table=table,
                expectation=config.type,
                column=meta.get("column", config.kwargs.get("column")),
                rule_id=meta.get("rule_id"),
                success=bool(r.success),
                unexpected_count=r.result.get("unexpected_count"),
                element_count=r.result.get("element_count"),
            )
        )
    return out


def validate_site(
    site_id: str,
    tables: dict[str, pd.DataFrame],
    docs_dir: Path,
    common_schema: dict | None = None,
    run_time: datetime | None = None,
    counts: dict[str, dict] | None = None,
    notes: list[str] | tuple[str, ...] = (),
    quality: pd.DataFrame | None = None,
) -> GXReport:
    """Run each table's suite on its DataFrame; write Data Docs under ``docs_dir``.

    Tables of the schema missing from ``tables`` are listed in
    ``skipped_tables`` (not a failure); extra tables are ignored. ``run_time``
    stamps the docs (GX uses the current time when it is None). ``counts``: per table,
    ``rows`` (mapped), ``failing_rows`` and ``sample_rows`` for the index (default: the
    frame's length); ``notes`` (how tables were sampled) and ``quality`` (the site's
    dataset checks, warehouse.quality) go on the index page too.
    """
    docs_dir = Path(docs_dir).resolve()
    schema = common_schema if common_schema is not None else load_common_schema()
    suites = build_suites(schema)
    run_id = RunIdentifier(run_name=site_id, run_time=run_time)
    context = _context(docs_dir)
    source = context.data_sources.add_pandas(name=site_id)
    outcomes: list[ExpectationOutcome] = []
    success = True
    listed: list[dict] = []
    for table, suite in suites.items():
        if table not in tables:
            continue
        batch = source.add_dataframe_asset(name=table).add_batch_definition_whole_dataframe(table)
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(
                name=f"{site_id}.{table}", data=batch, suite=context.suites.add(suite)
            )
        )
        result = definition.run(
            batch_parameters={"dataframe": tables[table]},
            result_format={"result_format": "SUMMARY"},
            run_id=run_id,
        )
        success = success and bool(result.success)
        found = _outcomes(table, result)
        outcomes.extend(found)
        n = len(tables[table])
        listed.append({"table": table, "success": bool(result.success), "evaluated": len(found),
                       "failed": sum(not o.success for o in found),
                       **{"rows": n, "failing_rows": 0, "sample_rows": n, **(counts or {}).get(table, {})}})
    context.build_data_docs(site_names=[DOCS_SITE])
    make_offline(docs_dir)
    write_index(docs_dir, site_id, listed, list(notes), quality)
    return GXReport(
        site_id=site_id,
        success=success,
        outcomes=tuple(outcomes),
        docs_index=docs_dir / "index.html",
        skipped_tables=tuple(t for t in suites if t not in tables),
    )
