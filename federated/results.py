"""What the central returns to the researcher (JSON), and the report objects rebuilt from it.

`central_output` holds:
* `table`: the results table (`analysis.runner.COLUMNS` + `suppressed`), with the release
  rule of `carpool export-aggregates` applied (`warehouse.aggregates.results`: counts from 1 to
  min_cell - 1 and every statistic of their group are suppressed);
* `pooled`: the pooled (summed over sites) count tables and histograms, which draw the curves
  and bars of the report, with no per-site breakdown;
* `cox`, `screen`: the fitted models; `federation`: rounds, and bytes and requests per site.
`plan_results(plan, output)` turns it back into the `PlanResults` the report renders.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from analysis.cox import CoxResult, ScreenResult
from analysis.runner import COLUMNS
from federated.central import pool, pooled_results
from warehouse.aggregates import results as suppress

SECTIONS = {"crosstabs": (("analysis", "comparison", "endpoint"), ["value", "group", "count"]),
            "histograms": (("analysis", "comparison", "endpoint"), ["group", "sign", "k", "count"]),
            "survival": (("endpoint", "comparison"), ["group", "time", "event", "count"])}


def pooled_payload(payloads: list[dict]) -> dict:
    out = {"site": "pooled", "populations": {k: sum(p["populations"][k] for p in payloads)
                                             for k in payloads[0]["populations"]}}
    for section, (keys, cols) in SECTIONS.items():
        out[section] = [dict(zip(keys, key, strict=True), cells=frame[cols].values.tolist())
                        for key, frame in pool(payloads, section, keys, cols).items()]
    return out


def cox_json(res: CoxResult) -> dict:
    d = {f.name: getattr(res, f.name) for f in dataclasses.fields(res)}
    d["summary"] = res.summary.to_dict("records")
    d["factors"] = res.factors.to_dict("records")
    d["covariance"] = {"index": list(res.covariance.index), "values": res.covariance.to_numpy().tolist()}
    d["aliased"], d["warnings"] = list(res.aliased), list(res.warnings)
    return {k: (float(v) if isinstance(v, (np.floating, np.integer)) else v) for k, v in d.items()}


def cox_from_json(d: dict) -> CoxResult:
    d = dict(d)
    d["summary"] = pd.DataFrame(d["summary"])
    d["factors"] = pd.DataFrame(d["factors"], columns=["variable", "dof", "wald_chi2", "wald_p", "lr_chi2", "lr_p"])
    cov = d["covariance"]
    d["covariance"] = pd.DataFrame(cov["values"], index=cov["index"], columns=cov["index"])
    d["aliased"], d["warnings"] = tuple(d["aliased"]), tuple(d["warnings"])
    return CoxResult(**d)


def central_output(results, payloads: list[dict], policy, rounds) -> dict:
    table = suppress(results.table, policy.min_cell)[COLUMNS + ["suppressed"]]
    return {
        "table": table.astype(object).where(table.notna(), None).to_dict("records"),
        "pooled": pooled_payload(payloads),
        "cox": {ep: cox_json(r) for ep, r in results.cox.items()},
        "screen": {ep: {"threshold": s.threshold, "selected": list(s.selected), "errors": s.errors,
                        "models": {v: cox_json(m) for v, m in s.models.items()}}
                   for ep, s in results.screen.items()},
        "errors": [[*k, v] for k, v in results.errors.items()],
        "federation": {"rounds": rounds.rounds, "sites": {s: {"bytes": b, "requests": rounds.requests[s]}
                                                           for s, b in sorted(rounds.bytes.items())}},
        "policy": policy.model_dump(mode="json"),
    }


def plan_results(plan, output: dict):
    """The `PlanResults` of a federated run, for the report (the table is the central's)."""
    cox = {ep: cox_from_json(d) for ep, d in output["cox"].items()}
    screens = {}
    for ep, s in output["screen"].items():
        models = {v: cox_from_json(m) for v, m in s["models"].items()}
        rows = [{**rec, "variable_p": _var_p(m), "selected": v in s["selected"], "n": m.n, "events": m.events}
                for v, m in models.items() for rec in m.summary.to_dict("records")]
        screens[ep] = ScreenResult(pd.DataFrame(rows), tuple(s["selected"]), s["threshold"], models, s["errors"])
    res = pooled_results(plan, [output["pooled"]], output["policy"]["histogram_resolution"],
                         cox=lambda ep, *_: cox[ep], screen=lambda ep, *_: screens[ep])
    table = pd.DataFrame(output["table"])
    table["value"] = table["value"].astype(float)
    return dataclasses.replace(res, table=table[COLUMNS],
                               errors={tuple(e[:3]): e[3] for e in output["errors"]})


def _var_p(m: CoxResult) -> float:
    return float(m.factors["wald_p"].iloc[0]) if len(m.factors) else float(m.summary["p_value"].iloc[0])
