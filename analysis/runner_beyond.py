"""The plan's `beyond_paper` section: center heterogeneity and competing risks, run and tabled.

`run_beyond(plan, frame, add, errors)` is called by `analysis.runner.run_plan` with its
`frame(population, variables, **endpoint)` and `add(...)` helpers, and returns
`BeyondResults`. Rows it adds to the results table (columns as `analysis.runner`):

* analysis `heterogeneity`, comparison = the exposure, endpoint = os / lfs:
  - term "": hr, hr_lower, hr_upper, p_value, n, events, test `cox_stratified` (Cox
    stratified by center, Wald p); p_value, test `logrank_stratified`; q, p_value, i2,
    test `cochran_q` (I² of the fixed-effect model, from Q); chi2, dof, p_value, test
    `cox_lr_interaction` (center × exposure);
  - term `center:<center>`: hr, hr_lower, hr_upper, p_value, n, events, test `cox_wald`
    (an estimable center only; the reason a center is not is in `.per_center.note`);
  - term `pooled:<FE|DL|REML>`: hr, hr_lower, hr_upper, p_value, tau2, i2, test
    `meta_fixed` / `meta_dl` / `meta_reml`.
* analysis `competing`, comparison = a grouping (or `all`), endpoint = e.g. lfs:
  - term `cause:<cause>`: p_value, statistic, test `gray` (groupings only);
  - term `cause:<cause>|level:<group>`: n, events, test `descriptive`;
  - term `cause:<cause>|level:<group>|time:<t>`: cif, lower, upper, test `aalen_johansen`.
* analysis `fine_gray`, comparison `cause:<cause>`, endpoint e.g. lfs: term "" n, events,
  test `fine_gray`; per model term: shr, shr_lower, shr_upper, p_value, test `fine_gray`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analysis.competing import CIFResult, cumulative_incidence
from analysis.cox import FIT_ERRORS
from analysis.finegray import FineGrayResult, fine_gray
from analysis.heterogeneity import HeterogeneityResult, center_heterogeneity
from analysis.plan import Plan

_D, _S, _E = "__duration", "__status", "__event"
META_TESTS = {"FE": "meta_fixed", "DL": "meta_dl", "REML": "meta_reml"}


@dataclass(frozen=True, eq=False)
class BeyondResults:
    """heterogeneity[(exposure, endpoint)], competing[(comparison, endpoint)],
    fine_gray[(cause, endpoint)]."""

    heterogeneity: dict[tuple[str, str], HeterogeneityResult] = field(default_factory=dict)
    competing: dict[tuple[str, str], CIFResult] = field(default_factory=dict)
    fine_gray: dict[tuple[str, str], FineGrayResult] = field(default_factory=dict)


def run_beyond(plan: Plan, frame, add, errors: dict) -> BeyondResults:
    out = BeyondResults()
    b = plan.beyond_paper
    if b is None:
        return out
    if b.heterogeneity:
        h = b.heterogeneity
        for ep in h.endpoints:
            spec = plan.survival.endpoints[ep]
            for x in h.exposures:
                data = frame(spec.population, [x, h.center], **{_D: spec.duration,
                                                                _E: spec.event})
                try:
                    res = center_heterogeneity(data, _D, _E, x, h.center)
                except FIT_ERRORS as exc:
                    errors[("heterogeneity", x, ep)] = f"{type(exc).__name__}: {exc}"
                    continue
                out.heterogeneity[(x, ep)] = res
                _heterogeneity_rows(add, x, ep, res)
    if b.competing_risks:
        c = b.competing_risks
        categorical = {k: v.reference for k, v in plan.variables.items()
                       if v.kind == "categorical"}
        for ep, spec in c.endpoints.items():
            codes = dict(event=spec.event, competing=spec.competing, censored=spec.censored)
            cols = {_D: spec.duration, _S: spec.status}
            for comp in ["all", *c.compare_by]:
                data = frame(spec.population, [] if comp == "all" else [comp], **cols)
                try:
                    res = cumulative_incidence(data, _D, _S, None if comp == "all" else comp,
                                               **codes)
                except ValueError as exc:
                    errors[("competing", comp, ep)] = f"{type(exc).__name__}: {exc}"
                    continue
                out.competing[(comp, ep)] = res
                _competing_rows(add, comp, ep, res, c.times)
            if c.terms:
                data = frame(spec.population, c.terms, **cols)
                cats = {k: categorical[k] for k in c.terms if k in categorical}
                for cause in [spec.event, *spec.competing]:
                    others = [x for x in [spec.event, *spec.competing] if x != cause]
                    try:
                        res = fine_gray(data, _D, _S, c.terms, cats, event=cause,
                                        competing=others, censored=spec.censored)
                    except FIT_ERRORS as exc:
                        errors[("fine_gray", cause, ep)] = f"{type(exc).__name__}: {exc}"
                        continue
                    out.fine_gray[(cause, ep)] = res
                    _fine_gray_rows(add, cause, ep, res)
    return out


def _heterogeneity_rows(add, x, ep, res: HeterogeneityResult) -> None:
    a = "heterogeneity"
    s = res.stratified.summary.iloc[0]
    for stat in ("hr", "hr_lower", "hr_upper", "p_value"):
        add(a, x, ep, "", stat, s[stat], "cox_stratified")
    add(a, x, ep, "", "n", res.stratified.n, "cox_stratified")
    add(a, x, ep, "", "events", res.stratified.events, "cox_stratified")
    add(a, x, ep, "", "p_value", res.logrank.p_value, "logrank_stratified")
    add(a, x, ep, "", "chi2", res.interaction_chi2, "cox_lr_interaction")
    add(a, x, ep, "", "dof", res.interaction_dof, "cox_lr_interaction")
    add(a, x, ep, "", "p_value", res.interaction_p, "cox_lr_interaction")
    for r in res.per_center[res.per_center["estimable"]].to_dict("records"):
        for stat in ("hr", "hr_lower", "hr_upper", "p_value", "n", "events"):
            add(a, x, ep, f"center:{r['center']}", stat, r[stat], "cox_wald")
    if res.pooled is not None:
        add(a, x, ep, "", "q", res.pooled.q, "cochran_q")
        add(a, x, ep, "", "p_value", res.pooled.q_p, "cochran_q")
        add(a, x, ep, "", "i2", res.pooled.row("FE")["i2"], "cochran_q")
        for r in res.pooled.summary.to_dict("records"):
            term, test = f"pooled:{r['method']}", META_TESTS[r["method"]]
            for stat, val in (("hr", np.exp(r["estimate"])), ("hr_lower", np.exp(r["lower"])),
                              ("hr_upper", np.exp(r["upper"])), ("p_value", r["p_value"]),
                              ("tau2", r["tau2"]), ("i2", r["i2"])):
                add(a, x, ep, term, stat, val, test)


def _competing_rows(add, comp, ep, res: CIFResult, times) -> None:
    a = "competing"
    for r in res.tests.to_dict("records"):
        add(a, comp, ep, f"cause:{r['cause']}", "p_value", r["p_value"], "gray")
        add(a, comp, ep, f"cause:{r['cause']}", "statistic", r["statistic"], "gray")
    for r in res.summary.to_dict("records"):
        term = f"cause:{r['cause']}|level:{r['group']}"
        add(a, comp, ep, term, "n", r["n"], "descriptive")
        add(a, comp, ep, term, "events", r["events"], "descriptive")
    if times:
        for r in res.at(times).to_dict("records"):
            term = f"cause:{r['cause']}|level:{r['group']}|time:{r['time']:g}"
            for stat, key in (("cif", "estimate"), ("lower", "lower"), ("upper", "upper")):
                add(a, comp, ep, term, stat, r[key], "aalen_johansen")


def _fine_gray_rows(add, cause, ep, res: FineGrayResult) -> None:
    comp = f"cause:{cause}"
    add("fine_gray", comp, ep, "", "n", res.n, "fine_gray")
    add("fine_gray", comp, ep, "", "events", res.events, "fine_gray")
    for r in res.summary.to_dict("records"):
        for stat in ("shr", "shr_lower", "shr_upper", "p_value"):
            add("fine_gray", comp, ep, r["term"], stat, r[stat], "fine_gray")
