"""Cross-field and cross-table rules, as SQL over one site's tables in DuckDB.

One function per check *type* of the catalog (`schemas/checks.csv`): duplicates, orphan
rows, missing child records, date order, test records, MRD flag consistency, relapse
without CR and study eligibility; id text and limits come from `schemas.id_text` and
`schemas.limits`. A date-order check names `later,earlier` columns;
`earlier` is either a column of the same table or a per-patient reference date
(`infusion_date`, `cr_date`). The limits come from the catalog row. Each query returns
only the failing rows; they become `Finding`s with the catalog's message. None drops or
changes a row.

The site's tables are DuckDB relations named after the table (`Site.rel`), each with a
row key (`_row_id`), the row number a person sees (`_source_row`) and `local_id`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb
import pandas as pd

from schemas.catalog import Check, Finding, catalog, finding
from schemas.id_text import id_text_findings
from schemas.limits import limit_findings
from schemas.model import common_schema

TEST_NAME = re.compile(r"\btest\b|\bdummy\b|\bfake\b|测试|試験", re.IGNORECASE)
TEST_PREFILTER = "(?i)test|dummy|fake|测试|試験"   # a superset of TEST_NAME, as RE2 (no Unicode \b)
CHILD_RULES = {"infusion": "MISSING_INFUSION", "response": "MISSING_RESPONSE", "outcome": "MISSING_OUTCOME"}


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Site:
    """One site's tables in a DuckDB connection: table name -> relation name, and its columns."""

    con: duckdb.DuckDBPyConnection
    rel: dict[str, str]
    key: str = "_row_id"          # unique row key within a relation
    row: str = "_source_row"      # the row number a person sees
    cols: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self):
        for t, r in self.rel.items():
            self.cols.setdefault(t, {d[0] for d in self.con.execute(f"SELECT * FROM {r} LIMIT 0").description})

    def rows(self, sql: str) -> list[tuple]:
        return self.con.execute(sql).fetchall()


def register(tables: dict[str, pd.DataFrame], con: duckdb.DuckDBPyConnection | None = None) -> Site:
    """Mapped pandas frames as a `Site` (lineage columns other than `_source_row` left out)."""
    con = con or duckdb.connect()
    rel = {}
    for name, frame in tables.items():
        rel[name] = f"rules_{name}"
        con.register(f"{rel[name]}_frame", frame)
        # a table, not a view: the rules below scan it some 30 times, the frame is converted once
        con.execute(f"CREATE OR REPLACE TEMP TABLE {rel[name]} AS SELECT "
                    f"{common_schema()[name].typed_select(set(frame.columns), ('_row_id', '_source_row'))} "
                    f"FROM {rel[name]}_frame")
    return Site(con, rel)


def cross_table_findings(tables: dict[str, pd.DataFrame], names: pd.Series | None = None,
                         cutoff: date | None = None, con: duckdb.DuckDBPyConnection | None = None,
                         site_rules=()) -> list[Finding]:
    """All cross-field/cross-table findings for one site. `names`: local_id -> person name;
    `cutoff`: the study cut-off (rule DATE_AFTER_CUTOFF); `site_rules`: the site's own
    plausibility rules (mapping.yml `rules:`, `schemas.site_rules`)."""
    from schemas.site_rules import site_rule_findings

    site = register(tables, con)
    return (id_text_findings(tables) + limit_findings(tables, cutoff)
            + site_findings(site, names) + site_rule_findings(site, site_rules))


def site_findings(s: Site, names: pd.Series | None = None) -> list[Finding]:
    out: list[Finding] = []
    for name in s.rel:
        out += [finding(rule, name, k, col, "", local_id=lid, detail=detail)
                for k, rule, col, detail, lid in duplicates(s, name)]
    out += orphans(s)
    out += missing_children(s)
    refs = reference_dates(s)
    for check in catalog().values():
        if check.check_type == "date_order" and check.table in s.rel:
            out += date_order(s, check, refs)
    out += relapse_without_cr(s, refs)
    if "response" in s.rel:
        out += mrd_flag(s)
    if "patient" in s.rel:
        out += eligibility(s)
        if names is not None:
            out += test_records(s, names)
    return out


