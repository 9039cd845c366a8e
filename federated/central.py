"""The central side: pool the sites' aggregates and run the plan's statistics on them.

`pooled_results(plan, payloads, resolution, cox)` mirrors `analysis.runner.run_plan` and
returns the same `PlanResults` and results table, from per-site aggregates only:

* counts (Table 1, Fig. 1), Kaplan–Meier, log-rank and reverse KM: the pooled table of
  (value, group) or (group, time, event) counts is the sum of the sites' tables, and it is
  the *whole* sufficient statistic of those methods. `expand` turns it back into a frame of
  one row per count (carrying nothing but the counted labels and times) and the very
  functions that `carpool analyze` uses run on it, so the numbers are the centralized ones.
* medians, ranges, Mann–Whitney, Kruskal–Wallis: from the pooled histograms
  (`federated.histogram`), labelled `APPROXIMATE` in the `test` column, with error-bound rows.
* Cox: `cox(endpoint, names, categorical, population)` is the federated fit (rounds of
  risk-set sums, `federated.cox`), injected so that this module stays free of transport.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from analysis.cox import FIT_ERRORS
from analysis.distributions import compare_distributions
from analysis.logrank import logrank
from analysis.plan import Plan
from analysis.proportions import compare_proportions
from analysis.runner import (
    _LANDMARK_COLUMNS,
    COLUMNS,
    PlanResults,
    SurvivalComparison,
    _cox_rows,
    _distribution_rows,
    _km_rows,
    _proportion_rows,
)
from analysis.survival import follow_up, kaplan_meier
from federated import histogram

APPROXIMATE = "approximate (federated)"
_D, _E, _V, _G, _S = "__duration", "__event", "__value", "__group", "__site"


def pool(payloads: list[dict], section: str, keys: tuple[str, ...], columns: list[str]) -> dict[tuple, pd.DataFrame]:
    """{key: summed cells} over sites for one section of `partials.describe`'s payloads."""
    parts: dict[tuple, list[pd.DataFrame]] = {}
    for p in payloads:
        for entry in p[section]:
            key = tuple(entry[k] for k in keys)
            parts.setdefault(key, []).append(pd.DataFrame(entry["cells"], columns=columns))
    by = columns[:-1]
    return {k: (pd.concat(v, ignore_index=True).groupby(by, sort=True, as_index=False)["count"].sum())
            for k, v in parts.items()}


