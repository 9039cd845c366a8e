"""The study report: one self-contained HTML page, returned as a string (never written).

`render_report(results, analysis_patient_df, meta) -> Report` lays out, in the paper's
order, Table 1 (by CRS, ICANS, concurrent CRS+ICANS), the response bars (Fig. 1), the
Kaplan–Meier curves with numbers at risk and log-rank p (Figs. 2–3), the median
follow-up, the CAR-T kinetics (Fig. 4), Table 2 (multivariable Cox), the plan's
"beyond the paper" analyses (center heterogeneity with forest plots; cumulative incidence
of relapse vs non-relapse mortality, Gray's test, Fine–Gray: `analysis.report_beyond`)
and a methods paragraph generated from the plan. Figures are embedded as base64 SVG data
URIs (the page works offline, one file); `Report.figures` carries the 300 dpi PNG and the
SVG bytes for the orchestrator to write alongside (`figures/<name>.png|svg`, linked under
each figure). Table 1 marks each p with a superscript letter whose footnote names the
test once, and shows coded levels by their names (`analysis.labels`).

`meta` gives what the analysis must not invent: `run_id`, `cutoff_date` (the data
cut-off) and optionally `snapshot`, `study` or `title`, `plan` (its path), `generated_at`.
p-values are shown as the paper prints them: 3 decimals, "<0.001". Templates use jinja2
with autoescaping.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import jinja2
import numpy as np
import pandas as pd

from analysis.figures import (
    ENDPOINT_TITLES,
    TEST_NAMES,
    Figure,
    draw,
    figure_jobs,
    format_p,
    group_label,
    level_labels,
    order_levels,
)
from analysis.figures import _label as _label
from analysis.figures_beyond import beyond_figure_jobs
from analysis.formatting import format_number  # noqa: F401  (also the report API)
from analysis.labels import code_labels, level_text

SECTIONS = ["Methods", "Table 1. Patient characteristics", "Response (Fig. 1)",
            "Survival (Figs. 2–3)", "Follow-up", "CAR-T kinetics (Fig. 4)",
            "Table 2. Multivariable Cox regression"]
BEYOND_SECTION = "Beyond the paper: center heterogeneity and competing risks"


@dataclass(frozen=True, eq=False)
class Report:
    html: str
    figures: tuple[Figure, ...]


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("analysis", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["p"] = format_p
    env.filters["num"] = format_number
    env.filters["num1"] = lambda x: "NA" if x is None or not np.isfinite(x) else f"{x:.1f}"
    return env


def _rows(table: pd.DataFrame, **where) -> pd.DataFrame:
    m = np.ones(len(table), dtype=bool)  # on the arrays: a pandas mask per call cost 1 s a report
    for k, v in where.items():
        m &= table[k].to_numpy() == v
    return table[m]


def _value(table: pd.DataFrame, **where) -> float:
    r = _rows(table, **where)
    return float(r["value"].iloc[0]) if len(r) else float("nan")


def _group_levels(table: pd.DataFrame, analysis: str, comp: str, plan=None) -> list[str]:
    terms = _rows(table, analysis=analysis, comparison=comp)["term"]
    return order_levels(dict.fromkeys(t[6:].split("|")[0] for t in terms if t.startswith("level:")),
                        level_labels(plan, comp))


def test_markers(tests: list[str]) -> dict[str, str]:
    """A superscript letter per test, in order of first use: {test name: "a", ...}."""
    names = list(dict.fromkeys(t for t in tests if t))
    return {t: "abcdefghijklmnopqrstuvwxyz"[i] for i, t in enumerate(names)}


def table1(results, codes: dict[str, dict[str, str]] | None = None) -> dict:
    """Header, rows and footnotes of Table 1, formatted: median (range) / n (%) cells,
    each p with a superscript marker whose footnote names the test once; levels by their
    readable names (`analysis.labels.level_text`: plan labels, then the code lists)."""
    plan, t = results.plan, results.table
    if not plan.table1:
        return {}
    comps = plan.table1.compare_by
    levels = {c: _group_levels(t, "table1", c, plan) for c in comps}
    first = plan.table1.variables[0]
    header = [{"label": _label(plan, c), "groups": [
        {"level": g, "label": level_text(plan, c, g, codes),
         "n": _value(t, analysis="table1", comparison=c, endpoint=first, term=f"level:{g}",
                     statistic="n")} for g in levels[c]]}
        for c in comps]
    rows = []
    for ep in plan.table1.variables:
        var = plan.variables[ep]
        head = {"label": _label(plan, ep), "kind": var.kind, "cells": [], "p": []}
        for c in comps:
            p = _rows(t, analysis="table1", comparison=c, endpoint=ep, term="",
                      statistic="p_value")
            head["p"].append({"p": float(p["value"].iloc[0]) if len(p) else float("nan"),
                              "test": TEST_NAMES.get(p["test"].iloc[0], "") if len(p) else ""})
        if var.kind == "continuous":
            for c in comps:
                head["cells"].append([])
                for g in levels[c]:
                    s = {st: _value(t, analysis="table1", comparison=c, endpoint=ep,
                                    term=f"level:{g}", statistic=st)
                         for st in ("median", "lower", "upper")}
                    head["cells"][-1].append(f"{format_number(s['median'])} "
                                             f"({format_number(s['lower'])}–"
                                             f"{format_number(s['upper'])})")
            rows.append(head)
            continue
        rows.append(head)
        values = var.levels or order_levels(dict.fromkeys(
            term.split("|value:")[1] for term in _rows(t, analysis="table1", endpoint=ep)["term"]
            if "|value:" in term))
        for v in values:
            cells = []
            for c in comps:
                cells.append([])
                for g in levels[c]:
                    term = f"level:{g}|value:{v}"
                    n = _value(t, analysis="table1", comparison=c, endpoint=ep, term=term,
                               statistic="count")
                    pct = _value(t, analysis="table1", comparison=c, endpoint=ep, term=term,
                                 statistic="percent")
                    cells[-1].append(f"{0 if np.isnan(n) else int(n)} "
                                     f"({0.0 if np.isnan(pct) else pct:.1f}%)")
            rows.append({"label": level_text(plan, ep, v, codes), "kind": "level", "cells": cells})
    markers = test_markers([p["test"] for r in rows for p in r.get("p", [])])
    for r in rows:
        for p in r.get("p", []):
            p["marker"] = markers.get(p["test"], "")
    return {"header": header, "rows": rows,
            "footnotes": [{"marker": m, "test": name} for name, m in markers.items()]}


def _term_label(plan, term: str) -> str:
    var, _, level = term.partition(":")
    base = _label(plan, var)
    if not level:
        return base
    ref = plan.variables[var].reference if var in plan.variables else None
    labels = level_labels(plan, var) or {}
    return (f"{labels.get(level, level)} vs "
            f"{labels.get(ref, ref) if ref else 'reference'}")


def table2(results) -> list[dict]:
    """One block per Cox endpoint: N, events, terms (HR, CI, p) and factors' global p."""
    plan, t = results.plan, results.table
    blocks = []
    for ep, res in results.cox.items():
        rows = []
        factor_p = {r["variable"]: r for r in res.factors.to_dict("records")}
        shown = set()
        for r in res.summary.to_dict("records"):
            var = r["variable"]
            if var in factor_p and var not in shown:
                f = factor_p[var]
                rows.append({"label": _label(plan, var), "factor": True, "p": f["wald_p"],
                             "lr_p": f["lr_p"]})
                shown.add(var)
            rows.append({"label": _term_label(plan, r["term"]), "hr": r["hr"],
                         "lower": r["hr_lower"], "upper": r["hr_upper"], "p": r["p_value"],
                         "indent": var in factor_p})
        blocks.append({
            "key": ep, "ph": _ph_summary(plan, res),
            "endpoint": ENDPOINT_TITLES.get(ep, ep).replace("\n", " "),
            "n": _value(t, analysis="cox", comparison="all", endpoint=ep, term="",
                        statistic="n"),
            "events": _value(t, analysis="cox", comparison="all", endpoint=ep, term="",
                             statistic="events"),
            "rows": rows})
    return blocks