def duplicates(s: Site, name: str, where: str = "TRUE") -> list[tuple]:
    """(key, rule, column, detail, local_id) of rows sharing the table's natural key: all of
    them when their values differ (DUPLICATE_CONFLICT), else every copy after the first
    (DUPLICATE_EXACT). The repeated keys are counted first, in a statement of their own: most
    tables have none, and the statement that describes them (one aggregate per column) costs
    more to plan than the count costs to run. `where`: which rows take part (a SQL condition)."""
    table, rel, k, row = common_schema()[name], s.rel[name], q(s.key), q(s.row)
    keys = [q(c) for c in table.keys if c in s.cols[name]]
    values = [c for c in table.column_names if c in s.cols[name] and c not in table.keys]
    if not keys:
        return []
    known = " AND ".join(f"{c} IS NOT NULL" for c in keys)
    repeated = f"SELECT {', '.join(keys)} FROM {rel} WHERE {where} AND {known} GROUP BY ALL HAVING count(*) > 1"
    if not s.rows(f"SELECT EXISTS ({repeated})")[0][0]:
        return []
    on = " AND ".join(f"d.{c} = g.{c}" for c in keys)
    differ = " || ".join(f"CASE WHEN count(DISTINCT coalesce(CAST({q(v)} AS VARCHAR), chr(0))) > 1 "
                         f"THEN ',{v}' ELSE '' END" for v in values) or "''"
    shown = conflicting_values(table, values, k, row)
    sql = f"""
        WITH dups AS (SELECT * FROM {rel} t SEMI JOIN ({repeated}) d USING ({', '.join(keys)}) WHERE {where}),
             g AS (SELECT {', '.join(keys)}, ltrim({differ}, ',') AS differ, min({k}) AS first_key,
                          arg_min({row}, {k}) AS first_row,
                          string_agg(CAST({row} AS VARCHAR), ', ' ORDER BY {k}) AS rows, {shown} AS shown
                   FROM dups GROUP BY {', '.join(keys)})
        SELECT d.{k}, CASE WHEN g.differ <> '' THEN 'DUPLICATE_CONFLICT' ELSE 'DUPLICATE_EXACT' END,
               g.differ,
               CASE WHEN g.differ <> '' THEN 'same patient/key on source rows ' || g.rows || ' with different '
                    || g.shown
                    ELSE 'exact copy of source row ' || g.first_row || ', which is loaded' END,
               d.local_id
        FROM dups d JOIN g ON {on}
        WHERE g.differ <> '' OR d.{k} <> g.first_key
        ORDER BY g.first_key, d.{k}"""
    return s.rows(sql)


def conflicting_values(table, values: list[str], key: str, row: str) -> str:
    """An aggregate (over one group of duplicates) naming each column whose values differ,
    with the values side by side and the source row of each:
    `sex 'F' (row 3) vs 'M' (row 9); age_years 34 (row 3) vs 35 (row 9)`."""
    parts = []
    for v in values:
        cell = q(v)
        text = (f"strftime(CAST({cell} AS DATE), '%Y-%m-%d')" if table.column(v).type == "date"
                else f"CAST({cell} AS VARCHAR)")
        if table.column(v).type == "string":
            text = "chr(39) || " + text + " || chr(39)"
        each = f"coalesce({text}, '(blank)') || ' (row ' || CAST({row} AS VARCHAR) || ')'"
        parts.append(f"CASE WHEN count(DISTINCT coalesce(CAST({cell} AS VARCHAR), chr(0))) > 1 THEN '; {v} ' || "
                     f"string_agg({each}, ' vs ' ORDER BY {key}) ELSE '' END")
    return f"ltrim({' || '.join(parts) or chr(39) * 2}, '; ')"


def orphans(s: Site) -> list[Finding]:
    if "patient" not in s.rel:
        return []
    out = []
    for name, rel in s.rel.items():
        if name == "patient":
            continue
        rows = s.rows(f"SELECT {q(s.key)}, local_id FROM {rel} WHERE local_id IS NOT NULL AND local_id NOT IN "
                      f"(SELECT local_id FROM {s.rel['patient']} WHERE local_id IS NOT NULL) ORDER BY {q(s.key)}")
        out += [finding("ORPHAN_ROW", name, k, "local_id", lid, local_id=lid) for k, lid in rows]
    return out


def missing_children(s: Site) -> list[Finding]:
    if "patient" not in s.rel:
        return []
    out = []
    for child, rule in CHILD_RULES.items():
        if child in s.rel:
            rows = s.rows(f"SELECT {q(s.key)}, local_id FROM {s.rel['patient']} WHERE local_id IS NOT NULL AND "
                          f"local_id NOT IN (SELECT local_id FROM {s.rel[child]} WHERE local_id IS NOT NULL) "
                          f"ORDER BY {q(s.key)}")
            out += [finding(rule, "patient", k, "", "", local_id=lid) for k, lid in rows]
    return out


