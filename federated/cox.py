"""Federated Cox regression: sites send risk-set sums, the central takes the Newton steps.

The Cox log partial likelihood, gradient and information depend on the rows only through
per-(stratum, event time) sums over the risk set and over the tied deaths
(`analysis.cox_aggregate`, WebDISCO's observation, with Efron's tied-death sums). The sums of
disjoint row sets add up, so the pooled fit is the centralized fit. Rounds, for all models of a
plan at once where possible:

1. `setup`: per model, the site's complete-case n, events, the levels it holds of each factor,
   and its distinct death times per stratum;
2. `moments`: Σx per design column (with the pooled factor levels) -> pooled column means;
3. `spread`: Σ|x - mean| -> the pooled scale, so the central centres and scales the design
   exactly as `analysis.cox_engine.fit_cox` does;
4. `sums`, once per Newton evaluation of one model: the aggregate at the central's beta, at the
   pooled death times. `analysis.cox_engine.fit_likelihood` runs the iteration (R's rules) and
   `analysis.cox.cox_result` assembles the same `CoxResult` as `carpool analyze`.

The site side (`site_*`) is pure: DataFrame and request in, JSON-able dict out.
Not federated: concordance (it compares pairs of patients across sites): NaN here.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from analysis.cox import CoxResult, cox_result, screen_models
from analysis.cox_aggregate import CoxAggregate, combine, risk_set_sums
from analysis.cox_engine import fit_likelihood
from analysis.survinput import SurvivalInputError
from analysis.survival import level_name
from federated.disclosure import coarsen

_D, _E = "__duration", "__event"
SITE_STRATUM = "__site"
FIELDS = ("n_risk", "d", "s0", "s1", "s2", "xd", "ed", "d0", "d1", "d2")


# ---- site side -------------------------------------------------------------------------

def model_rows(view, model: dict, coarsen_days: float | None):
    """(complete-case frame, time, status, strata) of one model at one site."""
    spec = view.plan.survival.endpoints[model["endpoint"]]
    data = view.frame(spec.population, list(model["covariates"]), **{_D: spec.duration, _E: spec.event})
    data = data.dropna(subset=[_D, _E, *model["covariates"]])
    time = coarsen(data[_D].astype(float), coarsen_days)
    status = data[_E].astype(int).to_numpy()
    site = view.df["site_id"].iloc[0] if len(view.df) else ""
    strata = np.full(len(data), site, dtype=object) if model.get("strata") == "site" else None
    return data, time, status, strata


def design(data: pd.DataFrame, model: dict) -> np.ndarray:
    """The 0/1-coded design with the *pooled* factor levels (a site may miss some)."""
    cols = []
    for var in model["covariates"]:
        if var in model["levels"]:
            labels = data[var].map(level_name)
            cols += [(labels == lv).astype(float).to_numpy() for lv in model["levels"][var]]
        else:
            cols.append(data[var].astype(float).to_numpy())
    return np.column_stack(cols) if cols else np.zeros((len(data), 0))


def site_setup(view, model: dict, coarsen_days) -> dict:
    data, time, status, strata = model_rows(view, model, coarsen_days)
    dead = status == 1
    stratum = strata[dead] if strata is not None else np.zeros(int(dead.sum()), dtype=int)
    times = sorted({(str(s), float(t)) for s, t in zip(stratum, time[dead], strict=True)})
    return {"n": len(data), "events": int(dead.sum()),
            "levels": {v: sorted(set(data[v].map(level_name))) for v in model.get("categorical", {})},
            "death_times": [list(x) for x in times]}


def site_moments(view, model: dict, coarsen_days) -> dict:
    data, *_ = model_rows(view, model, coarsen_days)
    x = design(data, model)
    out = {"n": len(data), "sum": x.sum(axis=0).tolist()}
    if "mean" in model:
        out["abs_dev"] = np.abs(x - np.asarray(model["mean"])).sum(axis=0).tolist()
    return out


def site_sums(view, model: dict, coarsen_days) -> dict:
    data, time, status, strata = model_rows(view, model, coarsen_days)
    x = (design(data, model) - np.asarray(model["mean"])) * np.asarray(model["scale"])
    cols = model["cols"]
    times = pd.DataFrame(model["times"], columns=["stratum", "time"])
    if strata is None:
        times["stratum"] = 0
    agg = risk_set_sums(x[:, cols], time, status, np.asarray(model["beta"], dtype=float),
                        strata, times)
    return {k: getattr(agg, k).tolist() for k in FIELDS}


# ---- central side ----------------------------------------------------------------------

Ask = Callable[[str, dict], list[dict]]  # (method, kwargs) -> one payload per site


class FederatedCox:
    """Fits the plan's Cox models over the sites through `ask` (one call = one round)."""

    def __init__(self, ask: Ask, ties: str = "efron", strata: str | None = None):
        self.ask, self.ties, self.strata = ask, ties, strata
        self.models: dict[str, dict] = {}

    def key(self, endpoint: str, covariates: list[str]) -> str:
        return f"{endpoint}|{','.join(covariates)}"

    def prepare(self, models: list[tuple[str, list[str], dict[str, str]]]) -> None:
        """Rounds 1-3 for every (endpoint, covariates, {factor: reference}) at once."""
        specs = {self.key(ep, covs): {"endpoint": ep, "covariates": covs, "categorical": cats,
                                      "strata": self.strata}
                 for ep, covs, cats in models}
        setup = self.ask("cox_setup", {"models": specs})
        for key, spec in specs.items():
            parts = [p["models"][key] for p in setup]
            levels = {}
            for var, ref in spec["categorical"].items():
                seen = sorted(set().union(*[set(p["levels"][var]) for p in parts]))
                if str(ref) not in seen:
                    raise ValueError(f"reference level {ref!r} of {var!r} not found in the data")
                levels[var] = [lv for lv in seen if lv != str(ref)]
            times = sorted({tuple(t) for p in parts for t in p["death_times"]})
            spec.update(levels=levels, n=sum(p["n"] for p in parts),
                        events=sum(p["events"] for p in parts), times=[list(t) for t in times])
        for key, payloads in self._moments(specs).items():
            n = specs[key]["n"]
            specs[key]["mean"] = (np.sum([p["sum"] for p in payloads], axis=0) / n).tolist() if n else []
        for key, payloads in self._moments(specs).items():
            spread = np.sum([p["abs_dev"] for p in payloads], axis=0) / max(specs[key]["n"], 1)
            specs[key]["scale"] = np.where(spread > 0, 1 / np.where(spread > 0, spread, 1), 1.0).tolist()
        self.models.update(specs)

    def _moments(self, specs: dict[str, dict]) -> dict[str, list[dict]]:
        wire = {k: _wire(s) for k, s in specs.items()}
        got = self.ask("cox_moments", {"models": wire})
        return {k: [p["models"][k] for p in got] for k in specs}

    def fit(self, endpoint: str, covariates: list[str], categorical: dict[str, str]) -> CoxResult:
        key = self.key(endpoint, covariates)
        if key not in self.models:
            self.prepare([(endpoint, covariates, categorical)])
        spec = self.models[key]
        if spec["events"] == 0:
            raise SurvivalInputError(f"no events among the {spec['n']} complete rows: "
                                     "a Cox model cannot be fitted")
        names, terms = [], {}
        for var in covariates:
            terms[var] = ([f"{var}:{lv}" for lv in spec["levels"][var]] if var in spec["levels"] else [var])
            names += terms[var]
        p = len(names)

        def lik(cols):
            cols = [int(c) for c in np.asarray(cols)]

            def at(beta):
                req = dict(_wire(spec), cols=cols, beta=np.asarray(beta, dtype=float).tolist())
                parts = self.ask("cox_sums", {"model": req})
                return combine([_aggregate(part, spec["times"], beta, self.strata) for part in parts], self.ties)
            return at

        fit = fit_likelihood(lik, p, np.asarray(spec["scale"]))

        def refit(cols: list[int]) -> float:
            return fit_likelihood(lambda c: lik(np.asarray(cols)[c]), len(cols),
                                  np.asarray(spec["scale"])[cols]).loglik[1]
        return cox_result(fit, names, terms, refit, n=spec["n"], events=spec["events"], n_excluded=0,
                          ties=self.ties, strata=self.strata)

    def screen(self, endpoint: str, candidates: list[str], categorical: dict[str, str], threshold: float):
        return screen_models(lambda var, cat: self.fit(endpoint, [var], cat or {}), candidates,
                             categorical, threshold)


def _wire(spec: dict) -> dict:
    return {k: v for k, v in spec.items() if k not in ("n", "events")}


def _aggregate(part: dict, times: list, beta, strata) -> CoxAggregate:
    t = pd.DataFrame(times, columns=["stratum", "time"])
    labels = t["stratum"].to_numpy(dtype=object) if strata else np.zeros(len(t), dtype=int)
    arrays = {k: np.asarray(part[k], dtype=float) for k in FIELDS}
    p = len(beta)
    for k, shape in (("s1", (p,)), ("xd", (p,)), ("d1", (p,)), ("s2", (p, p)), ("d2", (p, p))):
        arrays[k] = arrays[k].reshape((len(t), *shape))
    return CoxAggregate(strata=labels, times=t["time"].to_numpy(dtype=float), beta=np.asarray(beta), **arrays)
