"""Paper-consistency audit: the published numbers beside ours, and the paper against itself.

The paper's numbers are data (`analysis/published/paper_2024.csv`, one printed number a
row, with the OCR reading and our interpretation where they differ). `audit` does two
things with them:

* **Recomputed.** When the runner's long results table is given, each published number
  is put beside the value computed from the pooled data: *match* (equal at the printed
  precision), *within tolerance* (see `TOLERANCE`), *differs*, or *not recomputed*.
* **Internal consistency.** The rules (`analysis.audit_rules.RULES`) test each number
  against the paper's *other* numbers: a percentage against
  its n/N, a chi-square p against the printed cross-tab, group sizes and marginal totals,
  subgroup medians and ranges against the groups they belong to, claims of
  (non-)significance against the printed p, the same number printed twice, and Cox
  HR/CI/p. Nothing is listed by hand: a number is a *contradiction in the paper* only
  when a rule shows it cannot hold given the others, allowing for the printed rounding.

Statuses: match, within tolerance, differs, not recomputed (published vs recomputed);
consistent, within tolerance, contradiction in the paper (internal). The headline
`status` of a number (`row_status`, counted by `AuditResult.summary`) is the internal
contradiction when there is one and the recomputation does not reproduce the number
exactly, else the published-vs-recomputed status.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import jinja2
import numpy as np
import pandas as pd

from analysis.audit_rules import (  # noqa: F401  (re-exported: the audit's API)
    ALPHA,
    CONTRADICTION,
    FLAG_COMPARISON,
    KEYS,
    RULES,
    Context,
    half_unit,
    rule_p_vs_crosstab,
    rule_percent_vs_count,
    run_rules,
)

#: Published vs recomputed: allowed absolute (p, percent) or relative (others) difference
#: once the printed rounding is exceeded. The synthetic twin is calibrated, not exact.
TOLERANCE = {"p_value": ("abs", 0.02), "percent": ("abs", 1.0), "count": ("abs", 1.0),
             "n": ("abs", 0.0), "events": ("abs", 1.0)}
DEFAULT_TOLERANCE = ("rel", 0.05)


def load_published() -> pd.DataFrame:
    """The transcribed paper (packaged CSV), with empty strings for absent keys."""
    return _read_csv("paper_2024.csv")


def load_groups() -> pd.DataFrame:
    """Subset relations between Table 1 columns (e.g. concurrent yes ⊂ ICANS yes)."""
    return _read_csv("groups.csv")


def load_endpoints() -> pd.DataFrame:
    """Endpoint labels, units, and whether values are whole numbers (exact medians)."""
    return _read_csv("endpoints.csv")


def _read_csv(name: str) -> pd.DataFrame:
    path = resources.files("analysis") / "published" / name
    with path.open("r", encoding="utf-8") as fh:
        df = pd.read_csv(fh, dtype=str, keep_default_na=False)
    for col in ("value", "n", "denominator"):
        if col in df:
            df[col] = pd.to_numeric(df[col].mask(df[col] == ""))
    return df


@dataclass(frozen=True, eq=False)
class AuditResult:
    """`table`: one row per published number; `findings`: one row per rule check."""

    table: pd.DataFrame
    findings: pd.DataFrame

    @property
    def contradictions(self) -> pd.DataFrame:
        return self.findings[self.findings["status"] == CONTRADICTION].reset_index(drop=True)

    @property
    def summary(self) -> pd.DataFrame:
        """Counts of each status, for the report header."""
        return self.table["status"].value_counts().rename_axis("status").reset_index()

    def as_results_rows(self) -> pd.DataFrame:
        """Rows in the results-table vocabulary for the warehouse table `analysis_result`.

        analysis='audit'; `term` is "<source>:<published analysis>/<term>/<group>/<level>";
        `statistic` as published; `value` the published number; `test` the status. One
        extra row per contradiction: term 'finding:<rule>', statistic 'contradiction',
        value 1, test the explanation.
        """
        t = self.table
        term = (t["source"] + ":" + t["analysis"] + "/" + t["term"] + "/" + t["group"] + "/"
                + t["level"])
        rows = pd.DataFrame({
            "analysis": "audit", "comparison": t["comparison"], "endpoint": t["endpoint"],
            "term": term, "statistic": t["statistic"], "value": t["value"],
            "test": t["status"]})
        c = self.contradictions
        extra = pd.DataFrame({
            "analysis": "audit", "comparison": c["comparison"], "endpoint": c["endpoint"],
            "term": "finding:" + c["rule"], "statistic": "contradiction", "value": 1.0,
            "test": c["message"]})
        return pd.concat([rows, extra], ignore_index=True)


def audit(published: pd.DataFrame, recomputed: pd.DataFrame | None = None,
          groups: pd.DataFrame | None = None,
          endpoints: pd.DataFrame | None = None, rules=None) -> AuditResult:
    """Check the published numbers against each other and, if given, against ours.

    `recomputed` is the runner's long results table (analysis, comparison, endpoint,
    term, statistic, value, test; see `published_keys`). `rules` defaults to all of
    `analysis.audit_rules.RULES`.
    """
    pub = published.reset_index(drop=True).copy()
    for col in KEYS + ["printed", "relation", "source", "text"]:
        if col not in pub:
            pub[col] = ""
        pub[col] = pub[col].fillna("").astype(str)
    groups = load_groups() if groups is None else groups
    endpoints = load_endpoints() if endpoints is None else endpoints
    integer = set(endpoints.loc[endpoints["integer_valued"].str.lower() == "true", "endpoint"])
    res = endpoints.get("resolution", pd.Series("", index=endpoints.index)).astype(str)
    resolution = {e: float(r) for e, r in zip(endpoints["endpoint"], res, strict=True) if r}
    ctx = Context(pub=pub, groups=groups, integer_endpoints=integer, resolution=resolution)
    findings = run_rules(ctx, rules)
    table = _beside_recomputed(pub, recomputed)
    table = _attach_findings(table, findings)
    return AuditResult(table=table, findings=findings)


LEVEL_NAMES = {("ph", "yes"): "positive", ("ph", "no"): "negative"}
RANGE_STATS = {"lower": "min", "upper": "max"}


def published_keys(table: pd.DataFrame) -> pd.DataFrame:
    """The runner's long table re-keyed like the published CSV (KEYS + value, test).

    `level:<g>` terms become `group`, `|value:<v>` becomes `level`; a continuous
    variable's lower/upper (its range) become min/max; the group sizes of Table 1 and the
    cohort-wide numbers the text quotes are derived from the per-group counts.
    """
    rows = []
    for r in table.to_dict("records"):
        term, group, level = str(r.get("term", "") or ""), "", ""
        if term.startswith("level:"):
            group, _, rest = term[len("level:"):].partition("|value:")
            level = LEVEL_NAMES.get((r["endpoint"], rest), rest)
            term = ""
        stat = r["statistic"]
        if r["analysis"] in ("table1", "kinetics") and group:
            stat = RANGE_STATS.get(stat, stat)
        rows.append({"analysis": r["analysis"], "comparison": r["comparison"],
                     "endpoint": r["endpoint"], "group": group, "level": level, "term": term,
                     "statistic": stat, "value": r["value"], "test": r.get("test", "")})
    out = pd.DataFrame(rows, columns=KEYS + ["value", "test"])
    # a factor's global p: keep the Wald test (SPSS's "Group" row), not the LR twin
    out = out[~((out["analysis"] == "cox") & (out["test"] == "cox_lr"))]
    return pd.concat([out, _derived_rows(out)], ignore_index=True).drop_duplicates(
        subset=KEYS, keep="first")


def _derived_rows(t: pd.DataFrame) -> pd.DataFrame:
    def pick(**where):
        m = pd.Series(True, index=t.index)
        for k, v in where.items():
            m &= t[k] == v
        return t[m]

    rows = []

    def add(analysis, comparison, endpoint, statistic, value, group="", level="", test=""):
        rows.append(dict(analysis=analysis, comparison=comparison, endpoint=endpoint,
                         group=group, level=level, term="", statistic=statistic,
                         value=float(value), test=test or "derived"))

    t1n = pick(analysis="table1", statistic="n")
    for (comp, g), v in t1n.groupby(["comparison", "group"], sort=False)["value"].first().items():
        add("table1", comp, "", "n", v, group=g)
    total = t1n[t1n["comparison"] == t1n["comparison"].iloc[0]].groupby("group")[
        "value"].first().sum() if len(t1n) else np.nan
    if len(t1n):
        add("cohort", "all", "", "n", total, group="all")
        first = t1n["comparison"].iloc[0]
        counts = pick(analysis="table1", comparison=first, statistic="count")
        for (ep, lv), c in counts.groupby(["endpoint", "level"])["value"].sum().items():
            if ep == "sex":
                add("cohort", "all", ep, "count", c, group="all", level=lv)
            if lv == "yes":
                add("cohort", "all", ep, "percent", 100 * c / total, group="all", level="yes")
        for flag, comp in FLAG_COMPARISON.items():
            n_yes = t1n[(t1n["comparison"] == comp) & (t1n["group"] == "yes")]["value"]
            if len(n_yes):
                add("cohort", "all", flag, "percent", 100 * n_yes.iloc[0] / total, "all", "yes")
    ranges = t[(t["analysis"] == "table1") & t["statistic"].isin(["min", "max"])]
    if len(ranges):
        first = ranges["comparison"].iloc[0]
        r = ranges[ranges["comparison"] == first]
        for ep, part in r.groupby("endpoint", sort=False):
            add("cohort", "all", ep, "min", part[part["statistic"] == "min"]["value"].min(),
                group="all")
            add("cohort", "all", ep, "max", part[part["statistic"] == "max"]["value"].max(),
                group="all")
    for r in pick(analysis="table1", statistic="p_value", group="").to_dict("records"):
        add("table1", r["comparison"], r["endpoint"], "significance_claim",
            float(r["value"] < ALPHA), test=r["test"])
    for ep, pop in (("cr", "response"), ("car_peak", "kinetics")):
        part = pick(analysis=pop, endpoint=ep)
        if part.empty:
            continue
        comp = part["comparison"].iloc[0]
        part = part[part["comparison"] == comp]
        n = part[part["statistic"] == "n"].groupby("group")["value"].first().sum()
        if ep == "cr":
            c = part[part["statistic"] == "count"]["value"].sum()
            add("response", "all", ep, "percent", 100 * c / n, group="all", level="yes")
        else:
            add("kinetics", "all", ep, "n", n)
    return pd.DataFrame(rows, columns=KEYS + ["value", "test"])


def _beside_recomputed(pub: pd.DataFrame, rec: pd.DataFrame | None) -> pd.DataFrame:
    out = pub.copy()
    out["recomputed"] = np.nan
    out["recomputed_test"] = ""
    out["recomputed_status"] = "not recomputed"
    if rec is None or rec.empty:
        return out
    keyed = published_keys(rec)
    hits: dict[tuple, tuple] = {}
    for key, value, test in zip(zip(*(keyed[k] for k in KEYS), strict=True), keyed["value"],
                                keyed["test"], strict=True):
        hits.setdefault(key, (value, test))   # the first row of a key, as published_keys keeps
    values, tests, statuses = [], [], []
    for row in out.to_dict("records"):
        hit = hits.get(tuple(row[k] for k in KEYS))
        if hit is None:
            values.append(np.nan), tests.append(""), statuses.append("not recomputed")
            continue
        value = float(hit[0])
        values.append(value), tests.append(str(hit[1])), statuses.append(compare_value(row, value))
    out["recomputed"], out["recomputed_test"], out["recomputed_status"] = values, tests, statuses
    return out


def compare_value(row, value: float) -> str:
    """Published (as printed, with its relation; a row as a Series or dict) vs one recomputed value."""
    if not np.isfinite(value):
        return "differs"
    printed, rel = float(row["value"]), row["relation"]
    half = half_unit(row["printed"])
    if rel == "<" and value < printed:
        return "match"
    if rel != "<" and abs(value - printed) <= half + 1e-12:
        return "match"
    kind, tol = TOLERANCE.get(row["statistic"], DEFAULT_TOLERANCE)
    diff = abs(value - printed) if rel != "<" else max(0.0, value - printed)
    limit = tol if kind == "abs" else tol * abs(printed)
    return "within tolerance" if diff <= max(limit, half) + 1e-12 else "differs"


def _attach_findings(table: pd.DataFrame, findings: pd.DataFrame) -> pd.DataFrame:
    order = {"consistent": 0, "within tolerance": 1, CONTRADICTION: 2}
    consistency = ["not checked"] * len(table)
    notes: list[list[str]] = [[] for _ in range(len(table))]
    for _, f in findings.iterrows():
        for i in f["rows"]:
            cur = consistency[i]
            if cur == "not checked" or order[f["status"]] > order[cur]:
                consistency[i] = f["status"]
            if f["status"] != "consistent":
                notes[i].append(f["message"])
    table = table.copy()
    table["consistency"] = consistency
    table["finding"] = [" | ".join(dict.fromkeys(n)) for n in notes]
    table["status"] = [row_status(c, r) for c, r in
                       zip(table["consistency"], table["recomputed_status"], strict=True)]
    return table


def row_status(consistency: str, recomputed_status: str) -> str:
    """A published number's headline status.

    It is a *contradiction in the paper* when a rule puts it in a contradiction and our
    recomputation does not reproduce it exactly. A number the data reproduce ("match") is
    not the wrong one of its contradiction, so it stays a match: otherwise every count of
    a cross-tab whose printed p is wrong would be counted as a contradiction too. Its
    "Within the paper" column (`consistency`) still names the contradiction it is part of.
    """
    if consistency == CONTRADICTION and recomputed_status != "match":
        return CONTRADICTION
    return recomputed_status


def render_audit(result: AuditResult, meta: dict | None = None) -> str:
    """One self-contained HTML page (for out/report/audit.html)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("analysis", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]))
    template = env.get_template("audit.html.j2")
    findings = result.findings
    return template.render(
        meta=meta or {},
        contradictions=result.contradictions.to_dict("records"),
        tolerances=findings[findings["status"] == "within tolerance"].to_dict("records"),
        n_consistent=int((findings["status"] == "consistent").sum()),
        consistent=findings[findings["status"] == "consistent"].to_dict("records"),
        summary=result.summary.to_dict("records"),
        rows=result.table.fillna("").to_dict("records"),
    )