PH_ALPHA = 0.05  # a model whose cox.zph test (a term or GLOBAL) has p below this is flagged


def _ph_summary(plan, res) -> dict | None:
    """The PH test of one Cox model: global p and the terms (or GLOBAL) with p < PH_ALPHA."""
    if res.ph_test is None:
        return None
    t = res.ph_test.set_index("term")["p_value"]
    flagged = [("global test" if term == "GLOBAL" else _label(plan, term))
               for term, p in t.items() if p < PH_ALPHA]
    return {"global_p": float(t["GLOBAL"]), "flagged": flagged, "alpha": PH_ALPHA}


def screen(results) -> list[dict]:
    """The univariate screen as what it is: each candidate's p, whether it passed the
    threshold, and (separately) whether it is a term of the multivariable model, which
    the plan fixes (the screen does not choose the model's terms)."""
    plan = results.plan
    forced = set(plan.cox.terms) if plan.cox else set()
    out = []
    for ep, sc in results.screen.items():
        s = sc.summary
        for r in s.drop_duplicates("variable").to_dict("records"):
            out.append({"endpoint": ep.upper(), "label": _label(plan, r["variable"]),
                        "p": r.get("variable_p", r.get("p_value")),
                        "passed": r["variable"] in sc.selected, "threshold": sc.threshold,
                        "in_model": r["variable"] in forced})
    return out


