"""The mapped tables as they were *before* quarantine: what GX Data Docs and the dataset checks see.

After quarantine every row left passes, so docs built from loaded rows can only say
"Succeeded". This module takes each mapped table just before the load/quarantine split and
keeps, per table:
- `rows`: every mapped row (the export's size for that table; the row-count check);
- `non_null`: per common-schema column, how many rows have a value (the completeness check);
- `sample`: every row with a finding (up to `FAILING_MAX`) plus a repeatable random sample of
  the passing rows (up to `PASSING_MAX`), so GX counts the real failures while staying cheap.
  Its values are masked (etl.validate.phi): the local patient id becomes its keyed hash
  (the study id it would get), and any text value containing an identifier of the site
  (name, MRN, phone, birth date) becomes `***`. Lineage columns are dropped.

The engine calls one hook per table, whichever path mapped it:
- `from_frame(table, frame, failing_row_ids, masker)`: a pandas frame (`etl.site.run_site`);
- `from_duckdb(con, relation, failing_rows_sql, table, masker)`: a DuckDB relation of the
  mapped rows (`etl.compile.duckpath`), sampled in SQL; the table never comes to pandas.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from etl.validate.phi import MASK, matcher_for
from schemas.model import common_schema

FAILING_MAX = 50_000   # rows with a finding kept in the sample (all of them, up to this)
PASSING_MAX = 10_000   # rows without a finding sampled beside them
SEED = 7               # the passing sample is repeatable


@dataclass(frozen=True)
class TableProfile:
    """One mapped table before quarantine (see the module docstring)."""

    table: str
    rows: int
    non_null: dict[str, int]
    failing_rows: int
    sample: pd.DataFrame | Path          # a Path once saved in the site cache

    @property
    def sampled(self) -> bool:
        return self.sample_rows < self.rows

    @property
    def sample_rows(self) -> int:
        if isinstance(self.sample, Path):
            import pyarrow.parquet as pq

            return pq.read_metadata(self.sample).num_rows
        return len(self.sample)

    def frame(self) -> pd.DataFrame:
        return pd.read_parquet(self.sample) if isinstance(self.sample, Path) else self.sample

    def counts(self) -> dict:
        """What the site cache keeps beside the sample file."""
        return {"rows": self.rows, "non_null": self.non_null, "failing_rows": self.failing_rows}


class Masker:
    """Masks one site's identifiers in a sample: `hash_id` turns a local id into its study id."""

    def __init__(self, identifiers: Iterable[str], hash_id: Callable[[str], str]):
        self.matcher = matcher_for(identifiers)
        self.hash_id = hash_id

    def mask(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Each distinct value is looked at once (a sample repeats codes, dates and ids)."""
        frame = frame.copy()
        for col in frame.columns:
            values = frame[col]
            if col == "local_id":
                ids = {v: self.hash_id(str(v)) for v in pd.unique(values) if not _blank(v)}
                frame[col] = [ids.get(v, v) for v in values]
            elif values.dtype == object:
                hit = {v for v in pd.unique(values) if isinstance(v, str) and self.matcher.found_in(v)}
                if hit:
                    frame[col] = values.mask(values.isin(hit), MASK)
        return frame


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and v != v) or v is pd.NA


def _schema_columns(table: str, have: Iterable[str]) -> list[str]:
    have = set(have)
    return [c.name for c in common_schema()[table].columns if c.name in have]


def from_frame(table: str, frame: pd.DataFrame, failing_row_ids: set[int], masker: Masker) -> TableProfile:
    """A pandas-path table (`_row_id` identifies its rows; `failing_row_ids`: rows with a finding)."""
    cols = _schema_columns(table, frame.columns)
    failing = frame["_row_id"].isin(failing_row_ids) if "_row_id" in frame else pd.Series(False, index=frame.index)
    bad = frame[failing].head(FAILING_MAX)
    good = frame[~failing]
    if len(good) > PASSING_MAX:
        good = good.sample(PASSING_MAX, random_state=SEED).sort_index()
    sample = pd.concat([bad, good]).sort_index()[cols].reset_index(drop=True)
    non_null = {c: int(frame[c].notna().sum()) for c in cols}
    return TableProfile(table, len(frame), non_null, int(failing.sum()), masker.mask(sample))


def from_duckdb(con, relation: str, failing_rows_sql: str, table: str, masker: Masker,
                row: str = "_row") -> TableProfile:
    """A DuckDB-path table: `relation` holds the mapped rows (column `row` identifies them),
    `failing_rows_sql` selects the `row` values that have a finding."""
    have = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
    cols = _schema_columns(table, have)
    quoted = ", ".join(f'"{c}"' for c in cols)
    counts = ", ".join(f'count("{c}")' for c in cols)
    stats = con.execute(f"SELECT count(*), {counts} FROM {relation}").fetchone()
    n_bad = con.execute(f"SELECT count(*) FROM {relation} WHERE {row} IN ({failing_rows_sql})").fetchone()[0]
    sample = con.execute(f"""
        SELECT {row} AS __r, {quoted} FROM (
          (SELECT * FROM {relation} WHERE {row} IN ({failing_rows_sql}) ORDER BY {row} LIMIT {FAILING_MAX})
          UNION ALL
          (SELECT * FROM (SELECT * FROM {relation} WHERE {row} NOT IN ({failing_rows_sql}))
           USING SAMPLE reservoir({PASSING_MAX} ROWS) REPEATABLE ({SEED})))
        ORDER BY __r""").fetchdf().drop(columns="__r")
    for c in cols:
        if common_schema()[table].column(c).type == "date":
            sample[c] = pd.to_datetime(sample[c], cache=False)
    non_null = {c: int(n) for c, n in zip(cols, stats[1:], strict=True)}
    return TableProfile(table, int(stats[0]), non_null, int(n_bad), masker.mask(sample))