def expand(cells: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """One row per counted unit: `cells[count]` copies of each row, renamed by `columns`."""
    rep = cells["count"].astype(int).to_numpy()
    return pd.DataFrame({new: np.repeat(cells[old].to_numpy(), rep) for old, new in columns.items()})


def survival_frame(cells: pd.DataFrame, group: str | None, strata: bool = False) -> pd.DataFrame:
    cols = {"group": _G, "time": _D, "event": _E} | ({"stratum": _S} if strata else {})
    frame = expand(cells, cols)
    frame[_D] = frame[_D].astype(float)
    frame[_E] = frame[_E].astype(int)
    return frame.rename(columns={_G: group}) if group else frame.drop(columns=[_G])


def site_survival_cells(payloads: list[dict], endpoint: str, comparison: str) -> pd.DataFrame:
    """(stratum = site, group, time, event, count) for a log-rank stratified by site.

    R: `survdiff(Surv(time, status) ~ group + strata(site))`."""
    rows = []
    for p in payloads:
        for entry in p["survival"]:
            if entry["endpoint"] == endpoint and entry["comparison"] == comparison:
                rows += [[p["site"], *c] for c in entry["cells"]]
    return pd.DataFrame(rows, columns=["stratum", "group", "time", "event", "count"])


CoxFn = Callable[[str, list[str], dict[str, str]], object]


def pooled_results(plan: Plan, payloads: list[dict], resolution: float,
                   cox: CoxFn | None = None, screen: CoxFn | None = None) -> PlanResults:
    """The plan's results from the sites' `describe` payloads (module docstring)."""
    rows: list[dict] = []
    landmarks: list[pd.DataFrame] = []
    errors: dict[tuple[str, str, str], str] = {}

    def add(analysis, comparison, endpoint, term, statistic, value, test):
        rows.append(dict(analysis=analysis, comparison=comparison, endpoint=endpoint,
                         term=term, statistic=statistic, value=float(value), test=test))

    crosstabs = pool(payloads, "crosstabs", ("analysis", "comparison", "endpoint"), ["value", "group", "count"])
    hists = pool(payloads, "histograms", ("analysis", "comparison", "endpoint"), ["group", "sign", "k", "count"])
    surv = pool(payloads, "survival", ("endpoint", "comparison"), ["group", "time", "event", "count"])

    def proportions(analysis, comp, ep, test):
        frame = expand(crosstabs[(analysis, comp, ep)], {"value": _V, "group": _G})
        return compare_proportions(frame, _V, _G, test)

    def distribution(analysis, comp, ep):
        cells = hists[(analysis, comp, ep)]
        values = histogram.expand(cells, resolution)
        res = compare_distributions(values.rename(columns={"group": _G, "value": _V}), _V, _G)
        start = len(rows)
        _distribution_rows(add, analysis, comp, ep, res)
        for r in rows[start:]:
            if r["statistic"] != "n":
                r["test"] = f"{r['test']}; {APPROXIMATE}"
        for b in histogram.error_bounds(values).to_dict("records"):
            for stat in ("median_max_error", "range_max_error"):
                add(analysis, comp, ep, f"level:{b['group']}", stat, b[stat], APPROXIMATE)
        if res.test == "mann_whitney":
            add(analysis, comp, ep, "", "u_max_error", histogram.u_max_error(cells), APPROXIMATE)
        return res

    table1 = {}
    if plan.table1:
        for comp in plan.table1.compare_by:
            for ep in plan.table1.variables:
                if plan.variables[ep].kind == "continuous":
                    table1[(comp, ep)] = distribution("table1", comp, ep)
                else:
                    res = proportions("table1", comp, ep, plan.table1.categorical_test)
                    _proportion_rows(add, "table1", comp, ep, res, only_value=None)
                    table1[(comp, ep)] = res

    response = {}
    if plan.response:
        for ep in plan.response.endpoints:
            for comp in plan.response.compare_by:
                res = proportions("response", comp, ep, plan.response.tests.get(comp))
                _proportion_rows(add, "response", comp, ep, res, only_value="yes")
                response[(comp, ep)] = res

    survival, overall, followup = {}, {}, None
    if plan.survival:
        times = plan.survival.times
        for ep in plan.survival.endpoints:
            data = survival_frame(surv[(ep, "all")], None)
            km = kaplan_meier(data, _D, _E)
            overall[ep] = km
            _km_rows(add, "survival", "all", ep, km, level=False)
            if times:
                landmarks.append(km.survival_at(times).assign(comparison="all", endpoint=ep))
            for comp in plan.survival.compare_by:
                data = survival_frame(surv[(ep, comp)], comp)
                km, lr = kaplan_meier(data, _D, _E, comp), logrank(data, _D, _E, comp)
                survival[(comp, ep)] = SurvivalComparison(km=km, logrank=lr)
                add("survival", comp, ep, "", "p_value", lr.p_value, "logrank")
                _km_rows(add, "survival", comp, ep, km, level=True)
                if len(payloads) > 1:  # stratified by center: each site's cells are its stratum
                    by_site = survival_frame(site_survival_cells(payloads, ep, comp), comp, strata=True)
                    strat = logrank(by_site, _D, _E, comp, strata=_S)
                    add("survival", comp, ep, "strata:site", "p_value", strat.p_value, "logrank_stratified")
                if times:
                    landmarks.append(km.survival_at(times).assign(comparison=comp, endpoint=ep))
        if plan.followup:
            ep = plan.followup.endpoint
            followup = follow_up(survival_frame(surv[(ep, "all")], None), _D, _E)
            s = followup.summary.iloc[0]
            for stat in ("median", "lower", "upper", "n"):
                add("followup", "all", ep, "", stat, s[stat], "reverse_km")

    kinetics = {}
    if plan.kinetics:
        for ep in plan.kinetics.endpoints:
            for comp in plan.kinetics.compare_by:
                kinetics[(comp, ep)] = distribution("kinetics", comp, ep)

    cox_results, screen_results = {}, {}
    if plan.cox and cox is not None:
        categorical = {k: v.reference for k, v in plan.variables.items() if v.kind == "categorical"}
        for ep in plan.cox.endpoints:
            if plan.cox.terms:
                cats = {k: categorical[k] for k in plan.cox.terms if k in categorical}
                try:
                    cox_results[ep] = cox(ep, list(plan.cox.terms), cats)
                    _cox_rows(add, "all", ep, cox_results[ep])
                except FIT_ERRORS as exc:
                    errors[("cox", "all", ep)] = f"{type(exc).__name__}: {exc}"
            if plan.cox.screen and screen is not None:
                sc = plan.cox.screen
                cats = {k: categorical[k] for k in sc.candidates if k in categorical}
                try:
                    screen_results[ep] = screen(ep, list(sc.candidates), cats)
                    for model in screen_results[ep].models.values():
                        _cox_rows(add, "screen", ep, model, model.summary["variable"].iloc[0])
                except FIT_ERRORS as exc:
                    errors[("cox", "screen", ep)] = f"{type(exc).__name__}: {exc}"

    populations = {k: sum(p["populations"][k] for p in payloads) for k in plan.populations}
    return PlanResults(
        plan=plan, table1=table1, response=response, survival=survival, overall=overall,
        followup=followup, kinetics=kinetics, cox=cox_results, screen=screen_results,
        populations=populations,
        landmarks=(pd.concat(landmarks, ignore_index=True)[_LANDMARK_COLUMNS] if landmarks
                   else pd.DataFrame(columns=_LANDMARK_COLUMNS)),
        errors=errors, table=pd.DataFrame(rows, columns=COLUMNS))
