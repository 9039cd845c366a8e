"""Bad survival input gets a clear error naming the column (or R's NA), never a wrong number."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from golden_files import dataset

from analysis.cox import cox_ph
from analysis.logrank import logrank
from analysis.survinput import SurvivalInputError
from analysis.survival import follow_up, kaplan_meier


@pytest.fixture(scope="module")
def lung_r_coding():
    """survival::lung as R ships it: status 1 = censored, 2 = dead."""
    d = dataset("lung2").copy()
    d["status"] = d["status"] + 1
    return d


def test_status_coded_1_2_is_refused_with_a_hint(lung_r_coding):
    """Regression: 1/2 status was read as 'every row an event' (events 250/143)."""
    for call in (lambda: kaplan_meier(lung_r_coding, "time", "status", "sex"),
                 lambda: logrank(lung_r_coding, "time", "status", "sex"),
                 lambda: cox_ph(lung_r_coding, "time", "status", ["age"]),
                 lambda: follow_up(lung_r_coding, "time", "status")):
        with pytest.raises(SurvivalInputError, match=r"column 'status'.*0/1 or boolean.*"
                                                     r"status_coding=\(1, 2\)"):
            call()


def test_status_coding_names_r_coding(lung_r_coding):
    """With status_coding=(1, 2) the results equal those on the 0/1 data."""
    lung01 = dataset("lung2")
    km = kaplan_meier(lung_r_coding, "time", "status", "sex", status_coding=(1, 2))
    assert km.summary["events"].tolist() == [112, 53]
    a = logrank(lung_r_coding, "time", "status", "sex", status_coding=(1, 2))
    assert a.statistic == logrank(lung01, "time", "status", "sex").statistic
    c = cox_ph(lung_r_coding, "time", "status", ["age", "sex"], status_coding=(1, 2))
    assert c.events == 165
    assert c.summary["coef"].tolist() == cox_ph(lung01, "time", "status",
                                                ["age", "sex"]).summary["coef"].tolist()
    with pytest.raises(SurvivalInputError, match=r"status_coding \(1, 2\) given but found value\(s\) 0"):
        kaplan_meier(lung01, "time", "status", status_coding=(1, 2))


def test_status_text_is_refused():
    df = pd.DataFrame({"t": [1.0, 2.0], "dead": ["yes", "no"]})
    with pytest.raises(SurvivalInputError, match=r"column 'dead': status must be 0/1 or boolean, "
                                                 r"found value\(s\) 'yes', 'no'"):
        kaplan_meier(df, "t", "dead")


def test_booleans_are_accepted():
    df = pd.DataFrame({"t": [1.0, 2.0, 3.0], "dead": [True, False, True]})
    assert kaplan_meier(df, "t", "dead").summary["events"].iloc[0] == 2


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"t": [], "e": [], "g": []}),
    pd.DataFrame({"t": [np.nan, 2.0], "e": [1, np.nan], "g": ["a", "b"]})])
def test_empty_input_is_a_clear_error(frame):
    """Regression: an empty frame raised ZeroDivisionError from inside lifelines."""
    for call in (lambda: kaplan_meier(frame, "t", "e"), lambda: logrank(frame, "t", "e", "g"),
                 lambda: cox_ph(frame, "t", "e", ["g"]), lambda: follow_up(frame, "t", "e")):
        with pytest.raises(SurvivalInputError, match=r"no rows to analyse .* columns \['t', 'e'"):
            call()


def test_missing_column_is_named():
    with pytest.raises(SurvivalInputError, match=r"column\(s\) \['os_event'\] not in the data"):
        kaplan_meier(pd.DataFrame({"t": [1.0]}), "t", "os_event")


def test_non_numeric_time_is_named():
    df = pd.DataFrame({"t": ["3 months", "4"], "e": [1, 0]})
    with pytest.raises(SurvivalInputError, match=r"column 't': times must be finite numbers, "
                                                 r"found '3 months'"):
        kaplan_meier(df, "t", "e")


def test_all_censored_logrank_is_na_like_r():
    """R: survdiff(Surv(t, e) ~ g) with no events gives chisq 0 on -1 df, p = NA.
    Regression: the log-rank returned p = 1."""
    df = pd.DataFrame({"t": [1.0, 2.0, 3.0, 4.0], "e": 0, "g": ["a", "b", "a", "b"]})
    res = logrank(df, "t", "e", "g")
    assert np.isnan(res.p_value) and np.isnan(res.statistic) and res.dof == 0
    assert "no events" in res.note
    assert res.summary["expected"].tolist() == [0.0, 0.0]


def test_constant_covariate_is_na_like_r():
    """Regression: a constant covariate gave 'delta contains nan'; R reports NA
    (coef(coxph(Surv(time, status) ~ age + one + sex, lung2))['one'] is NA, the golden
    test checks the other terms against R)."""
    d = dataset("lung2").assign(one=1.0)
    res = cox_ph(d, "time", "status", ["age", "one", "sex"])
    s = res.summary.set_index("term")
    assert res.aliased == ("one",) and np.isnan(s.loc["one", "coef"]) and res.lr_dof == 2
    assert np.isfinite(s.loc[["age", "sex"], "coef"]).all()


def test_plan_records_unusable_survival_input_and_reports_it():
    """A status column coded 1/2 in the data: the plan's survival analyses are listed as
    not computed (with the column named) in the results and the report, not run wrongly."""
    from golden_files import read_twin

    from analysis.plan import load_plan
    from analysis.report import render_report
    from analysis.runner import run_plan

    df = read_twin()
    df["lfs_event"] = df["lfs_event"].map(lambda v: v if pd.isna(v) else int(v) + 1)
    res = run_plan(df, load_plan())
    assert "column 'lfs_event': status must be 0/1" in res.errors[("survival", "all", "lfs")]
    assert not ((res.table.endpoint == "lfs") & (res.table.analysis == "survival")).any()
    assert ("survival", "all", "os") not in res.errors
    html = render_report(res, df).html
    assert "Not computed" in html and "status must be 0/1" in html
