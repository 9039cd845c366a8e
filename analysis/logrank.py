"""Log-rank test for two or more groups, as R `survdiff(Surv(time, status) ~ group)`.

lifelines' `multivariate_logrank_test` computes the k-group statistic from the
full (k-1)-dimensional observed-minus-expected vector and its covariance, which
is what `survdiff` prints ("Chisq= ... on k-1 degrees of freedom"). For two groups
it equals `logrank_test`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from lifelines.statistics import multivariate_logrank_test

from analysis.survival import level_name


@dataclass(frozen=True, eq=False)
class LogRankResult:
    """Chi-square, degrees of freedom and p; `summary` has n and events per group."""

    statistic: float
    dof: int
    p_value: float
    n: int
    n_excluded: int
    summary: pd.DataFrame
    test: str = "logrank"


def logrank(df: pd.DataFrame, duration: str, event: str, group: str) -> LogRankResult:
    """Log-rank test of `duration`/`event` across the levels of `group`.

    Rows missing any of the three columns are excluded and counted. With fewer
    than two observed groups the test is undefined and p is NaN.
    """
    data = df.dropna(subset=[duration, event, group])
    events = data[event].astype(int)
    labels = data[group].map(level_name)
    summary = (pd.DataFrame({"group": labels, "event": events})
               .groupby("group", sort=True)["event"].agg(n="size", events="sum").reset_index())
    if labels.nunique() < 2:
        return LogRankResult(float("nan"), 0, float("nan"), len(data),
                             len(df) - len(data), summary)
    res = multivariate_logrank_test(data[duration].astype(float), labels, events)
    return LogRankResult(
        statistic=float(res.test_statistic), dof=int(res.degrees_of_freedom),
        p_value=float(res.p_value), n=len(data), n_excluded=len(df) - len(data),
        summary=summary)
