"""carpool's vantage6 algorithm: partial functions run at each site, `central` coordinates.

Packaged the vantage6 way (PKG_NAME=federated.algorithm in the algorithm image; see
docs/federated.md). A partial gets the node's data (`@data(1)`: the site's own
`analysis_patient`, see `federated.site_data`) and the public analysis plan; it applies the
node's disclosure policy (`federated.disclosure.policy_from_env`), logs what it returns, and
returns aggregates only. `central` (`@algorithm_client`) sends one task per round to every
organization, pools, and returns the results table (small cells suppressed), the pooled
tables the report draws, the Cox fits, and the rounds and bytes per site.
"""
from __future__ import annotations

import json

import pandas as pd
from vantage6.algorithm.tools.decorators import algorithm_client, data

from analysis.plan import parse_plan
from federated import cox as fcox
from federated.central import pooled_results
from federated.disclosure import DisclosureLog, check_site, policy_from_env
from federated.partials import SiteView, describe
from federated.results import central_output


def _site(df: pd.DataFrame, plan: dict, method: str, description: str, compute) -> dict:
    policy = policy_from_env()
    site = str(df["site_id"].iloc[0]) if len(df) else "unknown"
    check_site(site, len(df), policy)
    payload = {"site": site, **compute(SiteView(df, parse_plan(plan)), policy)}
    DisclosureLog(policy.log_dir, site).record(method, description, payload)
    return payload


@data(1)
def describe_site(df: pd.DataFrame, plan: dict) -> dict:
    """Counts, histograms and survival counts for the whole plan (one round)."""
    return _site(df, plan, "describe_site", "Table 1/Fig. 1 counts, histograms, survival counts",
                 lambda view, pol: describe(view, pol))


@data(1)
def cox_setup(df: pd.DataFrame, plan: dict, models: dict) -> dict:
    return _site(df, plan, "cox_setup", "per Cox model: n, events, factor levels, death times",
                 lambda v, pol: {"models": {k: fcox.site_setup(v, m, pol.coarsen_days) for k, m in models.items()}})


@data(1)
def cox_moments(df: pd.DataFrame, plan: dict, models: dict) -> dict:
    return _site(df, plan, "cox_moments", "per Cox model: column sums (and absolute deviations)",
                 lambda v, pol: {"models": {k: fcox.site_moments(v, m, pol.coarsen_days) for k, m in models.items()}})


@data(1)
def cox_sums(df: pd.DataFrame, plan: dict, model: dict) -> dict:
    return _site(df, plan, "cox_sums", f"risk-set sums of {model['endpoint']} ~ {', '.join(model['covariates'])}",
                 lambda v, pol: fcox.site_sums(v, model, pol.coarsen_days))


class Rounds:
    """The transport: one vantage6 task per round; counts rounds and bytes per site."""

    def __init__(self, client, plan: dict):
        self.client, self.plan = client, plan
        self.orgs = [o["id"] for o in client.organization.list()]
        self.rounds, self.bytes, self.requests = 0, {}, {}

    def ask(self, method: str, kwargs: dict) -> list[dict]:
        task = self.client.task.create(input_={"method": method, "kwargs": {"plan": self.plan, **kwargs}},
                                       organizations=self.orgs, name=f"carpool {method}")
        results = self.client.wait_for_results(task_id=task["id"])
        self.rounds += 1
        for r in results:
            self.bytes[r["site"]] = self.bytes.get(r["site"], 0) + len(json.dumps(r).encode("utf-8"))
            self.requests[r["site"]] = self.requests.get(r["site"], 0) + 1
        return results


@algorithm_client
def central(client, plan: dict, strata: str | None = None) -> dict:
    """Run the plan over every organization of the collaboration; JSON out (see module doc)."""
    policy = policy_from_env()
    parsed = parse_plan(plan)
    rounds = Rounds(client, plan)
    payloads = rounds.ask("describe_site", {})
    fed_cox = fcox.FederatedCox(rounds.ask, strata=strata)
    if parsed.cox:
        fed_cox.prepare(cox_models(parsed))
    screen = parsed.cox.screen if parsed.cox else None
    results = pooled_results(
        parsed, payloads, policy.histogram_resolution,
        cox=lambda ep, covs, cats: fed_cox.fit(ep, covs, cats),
        screen=(lambda ep, covs, cats: fed_cox.screen(ep, covs, cats, screen.threshold)) if screen else None)
    return central_output(results, payloads, policy, rounds)


def cox_models(plan) -> list[tuple[str, list[str], dict[str, str]]]:
    """Every (endpoint, covariates, factors) the plan fits, so setup rounds are shared."""
    refs = {k: v.reference for k, v in plan.variables.items() if v.kind == "categorical"}
    out = []
    for ep in plan.cox.endpoints:
        if plan.cox.terms:
            out.append((ep, list(plan.cox.terms), {k: refs[k] for k in plan.cox.terms if k in refs}))
        for var in plan.cox.screen.candidates if plan.cox.screen else []:
            out.append((ep, [var], {var: refs[var]} if var in refs else {}))
    return out
