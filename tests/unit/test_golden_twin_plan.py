"""Every survival, follow-up and Cox number the study plan produces on the twin equals R's.

The plan runs on tests/golden/twin_analysis.csv (the demo's `analysis_patient`
columns; tests/functional/test_golden_twin.py checks the demo still yields it)
and each row of the results table with analysis survival / followup / cox is
compared, at 1e-8 relative (cox.zph p-values: 1e-6), with the R value for the same rows in
tests/golden/{km,logrank,cox}.csv (R calls in their headers). No such row may
go unchecked.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from golden_files import read, read_twin, rel_close
from scipy.stats import chi2, norm

from analysis.plan import load_plan
from analysis.runner import run_plan

REL = 1e-8
Z = norm.ppf(0.975)


@pytest.fixture(scope="module")
def table():
    return run_plan(read_twin(), load_plan()).table


@pytest.fixture(scope="module")
def plan():
    return load_plan()


def _r_value(row, plan, km, lr, cox, factor_df, zph) -> float:
    ep = row.endpoint
    if row.analysis == "followup":
        k = km[(f"twin_{ep}_all_followup", "all")]
        return k[{"n": "records", "median": "median", "lower": "0.95LCL",
                  "upper": "0.95UCL"}[row.statistic]]
    if row.analysis == "survival":
        if row.comparison == "all":
            spec, group = f"twin_{ep}_all", "all"
        else:
            var = plan.variables[row.comparison]
            spec = f"twin_{ep}_{var.column}"
            if row.term == "":
                return lr[spec]
            group = row.term.removeprefix("level:")
            if var.kind == "binary":
                group = {"yes": "1", "no": "0"}[group]
        return km[(spec, group)][{"n": "records", "events": "events", "median": "median",
                                  "lower": "0.95LCL", "upper": "0.95UCL"}[row.statistic]]
    # cox: the multivariable model (comparison all) or one screen model per candidate
    if row.comparison == "all":
        model = f"twin_{ep}"
    else:
        cand = row.term.split(":")[0]
        model = f"twin_{ep}_screen_{plan.variables[cand].column or cand}"
    c = cox[model]
    if row.statistic in ("n", "events", "concordance"):
        return c[("", row.statistic)]
    if row.statistic == "ph_p_value":
        return zph[(model, row.term or "GLOBAL")]
    if (row.term, "factor_wald") in c:
        stat = c[(row.term, "factor_wald" if row.test == "cox_wald" else "factor_lr")]
        return chi2.sf(stat, factor_df[(model, row.term)])
    var = row.term.split(":")[0]
    term = row.term.replace(var, plan.variables[var].column or var, 1)
    coef, se = c[(term, "coef")], c[(term, "se")]
    return {"hr": np.exp(coef), "hr_lower": np.exp(coef - Z * se),
            "hr_upper": np.exp(coef + Z * se), "p_value": c[(term, "p_value")]}[row.statistic]


def test_twin_survival_and_cox_rows_equal_r(table, plan):
    km_rows = read("km.csv")
    km = {k: dict(zip(g.quantity, g.value, strict=True))
          for k, g in km_rows.groupby(["spec", "group"])}
    lr_rows = read("logrank.csv")
    lr = dict(zip(lr_rows[lr_rows.quantity == "p_value"].spec,
                  lr_rows[lr_rows.quantity == "p_value"].value, strict=True))
    cox_rows = read("cox.csv").fillna({"term": ""})
    cox = {m: {(t, q): v for t, q, v in zip(g.term, g.quantity, g.value, strict=True)}
           for m, g in cox_rows.groupby("model")}
    factor_df = {(m, t.split(":")[0]): n for (m, t), n in
                 cox_rows[cox_rows.term.str.contains(":") & (cox_rows.quantity == "coef")]
                 .groupby(["model", cox_rows.term.str.split(":").str[0]]).size().items()}
    zph_rows = read("cox_zph.csv")
    zph = dict(zip(zip(zph_rows.model, zph_rows.term, strict=True), zph_rows.p, strict=True))
    rows = table[table.analysis.isin(["survival", "followup", "cox"])]
    assert len(rows) > 300
    bad = []
    for row in rows.itertuples():
        want = _r_value(row, plan, km, lr, cox, factor_df, zph)
        if row.test == "cox_zph" and rel_close(row.value, want, 1e-6):
            continue  # cox.zph: the tolerance
        if not rel_close(row.value, want, REL):
            bad.append(f"{row.analysis} {row.comparison} {row.endpoint} {row.term} "
                       f"{row.statistic} ({row.test}): carpool {row.value!r}, R {want!r}")
    assert not bad, f"{len(bad)} of {len(rows)} rows differ from R:\n" + "\n".join(bad[:30])


def test_twin_frame_reads_back_booleans():
    df = read_twin()
    assert df["os_event"].map(type).eq(bool).all()
    assert set(df["tox_group"]) == {"none", "grade3plus", "other"}
    assert isinstance(pd.Series(df["age_years"]).iloc[0], (int, np.integer))
