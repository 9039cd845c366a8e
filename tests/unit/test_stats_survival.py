"""Kaplan–Meier, R-style medians and reverse-KM follow-up (analysis/survival.py).

Reference values are R `survival` printouts on the lung data; lifelines'
`load_lung()` is the same data with status coded 0/1 (R: 1/2). R prints
medians as observed event times, so they are compared exactly.
"""

import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_lung

from analysis.survival import follow_up, kaplan_meier


@pytest.fixture(scope="module")
def lung():
    return load_lung()


def test_median_and_ci_by_sex_match_r(lung):
    """R: survfit(Surv(time, status) ~ sex, data = lung)

              n events median 0.95LCL 0.95UCL
        sex=1 138    112    270     212     310
        sex=2  90     53    426     348     550
    """
    s = kaplan_meier(lung, "time", "status", "sex").summary.set_index("group")
    assert s.loc["1"].tolist() == [138, 112, 270, 212, 310]
    assert s.loc["2"].tolist() == [90, 53, 426, 348, 550]


def test_overall_median_matches_r(lung):
    """R: survfit(Surv(time, status) ~ 1, data = lung)

        n events median 0.95LCL 0.95UCL
      228    165    310     285     363
    """
    s = kaplan_meier(lung, "time", "status").summary.iloc[0]
    assert s[["n", "events", "median", "lower", "upper"]].tolist() == [228, 165, 310, 285, 363]


def test_survival_at_one_year_matches_r(lung):
    """R: summary(survfit(Surv(time, status) ~ 1, data = lung), times = 365)

      time n.risk n.event survival std.err lower 95% CI upper 95% CI
       365     65     121    0.409  0.0358        0.345        0.486

    R prints three decimals, so the tolerance is half a unit of the last digit.
    """
    row = kaplan_meier(lung, "time", "status").survival_at([365]).iloc[0]
    assert row.at_risk == 65
    assert row.survival == pytest.approx(0.409, abs=5e-4)
    assert row.lower == pytest.approx(0.345, abs=5e-4)
    assert row.upper == pytest.approx(0.486, abs=5e-4)


def test_log_band_is_greenwood_on_the_log_scale(lung):
    """R conf.type = "log": S * exp(±1.96 se), se = sqrt(sum d / (n (n - d)))."""
    curve = kaplan_meier(lung, "time", "status").curves["all"]
    ev = curve.events > 0
    d, n = curve.events[ev], curve.at_risk[ev]
    se = np.sqrt(np.cumsum(d / (n * (n - d))))
    s = np.cumprod(1 - d / n)
    z = 1.959963984540054
    np.testing.assert_allclose(curve.survival[ev], s, rtol=1e-12)
    np.testing.assert_allclose(curve.lower[ev], s * np.exp(-z * se), rtol=1e-10)
    np.testing.assert_allclose(curve.upper[ev], np.minimum(s * np.exp(z * se), 1), rtol=1e-10)


def test_median_on_a_half_plateau_is_the_midpoint():
    """R: survfit(Surv(c(1, 2, 3, 4), rep(1, 4)) ~ 1) prints median 2.5 (S = 0.5 on [2, 3))."""
    df = pd.DataFrame({"t": [1, 2, 3, 4], "e": [1, 1, 1, 1]})
    assert kaplan_meier(df, "t", "e").summary["median"].iloc[0] == 2.5


def test_median_on_a_final_half_plateau_uses_the_last_time():
    """R: survfit(Surv(c(1, 2, 3, 4), c(1, 1, 0, 0)) ~ 1) prints median 3: the curve ends
    at 0.5, so the midpoint runs to the last observed time, (2 + 4) / 2."""
    df = pd.DataFrame({"t": [1, 2, 3, 4], "e": [1, 1, 0, 0]})
    assert kaplan_meier(df, "t", "e").summary["median"].iloc[0] == 3.0


def test_median_not_reached_is_nan():
    df = pd.DataFrame({"t": [1, 2, 3, 4], "e": [1, 0, 0, 0]})
    assert np.isnan(kaplan_meier(df, "t", "e").summary["median"].iloc[0])


def test_at_risk_counts_subjects_still_followed(lung):
    """n.risk at t counts subjects with time >= t (R's summary(fit, times=))."""
    km = kaplan_meier(lung, "time", "status", "sex")
    times = [0, 100, 365, 500, 1000, 2000]
    for g, curve in km.curves.items():
        t = lung.loc[lung["sex"].astype(str) == g, "time"].to_numpy()
        assert curve.at_risk_at(times).tolist() == [int((t >= x).sum()) for x in times]
    assert km.at_risk_table(times).shape == (2, 6)


def test_follow_up_is_km_with_flipped_events(lung):
    """Reverse KM: R survfit(Surv(time, 1 - status) ~ 1, data = lung)."""
    flipped = lung.assign(status=1 - lung["status"])
    expected = kaplan_meier(flipped, "time", "status").summary
    pd.testing.assert_frame_equal(follow_up(lung, "time", "status").summary, expected)


def test_missing_rows_are_counted_not_silently_dropped(lung):
    df = lung.copy()
    df.loc[:4, "time"] = np.nan
    res = kaplan_meier(df, "time", "status", "sex")
    assert res.n_excluded == 5 and res.summary["n"].sum() == 223


def _lifelines_curve(t, e):
    """lifelines' KaplanMeierFitter: the event table and estimate analysis.survival reproduces."""
    from lifelines import KaplanMeierFitter

    kmf = KaplanMeierFitter().fit(pd.Series(t), pd.Series(e))
    et = kmf.event_table
    return (et.index.to_numpy(dtype=float), et["at_risk"].to_numpy(), et["observed"].to_numpy(),
            et["censored"].to_numpy(), kmf.survival_function_.iloc[:, 0].to_numpy())


@pytest.mark.parametrize("seed", range(60))
def test_event_table_and_estimate_are_lifelines_bit_for_bit(seed):
    """The product-limit estimate is computed without lifelines, with its arithmetic: the
    same times, counts and survival to the last bit (ties, time 0, all censored, all events,
    one row, integer and fractional months)."""
    from analysis.survival import _event_table

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 120))
    t = rng.integers(0, 40, n).astype(float) if seed % 2 else np.round(rng.exponential(20, n), 2)
    p_event = [0.0, 1.0, 0.5, 0.9][seed % 4]
    e = (rng.random(n) < p_event).astype(int)
    got = _event_table(t, e)
    want = _lifelines_curve(t, e)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and np.array_equal(g, w, equal_nan=True)


def test_no_lifelines_import_for_a_curve():
    """Kaplan–Meier needs no lifelines (its import is ~0.2 s of every `carpool analyze`)."""
    import subprocess
    import sys

    code = ("import sys, pandas as pd; from analysis.survival import kaplan_meier; "
            "kaplan_meier(pd.DataFrame({'t': [1.0, 2.0, 3.0], 'e': [1, 0, 1]}), 't', 'e'); "
            "print('lifelines' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
