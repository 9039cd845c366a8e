"""Federated Cox vs the centralized engine: Breslow ties and Cox stratified by center.

Four simulated sites with heavily tied integer times, a continuous, a binary and a
3-level factor covariate, and a different baseline hazard per site. The federated fit
(`federated.cox.FederatedCox`, rounds of per-site sums through JSON) must equal
`analysis.cox.cox_ph` on the pooled rows to <= 1e-8: coefficients, se, p, the global
Wald, LR and score tests, the log-likelihoods and the factor's Wald and LR tests.
"""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from analysis.cox import cox_ph
from federated import cox as fcox

SITES = ["s1", "s2", "s3", "s4"]
COVS = ["x", "b", "g"]
CATS = {"g": "a"}


def pooled_rows(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for k, site in enumerate(SITES):
        n = 60 + 15 * k
        x = rng.normal(size=n)
        b = rng.integers(0, 2, size=n).astype(float)
        g = rng.choice(["a", "b", "c"], size=n)
        lp = 0.5 * x - 0.7 * b + np.where(g == "b", 0.4, np.where(g == "c", -0.3, 0.0))
        t = rng.exponential(10 / ((1 + k) * np.exp(lp)))
        parts.append(pd.DataFrame({"site_id": site, "t": np.ceil(t).clip(1, 25),  # many ties
                                   "e": (rng.random(n) < 0.75).astype(int), "x": x, "b": b, "g": g}))
    return pd.concat(parts, ignore_index=True)


class View:
    """The slice of `federated.partials.SiteView` that the Cox partials use."""

    def __init__(self, df: pd.DataFrame):
        self.df = df.reset_index(drop=True)
        spec = SimpleNamespace(population="all", duration="t", event="e")
        self.plan = SimpleNamespace(survival=SimpleNamespace(endpoints={"os": spec}))

    def frame(self, pop, names, **endpoint):
        return pd.concat([self.df[names]] + [self.df[c].rename(a) for a, c in endpoint.items()], axis=1)


def rounds(views: list[View]):
    """`ask` without a transport: every site answers; requests and replies go through JSON."""
    count = [0]

    def ask(method: str, kwargs: dict) -> list[dict]:
        kwargs = json.loads(json.dumps(kwargs))
        count[0] += 1
        out = []
        for v in views:
            if method == "cox_sums":
                out.append(fcox.site_sums(v, kwargs["model"], None))
            else:
                fn = {"cox_setup": fcox.site_setup, "cox_moments": fcox.site_moments}[method]
                out.append({"models": {k: fn(v, m, None) for k, m in kwargs["models"].items()}})
        return json.loads(json.dumps(out))
    return ask, count


def close(a, b, tol=1e-8):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.all(np.abs(a - b) <= tol * np.maximum(1.0, np.abs(b)))


@pytest.mark.parametrize(("ties", "strata"), [("breslow", None), ("breslow", "site"), ("efron", "site")])
def test_federated_cox_equals_centralized(ties, strata):
    df = pooled_rows()
    ask, count = rounds([View(df[df["site_id"] == s]) for s in SITES])
    fed = fcox.FederatedCox(ask, ties=ties, strata=strata).fit("os", COVS, CATS)
    ref = cox_ph(df, "t", "e", COVS, CATS, ties=ties, strata="site_id" if strata else None)
    assert count[0] > 4  # setup, 2 moments, then one round per Newton evaluation
    assert fed.ties == ties and fed.n == ref.n and fed.events == ref.events
    assert list(fed.summary["term"]) == list(ref.summary["term"])
    for col in ("coef", "se", "z", "p_value", "hr_lower", "hr_upper"):
        assert close(fed.summary[col], ref.summary[col]), col
    for stat in ("log_likelihood", "log_likelihood_null", "lr_chi2", "lr_p", "wald_chi2", "wald_p",
                 "score_chi2", "score_p"):
        assert close(getattr(fed, stat), getattr(ref, stat)), stat
    assert fed.lr_dof == ref.lr_dof
    for col in ("wald_chi2", "wald_p", "lr_chi2", "lr_p"):
        assert close(fed.factors[col], ref.factors[col]), col


def test_ties_and_strata_change_the_fit():
    """The comparisons above can fail: Breslow, Efron and stratified fits differ on these data."""
    df = pooled_rows()
    efron = cox_ph(df, "t", "e", COVS, CATS)
    breslow = cox_ph(df, "t", "e", COVS, CATS, ties="breslow")
    strat = cox_ph(df, "t", "e", COVS, CATS, ties="breslow", strata="site_id")
    assert not close(efron.summary["coef"], breslow.summary["coef"], 1e-4)
    assert not close(breslow.summary["coef"], strat.summary["coef"], 1e-4)