def _pct(x: float) -> str:
    return "NA" if x is None or not np.isfinite(x) else f"{100 * x:.1f}%"


def survival_tables(results) -> list[dict]:
    """Per endpoint and comparison: n, events, median (95% CI) per group, log-rank p."""
    plan = results.plan
    out = []
    for (comp, ep), sc in results.survival.items():
        records = {r["group"]: r for r in sc.km.summary.to_dict("records")}
        groups = [records[g] for g in order_levels(records, level_labels(plan, comp))]
        times = list(plan.survival.times) if plan.survival else []
        lm = results.landmarks   # survival at the plan's times, computed once by the runner
        at = lm[(lm["comparison"] == comp) & (lm["endpoint"] == ep)]
        for g in groups:
            part = at[at["group"] == g["group"]]
            g["at_times"] = [f"{_pct(r['survival'])} ({_pct(r['lower'])}–"
                             f"{_pct(r['upper'])})" for r in part.to_dict("records")]
        out.append({"name": f"km_{ep}_{comp}", "comparison": _label(plan, comp),
                    "times": [f"{t:g} months" for t in times],
                    "endpoint": ep, "p": sc.logrank.p_value,
                    "test": TEST_NAMES.get(sc.logrank.test, sc.logrank.test),
                    "groups": [dict(g, label=group_label(_label(plan, comp), g["group"],
                                                         level_labels(plan, comp)))
                               for g in groups]})
    return out


def group_table(results, analysis: str) -> dict:
    """Per comparison: each group's summary and the p (with its test), per endpoint."""
    plan, t = results.plan, results.table
    objs = results.response if analysis == "response" else results.kinetics
    endpoints = list(dict.fromkeys(ep for _, ep in objs))
    rows = []
    for comp in dict.fromkeys(c for c, _ in objs):
        cells = []
        for ep in endpoints:
            res = objs.get((comp, ep))
            if res is None:
                cells.append(None)
                continue
            part = _rows(t, analysis=analysis, comparison=comp, endpoint=ep)
            groups = []
            for g in _group_levels(t, analysis, comp, plan):
                term = f"level:{g}"
                if analysis == "response":
                    c = _value(part, term=term, statistic="count")
                    n = _value(part, term=term, statistic="n")
                    text = ("suppressed" if np.isnan(c) or np.isnan(n)  # small cell (federated)
                            else f"{int(c)}/{int(n)} ({0 if not n else 100 * c / n:.1f}%)")
                    groups.append(f"{group_label(_label(plan, comp), g, level_labels(plan, comp))} {text}")
                else:
                    groups.append(f"{group_label(_label(plan, comp), g, level_labels(plan, comp))} "
                                  f"{format_number(_value(part, term=term, statistic='median'))}"
                                  f" (n={format_number(_value(part, term=term, statistic='n'))})")
            cells.append({"groups": groups, "p": res.p_value,
                          "test": TEST_NAMES.get(res.test, res.test)})
        rows.append({"label": _label(plan, comp), "cells": cells})
    return {"endpoints": [ENDPOINT_TITLES.get(e, e).replace("\n", " ") for e in endpoints],
            "rows": rows}


