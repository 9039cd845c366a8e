"""The report's "Beyond the paper" section: tables and methods text for heterogeneity and
competing risks (the plan's `beyond_paper`), from a `PlanResults`. Figures come from
`analysis.figures_beyond`; the layout is in templates/report.html.j2."""

from __future__ import annotations

import numpy as np

from analysis.figures import ENDPOINT_TITLES, TEST_NAMES, _label, group_label, level_labels


def _ci(hr, lo, hi) -> str:
    if not np.isfinite(hr):
        return "NA"
    return f"{hr:.2f} ({lo:.2f}–{hi:.2f})"


def heterogeneity_blocks(results, figures: dict) -> list[dict]:
    """One block per endpoint and exposure: the tests (each naming itself) and the forest plot."""
    plan = results.plan
    blocks = []
    for (x, ep), res in results.beyond.heterogeneity.items():
        s = res.stratified.summary.iloc[0]
        rows = [
            {"label": "HR stratified by center (95% CI)", "value": _ci(s["hr"], s["hr_lower"], s["hr_upper"]),
             "p": s["p_value"], "test": TEST_NAMES["cox_stratified"]},
            {"label": "Log-rank stratified by center", "value": "", "p": res.logrank.p_value,
             "test": TEST_NAMES["logrank_stratified"]},
            {"label": f"Center × exposure ({res.interaction_dof} df)",
             "value": f"χ² = {res.interaction_chi2:.2f}", "p": res.interaction_p,
             "test": TEST_NAMES["cox_lr_interaction"]}]
        if res.pooled is not None:
            fe = res.pooled.row("FE")
            rows.append({"label": f"Heterogeneity across {res.pooled.k} centers",
                         "value": f"Q = {res.pooled.q:.2f}, I² = {fe['i2']:.1f}%",
                         "p": res.pooled.q_p, "test": TEST_NAMES["cochran_q"]})
            for r in res.pooled.summary.to_dict("records"):
                test = {"FE": "meta_fixed", "DL": "meta_dl", "REML": "meta_reml"}[r["method"]]
                rows.append({"label": f"Pooled HR, {TEST_NAMES[test]}"
                                      + (f" (τ² = {r['tau2']:.3f})" if r["method"] != "FE" else ""),
                             "value": _ci(*np.exp([r["estimate"], r["lower"], r["upper"]])),
                             "p": r["p_value"], "test": "Wald z test"})
        skipped = [f"{r['center']}: {r['note']}"
                   for r in res.per_center.to_dict("records") if not r["estimable"]]
        blocks.append({"title": f"{ENDPOINT_TITLES.get(ep, ep)}: {_label(plan, x)}",
                       "rows": rows, "skipped": skipped,
                       "figure": figures.get(f"forest_{ep}_{x}")})
    return blocks


def competing_blocks(results, figures: dict) -> list[dict]:
    """Per endpoint and grouping: CIF at the plan's times, Gray's test, the CIF figure."""
    plan = results.plan
    cr = plan.beyond_paper.competing_risks if plan.beyond_paper else None
    blocks = []
    for (comp, ep), res in results.beyond.competing.items():
        spec = cr.endpoints[ep]
        labels = level_labels(plan, comp) if comp != "all" else None
        at = res.at(cr.times) if cr.times else None
        rows = []
        for r in res.summary.to_dict("records"):
            cells = []
            if at is not None:
                part = at[(at["group"] == r["group"]) & (at["cause"] == r["cause"])]
                cells = [f"{100 * p['estimate']:.1f}% ({100 * p['lower']:.1f}–{100 * p['upper']:.1f})"
                         if np.isfinite(p["lower"]) else f"{100 * p['estimate']:.1f}%"
                         for p in part.to_dict("records")]
            rows.append({"group": ("All" if r["group"] == "all" else
                                   group_label(_label(plan, comp), r["group"], labels)),
                         "cause": spec.labels.get(r["cause"], r["cause"]), "n": r["n"],
                         "events": r["events"], "cells": cells})
        tests = [{"cause": spec.labels.get(t["cause"], t["cause"]), "p": t["p_value"],
                  "statistic": t["statistic"], "dof": t["dof"], "test": TEST_NAMES["gray"]}
                 for t in res.tests.to_dict("records")]
        blocks.append({"title": (f"{ENDPOINT_TITLES.get(ep, ep)}, "
                                 + ("all patients" if comp == "all" else f"by {_label(plan, comp)}")),
                       "times": [f"{t:g} months" for t in cr.times], "rows": rows,
                       "tests": tests, "figure": figures.get(f"cif_{ep}_{comp}")})
    return blocks


def fine_gray_blocks(results) -> list[dict]:
    plan = results.plan
    cr = plan.beyond_paper.competing_risks if plan.beyond_paper else None
    from analysis.report import _term_label

    out = []
    for (cause, ep), res in results.beyond.fine_gray.items():
        out.append({"title": f"{ENDPOINT_TITLES.get(ep, ep)}: "
                             f"{cr.endpoints[ep].labels.get(cause, cause)} (subdistribution HR)",
                    "n": res.n, "events": res.events, "competing": res.competing_events,
                    "rows": [{"label": _term_label(plan, r["term"]),
                              "value": _ci(r["shr"], r["shr_lower"], r["shr_upper"]),
                              "p": r["p_value"]} for r in res.summary.to_dict("records")],
                    "test": TEST_NAMES["fine_gray"]})
    return out


def methods_beyond(plan) -> list[str]:
    b = plan.beyond_paper
    if b is None:
        return []
    out = []
    if b.heterogeneity:
        h = b.heterogeneity
        xs = ", ".join(_label(plan, x) for x in h.exposures)
        out.append(
            f"Beyond the paper, center heterogeneity was examined for {xs} on "
            f"{' and '.join(e.upper() for e in h.endpoints)}: a Cox model stratified by "
            "center (R coxph(... + strata(center)), Efron ties, Wald test), the log-rank test "
            "stratified by center (R survdiff(... + strata(center))), per-center Cox hazard "
            "ratios pooled by inverse variance (fixed effect, and random effects with "
            "DerSimonian–Laird τ² floored at 0 and REML, as R metafor::rma), Cochran's Q with "
            "I², and a likelihood-ratio test of the center × exposure interaction (R anova of "
            "the stratified models with and without exposure × center terms). A center whose "
            "hazard ratio cannot be estimated (one exposure level, or no events in one level) "
            "is named and left out of the pooling.")
    if b.competing_risks:
        c = b.competing_risks
        for ep, spec in c.endpoints.items():
            causes = [spec.labels.get(x, x).lower() for x in [spec.event, *spec.competing]]
            txt = (f"{ENDPOINT_TITLES.get(ep, ep)} was split into {' and '.join(causes)}, "
                   "each the other's competing risk; their cumulative incidence was estimated "
                   "with the Aalen–Johansen estimator (tied times grouped, as R cmprsk::cuminc) "
                   "with cuminc's variance and a log(−log) 95% CI, and compared by "
                   + ", ".join(_label(plan, x) for x in c.compare_by)
                   + " with Gray's test (cuminc's Tests).")
            if c.terms:
                txt += (" Subdistribution hazard ratios of "
                        + ", ".join(_label(plan, x) for x in c.terms)
                        + " are from the Fine–Gray model (R cmprsk::crr, Wald tests with its "
                        "sandwich variance).")
            out.append(txt)
    return out
