"""The Cox engine's pieces: aggregates add up across row sets, aliasing, separation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from golden_files import dataset

from analysis.cox import cox_ph
from analysis.cox_aggregate import combine, event_times, risk_set_sums
from analysis.cox_engine import aliased_columns, fit_cox


@pytest.fixture(scope="module")
def lung():
    d = dataset("lung2").dropna(subset=["age", "sex", "ph.karno"])
    return d.reset_index(drop=True)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_site_aggregates_combine_to_the_pooled_likelihood(lung, ties):
    """Three 'sites' evaluated at the pooled event times give the pooled loglik, gradient
    and information (the federated identity), also with strata."""
    x = lung[["age", "ph.karno"]].to_numpy(float)
    x = x - x.mean(axis=0)
    t, s, st = lung["time"].to_numpy(float), lung["status"].to_numpy(float), lung["sex"].to_numpy()
    beta = np.array([0.02, -0.01])
    pooled = combine([risk_set_sums(x, t, s, beta, st)], ties)
    times = event_times(t, s, st)
    site = np.arange(len(t)) % 3
    parts = [risk_set_sums(x[site == k], t[site == k], s[site == k], beta, st[site == k], times)
             for k in range(3)]
    split = combine(parts, ties)
    assert split[0] == pytest.approx(pooled[0], rel=1e-12)
    np.testing.assert_allclose(split[1], pooled[1], rtol=1e-10)
    np.testing.assert_allclose(split[2], pooled[2], rtol=1e-10)


def test_efron_equals_breslow_without_ties():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 2))
    t = rng.permutation(40).astype(float) + 1
    s = (rng.random(40) < 0.7).astype(float)
    a, b = fit_cox(x, t, s, ties="efron"), fit_cox(x, t, s, ties="breslow")
    np.testing.assert_allclose(a.coef, b.coef, rtol=1e-12)


def test_aliased_columns_follow_cholesky2_order():
    info = np.array([[2.0, 1.0, 3.0], [1.0, 1.0, 2.0], [3.0, 2.0, 5.0]])  # col3 = col1 + col2
    assert aliased_columns(info).tolist() == [False, False, True]
    assert aliased_columns(np.zeros((2, 2))).tolist() == [True, True]


def test_complete_separation_warns_of_an_infinite_coefficient():
    """R: coxph(Surv(t, e) ~ x) where every x = 1 dies before every x = 0 warns
    "Loglik converged before variable 1; coefficient may be infinite"."""
    df = pd.DataFrame({"t": np.arange(1, 13, dtype=float), "e": 1,
                       "x": [1] * 6 + [0] * 6})
    res = cox_ph(df, "t", "e", ["x"])
    assert any("may be infinite" in w for w in res.warnings)
    assert res.summary["coef"].iloc[0] > 10


def test_no_events_is_a_clear_error():
    df = pd.DataFrame({"t": [1.0, 2.0, 3.0], "e": [0, 0, 0], "x": [1.0, 2.0, 4.0]})
    with pytest.raises(ValueError, match="column 'e': no events"):
        cox_ph(df, "t", "e", ["x"])