def methods(plan) -> list[str]:
    """The statistical methods, generated from the plan (what is run is what is said)."""
    out = []
    pops = {k: (p.label or k) for k, p in plan.populations.items()}
    pops = {k: v[:1].lower() + v[1:] for k, v in pops.items()}

    def names(items) -> str:
        items = [_label(plan, i) for i in items]
        return ", ".join(items[:-1]) + (" and " if len(items) > 1 else "") + items[-1] \
            if items else ""

    if plan.table1:
        cont = [v for v in plan.table1.variables if plan.variables[v].kind == "continuous"]
        cat = [v for v in plan.table1.variables if plan.variables[v].kind != "continuous"]
        test = {"chi2": "Pearson's chi-square test without continuity correction (the "
                        "'Pearson Chi-Square' line SPSS prints), also where expected counts "
                        "are below 5",
                "fisher": "Fisher's exact test (two-sided)",
                None: "Pearson's chi-square test without continuity correction when every "
                      "expected count is at least 5, otherwise Fisher's exact test"}[
            plan.table1.categorical_test]
        out.append(
            f"Patient characteristics were compared by {names(plan.table1.compare_by)}. "
            f"Continuous variables ({names(cont)}) are given as median (range) and compared "
            "with the Mann–Whitney U test (normal approximation with tie correction and no "
            "continuity correction, SPSS's asymptotic p; R: wilcox.test(correct = FALSE, "
            f"exact = FALSE)). Categorical variables ({names(cat)}) are given as n (%) "
            f"within each group and compared with {test}.")
    if plan.response:
        by_test: dict[str, list[str]] = {}
        for comp in plan.response.compare_by:
            by_test.setdefault(plan.response.tests.get(comp, "auto"), []).append(comp)
        label = {"chi2": "Pearson's chi-square test (no continuity correction)",
                 "fisher": "Fisher's exact test (two-sided)",
                 "auto": "Pearson's chi-square test or, when an expected count is below 5, "
                         "Fisher's exact test (Fisher–Freeman–Halton for tables larger than "
                         "2×2, as R's fisher.test)"}
        eps = [f"{ENDPOINT_TITLES.get(e, e).splitlines()[0]} ({pops[s.population]})"
               for e, s in plan.response.endpoints.items()]
        out.append("Response rates (" + "; ".join(eps) + ") were compared by "
                   + "; ".join(f"{names(c)} with {label[t]}" for t, c in by_test.items())
                   + ". A test is named next to every p-value.")
    if plan.survival:
        eps = "; ".join(f"{ENDPOINT_TITLES.get(e, e)} in {pops[s.population]} "
                        f"({s.duration}, event {s.event})"
                        for e, s in plan.survival.endpoints.items())
        out.append(
            f"Survival ({eps}) was estimated with the Kaplan–Meier method and compared by "
            f"{names(plan.survival.compare_by)} with the log-rank test (R survdiff; k − 1 "
            "degrees of freedom for k groups). Confidence intervals follow R's survfit "
            "defaults (conf.type = \"log\", Greenwood variance); medians and their 95% CIs "
            "follow R's quantile.survfit rule."
            + (f" Median follow-up is the reverse Kaplan–Meier median of "
               f"{ENDPOINT_TITLES.get(plan.followup.endpoint, plan.followup.endpoint).lower()}"
               " (events and censorings swapped)." if plan.followup else ""))
    if plan.kinetics:
        for e, s in plan.kinetics.endpoints.items():
            out.append(f"{ENDPOINT_TITLES.get(e, e)} ({pops[s.population]}) were "
                       f"compared by {names(plan.kinetics.compare_by)} with the Mann–Whitney "
                       "U test, or the Kruskal–Wallis test for three groups.")
    if plan.cox:
        eps = " and ".join(e.upper() for e in plan.cox.endpoints)
        txt = (f"Cox proportional-hazards models for {eps} "
               "use Efron's method for ties (R coxph default), fitted by Newton–Raphson to "
               "full convergence; hazard ratios have Wald 95% CIs and p-values, and a factor "
               "with more than two levels also gets a global Wald test (SPSS's 'Group' row) "
               "and a likelihood-ratio test. Proportional hazards were checked with the "
               "score test of R's cox.zph (survival ≥ 3, Kaplan–Meier-transformed time) per "
               f"term and globally; a model with any such p < {PH_ALPHA:g} is flagged, and "
               "scaled Schoenfeld residuals are plotted per term.")
        if plan.cox.terms:
            txt += (f" The multivariable model contains the prespecified terms "
                    f"{names(plan.cox.terms)}.")
        if plan.cox.screen:
            txt += (f" Candidates ({names(plan.cox.screen.candidates)}) were also fitted one "
                    f"at a time (univariate screen, threshold p < "
                    f"{plan.cox.screen.threshold:g}); the screen is reported for information"
                    + (" and does not change the model's terms." if plan.cox.terms else "."))
        out.append(txt)
    out.append("All tests are two-sided. p-values are shown with three decimals, and as "
               "<0.001 below that.")
    return out