def reference_dates(s: Site) -> dict[str, str]:
    """Per-patient reference dates as SQL relations (local_id, ref): first infusion date and
    first CR assessment date."""
    refs = {}
    if "infusion" in s.rel:
        refs["infusion_date"] = (f"(SELECT local_id, min(infusion_date) AS ref FROM {s.rel['infusion']} "
                                 "GROUP BY local_id)")
    if "response" in s.rel:
        refs["cr_date"] = (f"(SELECT local_id, min(assessment_date) AS ref FROM {s.rel['response']} "
                           "WHERE response = 'CR' GROUP BY local_id)")
    return refs


def date_order(s: Site, check: Check, refs: dict[str, str]) -> list[Finding]:
    later, earlier = check.columns
    cols, rel, k = s.cols[check.table], s.rel[check.table], q(s.key)
    if later not in cols:
        return []
    if earlier in cols:
        sql = f"SELECT {k}, local_id, {q(later)}, {q(earlier)} FROM {rel} t WHERE {q(later)} < {q(earlier)}"
    elif earlier in refs:
        sql = (f"SELECT t.{k}, t.local_id, t.{q(later)}, r.ref FROM {rel} t JOIN {refs[earlier]} r "
               f"ON r.local_id = t.local_id WHERE t.{q(later)} < r.ref")
    else:
        return []
    return [finding(check.rule_id, check.table, key, later, _d(v), local_id=lid, expected=_d(ref))
            for key, lid, v, ref in s.rows(sql + " ORDER BY 1")]


def relapse_without_cr(s: Site, refs: dict[str, str]) -> list[Finding]:
    if "outcome" not in s.rel or "cr_date" not in refs:
        return []
    rows = s.rows(f"SELECT t.{q(s.key)}, t.local_id, t.relapse_date FROM {s.rel['outcome']} t "
                  f"LEFT JOIN {refs['cr_date']} r ON r.local_id = t.local_id "
                  "WHERE t.relapse_date IS NOT NULL AND r.ref IS NULL ORDER BY 1")
    return [finding("RELAPSE_WITHOUT_CR", "outcome", k, "relapse_date", _d(v), local_id=lid) for k, lid, v in rows]


def mrd_flag(s: Site) -> list[Finding]:
    limit = catalog()["MRD_INCONSISTENT"].limit
    rows = s.rows(f"SELECT {q(s.key)}, local_id, mrd_negative, mrd_pct FROM {s.rel['response']} "
                  f"WHERE (mrd_pct < {limit!r}) <> CAST(mrd_negative AS BOOLEAN) ORDER BY 1")
    return [finding("MRD_INCONSISTENT", "response", k, "mrd_negative", neg, local_id=lid, expected=pct)
            for k, lid, neg, pct in rows]


def eligibility(s: Site) -> list[Finding]:
    out = []
    for check in (c for c in catalog().values() if c.check_type == "eligibility"):
        col = check.columns[0]
        rows = s.rows(f"SELECT {q(s.key)}, local_id, {q(col)} FROM {s.rel['patient']} "
                      f"WHERE {q(col)} >= {check.limit!r} ORDER BY 1")
        out += [finding(check.rule_id, "patient", k, col, v, local_id=lid) for k, lid, v in rows]
    return out


def test_records(s: Site, names: pd.Series) -> list[Finding]:
    """A name or id that looks like a test entry. The name itself is never echoed. SQL
    narrows the patients down; Python's Unicode-aware pattern decides."""
    s.con.register("rules_names", pd.DataFrame({"local_id": [str(i) for i in names.index],
                                                "name": [v if isinstance(v, str) else None for v in names.values]},
                                               dtype=object))
    pre = f"regexp_matches(%s, '{TEST_PREFILTER}')"
    rows = s.rows(f"SELECT p.{q(s.key)}, p.local_id, n.name FROM {s.rel['patient']} p "
                  "LEFT JOIN (SELECT local_id, any_value(name) AS name FROM rules_names GROUP BY local_id) n "
                  f"ON n.local_id = p.local_id WHERE {pre % 'CAST(n.name AS VARCHAR)'} OR {pre % 'p.local_id'} "
                  "ORDER BY 1")
    out = []
    for k, lid, name in rows:
        why = None
        if isinstance(name, str) and TEST_NAME.search(name):
            why = f"name matches the test-record pattern /{TEST_NAME.search(name).group(0).lower()}/"
        elif isinstance(lid, str) and TEST_NAME.search(lid):
            why = "local id contains 'test'"
        if why:
            out.append(finding("TEST_RECORD", "patient", k, "name", "***", local_id=lid, detail=why))
    return out


def _d(v: object) -> str:
    return v.date().isoformat() if isinstance(v, datetime) else v.isoformat() if isinstance(v, date) else str(v)
