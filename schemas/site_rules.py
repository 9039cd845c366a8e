"""Site plausibility rules: catalog rule types a site instantiates with its own limits.

A site writes, in `sites/<center>/mapping.yml`,

    rules:
      - {rule: ONSET_WINDOW, limit: 30, where: {tox_type: [ICANS]}}    # tighter than the catalog's 90 days
      - {rule: SITE_LIMIT, table: infusion, column: dose_1e6_per_kg, max: 5}

The rule id, its type, severity, message and how-to-fix stay in `schemas/checks.csv`; the
site gives only the limit and the rows it applies to. Which types a site may use is
`TUNABLE`. The catalog's own ONSET_WINDOW (its `limit`, days after the first infusion)
applies to every site; a site may tighten it, never widen it, so pooled sites keep one
floor of plausibility. A row is checked against the tightest window that applies to it and
gives at most one finding per rule.
"""
from __future__ import annotations

from schemas.catalog import Finding, catalog, finding
from schemas.model import common_schema
from schemas.rules import q

TUNABLE = {"onset_window", "site_limit"}
NUMERIC = {"int", "float"}


def rule_problem(r) -> str | None:
    """Why a site rule (etl.compile.mapping.SiteRule) cannot be used, or None."""
    check = catalog().get(r.rule)
    usable = sorted(c.rule_id for c in catalog().values() if c.check_type in TUNABLE)
    if check is None or check.check_type not in TUNABLE:
        return (f"rules: {r.rule!r} is not a catalog rule a site can set (schemas/checks.csv); "
                f"site rules: {', '.join(usable)}")
    schema = common_schema()
    table = check.table if check.table != "*" else r.table
    if table not in schema:
        return f"rules: {r.rule} needs `table:`, one of {', '.join(schema)}"
    cols = {c.name: c for c in schema[table].columns}
    bad_where = sorted(set(r.where or {}) - set(cols))
    if bad_where:
        return f"rules: {r.rule}: where: {bad_where} not columns of table {table}"
    if check.check_type == "onset_window":
        if r.limit is None or r.limit <= 0:
            return f"rules: {r.rule} needs `limit:` (days after infusion, > 0)"
        if check.limit is not None and r.limit > check.limit:
            return (f"rules: {r.rule}: limit {r.limit:g} days is wider than the catalog's {check.limit:g}; "
                    "a site can tighten the window, not widen it")
        if r.table or r.column or r.min is not None or r.max is not None:
            return f"rules: {r.rule} takes `limit:` and `where:` only"
    if check.check_type == "site_limit":
        col = cols.get(r.column or "")
        if col is None or col.type not in NUMERIC:
            numeric = sorted(c for c, x in cols.items() if x.type in NUMERIC)
            return f"rules: {r.rule} needs `column:`, a numeric column of {table} ({', '.join(numeric)})"
        if r.min is None and r.max is None:
            return f"rules: {r.rule} needs `min:` and/or `max:`"
        if r.min is not None and r.max is not None and r.min > r.max:
            return f"rules: {r.rule}: min {r.min:g} is above max {r.max:g}"
        if r.limit is not None:
            return f"rules: {r.rule} takes min:/max:, not limit:"
    return None


def site_rule_findings(s, rules) -> list[Finding]:
    """Findings of the catalog's ONSET_WINDOW (tightened by the site's rules) and the site's
    SITE_LIMIT rules, over a `schemas.rules.Site`."""
    from schemas.rules import reference_dates

    out: list[Finding] = []
    out += _onset_window(s, rules, reference_dates(s))
    for r in rules:
        if catalog()[r.rule].check_type == "site_limit" and r.table in s.rel and r.column in s.cols[r.table]:
            out += _site_limit(s, r)
    return out


def _where(where: dict | None, alias: str = "t") -> tuple[str, str]:
    """(SQL condition, text for the message) of a rule's `where:`."""
    if not where:
        return "TRUE", ""
    conds, text = [], []
    for col, values in where.items():
        vals = ", ".join("'" + str(v).lower().replace("'", "''") + "'" for v in values)
        conds.append(f"lower(CAST({alias}.{q(col)} AS VARCHAR)) IN ({vals})")
        text.append(f"{col} {'/'.join(str(v) for v in values)}")
    return " AND ".join(conds), " for " + ", ".join(text)


def _onset_window(s, rules, refs: dict[str, str]) -> list[Finding]:
    out: list[Finding] = []
    for check in (c for c in catalog().values() if c.check_type == "onset_window"):
        later, earlier = check.columns
        if check.table not in s.rel or later not in s.cols[check.table] or earlier not in refs:
            continue
        windows = sorted([(r.limit, r.where) for r in rules if r.rule == check.rule_id], key=lambda w: w[0])
        if check.limit is not None:
            windows.append((check.limit, None))
        flagged: set = set()
        for limit, where in windows:
            cond, _ = _where(where)
            days = f"date_diff('day', CAST(r.ref AS DATE), CAST(t.{q(later)} AS DATE))"
            rows = s.rows(f"SELECT t.{q(s.key)}, t.local_id, t.{q(later)}, r.ref, {days} AS days "
                          f"FROM {s.rel[check.table]} t JOIN {refs[earlier]} r ON r.local_id = t.local_id "
                          f"WHERE t.{q(later)} IS NOT NULL AND {cond} AND {days} > {limit!r} "
                          "ORDER BY 1")
            for key, lid, v, ref, days in rows:
                if key in flagged:
                    continue
                flagged.add(key)
                out.append(finding(check.rule_id, check.table, key, later, _day(v), local_id=lid,
                                   expected=_day(ref), detail=str(days), limit=limit))
    return out


def _site_limit(s, r) -> list[Finding]:
    col = q(r.column)
    bounds = [f"{col} < {r.min!r}"] if r.min is not None else []
    bounds += [f"{col} > {r.max!r}"] if r.max is not None else []
    cond, scope = _where(r.where)
    rows = s.rows(f"SELECT t.{q(s.key)}, t.local_id, t.{col} FROM {s.rel[r.table]} t "
                  f"WHERE t.{col} IS NOT NULL AND ({' OR '.join(bounds)}) AND {cond} ORDER BY 1")
    if r.min is not None and r.max is not None:
        expected = f"{r.min:g}..{r.max:g}"
    else:
        expected = f">= {r.min:g}" if r.min is not None else f"<= {r.max:g}"
    return [finding("SITE_LIMIT", r.table, key, r.column, v, local_id=lid, expected=expected + scope)
            for key, lid, v in rows]


def _day(v: object) -> str:
    return v.date().isoformat() if hasattr(v, "date") and callable(v.date) else str(v)
