"""What one site computes on its own rows: counts and histograms, never a patient's row.

`describe(SiteView(df, plan), policy)` walks the analysis plan exactly as `analysis.runner.run_plan`
does (same variables, populations and exclusions of missing values) and returns, for the
site's `analysis_patient` rows:

* `populations`: rows per population;
* `crosstabs`: counts per (value, group) of every categorical Table 1 variable and response
  endpoint (Table 1, Fig. 1): the pooled table is the sum of the sites' tables;
* `histograms`: counts per (group, bin) of every continuous variable (`federated.histogram`);
* `survival`: counts per (group, time, event) of every survival endpoint, overall and by
  each comparison: the sufficient statistic of Kaplan–Meier, log-rank and reverse KM.

Every list holds aggregates only: a label, a time or a bin, and a count. Times are the
site's (optionally coarsened) event and censoring times in months; no dates, no study ids.
"""
from __future__ import annotations

import pandas as pd

from analysis.derive import select
from analysis.plan import Plan
from analysis.runner import variable_frame
from analysis.survival import level_name
from federated.disclosure import DisclosureConfig, coarsen
from federated.histogram import bin_codes

_D, _E, _V = "__duration", "__event", "__value"


class SiteView:
    """The plan's variables and populations over one site's rows (as run_plan builds them)."""

    def __init__(self, df: pd.DataFrame, plan: Plan):
        self.df, self.plan = df, plan
        self.variables = variable_frame(df, plan)
        self.pops = {k: select(df, [c.as_tuple() for c in p.where]).index
                     for k, p in plan.populations.items()}

    def frame(self, pop: str, names: list[str], **endpoint: str) -> pd.DataFrame:
        idx = self.pops[pop]
        parts = [self.variables.loc[idx, names]]
        parts += [self.df.loc[idx, col].rename(alias) for alias, col in endpoint.items()]
        return pd.concat(parts, axis=1)


def crosstab_cells(data: pd.DataFrame, value: str, group: str) -> list[list]:
    """[[value label, group label, count], ...] over rows with both present."""
    d = data.dropna(subset=[value, group])
    counts = pd.DataFrame({"v": d[value].map(level_name), "g": d[group].map(level_name)}).value_counts()
    return [[v, g, int(c)] for (v, g), c in sorted(counts.items())]


def histogram_cells(data: pd.DataFrame, value: str, group: str, resolution: float) -> list[list]:
    """[[group label, sign, k, count], ...] over rows with both present."""
    d = data.dropna(subset=[value, group])
    codes = bin_codes(d[value].astype(float), resolution)
    frame = pd.DataFrame({"g": d[group].map(level_name).to_numpy(),
                          "s": [c[0] for c in codes], "k": [c[1] for c in codes]})
    return [[g, int(s), int(k), int(c)] for (g, s, k), c in sorted(frame.value_counts().items())]


def survival_cells(data: pd.DataFrame, group: str | None, coarsen_days: float | None) -> list[list]:
    """[[group label, time, event 0/1, count], ...]; group "all" when ungrouped."""
    cols = [_D, _E] + ([group] if group else [])
    d = data.dropna(subset=cols)
    frame = pd.DataFrame({"g": d[group].map(level_name).to_numpy() if group else "all",
                          "t": coarsen(d[_D].astype(float), coarsen_days),
                          "e": d[_E].astype(int).to_numpy()})
    return [[g, float(t), int(e), int(c)] for (g, t, e), c in sorted(frame.value_counts().items())]


def describe(view: SiteView, policy: DisclosureConfig) -> dict:
    """Every non-iterative aggregate the plan needs from this site (module docstring)."""
    plan = view.plan
    out = {"populations": {k: len(v) for k, v in view.pops.items()},
           "crosstabs": [], "histograms": [], "survival": []}
    res = policy.histogram_resolution

    def add_distribution(analysis, comp, ep, data, value):
        out["histograms"].append({"analysis": analysis, "comparison": comp, "endpoint": ep,
                                  "cells": histogram_cells(data, value, comp, res)})

    if plan.table1:
        for comp in plan.table1.compare_by:
            for ep in plan.table1.variables:
                data = view.frame("all", list(dict.fromkeys([comp, ep])))
                if plan.variables[ep].kind == "continuous":
                    add_distribution("table1", comp, ep, data, ep)
                else:
                    out["crosstabs"].append({"analysis": "table1", "comparison": comp, "endpoint": ep,
                                             "cells": crosstab_cells(data, ep, comp)})
    if plan.response:
        for ep, spec in plan.response.endpoints.items():
            for comp in plan.response.compare_by:
                data = view.frame(spec.population, [comp], **{_V: spec.column})
                out["crosstabs"].append({"analysis": "response", "comparison": comp, "endpoint": ep,
                                         "cells": crosstab_cells(data, _V, comp)})
    if plan.survival:
        for ep, spec in plan.survival.endpoints.items():
            cols = {_D: spec.duration, _E: spec.event}
            out["survival"].append({"endpoint": ep, "comparison": "all", "cells": survival_cells(
                view.frame(spec.population, [], **cols), None, policy.coarsen_days)})
            for comp in plan.survival.compare_by:
                out["survival"].append({"endpoint": ep, "comparison": comp, "cells": survival_cells(
                    view.frame(spec.population, [comp], **cols), comp, policy.coarsen_days)})
    if plan.kinetics:
        for ep, spec in plan.kinetics.endpoints.items():
            for comp in plan.kinetics.compare_by:
                add_distribution("kinetics", comp, ep, view.frame(spec.population, [comp], **{_V: spec.column}),
                                 _V)
    return out