def _data_uri(fig: Figure) -> str:
    """The figure's SVG as a data URI: vector, so sharp at any zoom, and the page stays one
    self-contained file (the 300 dpi PNG is written beside it, `figures/<name>.png`)."""
    return "data:image/svg+xml;base64," + base64.b64encode(fig.svg).decode("ascii")


def report_figure_jobs(results, analysis_patient_df: pd.DataFrame | None) -> list:
    """Every figure of the report as a job not yet drawn, in report order (`draw` runs them)."""
    return figure_jobs(results, analysis_patient_df) + beyond_figure_jobs(results)


def render_report(results, analysis_patient_df: pd.DataFrame, meta: dict | None = None,
                  audit=None, codes: dict[str, dict[str, str]] | None = None,
                  figures: list[Figure] | None = None) -> Report:
    """The report page and its figures. `audit` (an AuditResult) adds a short summary.
    `codes` ({variable: {code: label}}) names the levels of coded variables; by default
    the code lists the data dictionary names (`analysis.labels.code_labels`). `figures`:
    the drawn `report_figure_jobs` (default: drawn here, one after the other)."""
    meta = dict(meta or {})
    from analysis import report_beyond

    codes = code_labels(results.plan) if codes is None else codes
    if figures is None:
        figures = draw(report_figure_jobs(results, analysis_patient_df))
    by_name = {f.name: {"name": f.name, "title": f.title, "src": _data_uri(f)}
               for f in figures}
    fu = results.followup.summary.iloc[0].to_dict() if results.followup is not None else None
    plan = results.plan
    html = _env().get_template("report.html.j2").render(
        meta=meta, sections=SECTIONS, plan=plan,
        n_patients=len(analysis_patient_df) if analysis_patient_df is not None else meta.get("n_patients"),
        populations=results.populations,
        methods=methods(plan) + report_beyond.methods_beyond(plan),
        beyond_section=BEYOND_SECTION if plan.beyond_paper else None,
        heterogeneity=report_beyond.heterogeneity_blocks(results, by_name),
        competing=report_beyond.competing_blocks(results, by_name),
        fine_gray=report_beyond.fine_gray_blocks(results),
        table1=table1(results, codes), response=[v for k, v in by_name.items()
                                          if k.startswith("response_")],
        survival=[dict(s, figure=by_name.get(s["name"])) for s in survival_tables(results)],
        followup=fu, kinetics=[v for k, v in by_name.items() if k.startswith("kinetics_")],
        kinetics_n=results.populations.get(
            next(iter(plan.kinetics.endpoints.values())).population) if plan.kinetics else None,
        not_computed=[f"{a} {c} {e}: {msg}" for (a, c, e), msg in sorted(results.errors.items())],
        table2=[dict(b, figure=by_name.get(f"ph_{b['key']}")) for b in table2(results)],
        screen=screen(results),
        response_table=group_table(results, "response"),
        kinetics_table=group_table(results, "kinetics"),
        audit=None if audit is None else {
            "summary": audit.summary.to_dict("records"),
            "contradictions": audit.contradictions.to_dict("records")})
    return Report(html=html, figures=tuple(figures))
