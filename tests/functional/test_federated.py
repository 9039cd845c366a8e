"""Federated mode: the demo plan over the 4 demo centers as 4 vantage6 mock nodes.

Compared with the centralized run of the same plan on the pooled warehouse: counts, KM,
log-rank and reverse KM to <= 1e-10 relative (and identical to statistics.csv's printed
10 digits), Cox to <= 1e-8; approximate rows are labelled; disclosure logs hold no study id,
no date and no patient row; a small site refuses.
"""
from __future__ import annotations

import json
import re

import duckdb
import numpy as np
import pandas as pd
import pytest

from analysis.plan import load_plan
from analysis.runner import run_plan
from etl.analyze import load_analysis_input
from federated.central import APPROXIMATE
from federated.disclosure import DisclosureConfig, SiteRefused
from federated.run import run_federated
from federated.site_data import site_frame

KEY = ["analysis", "comparison", "endpoint", "term", "statistic"]
SITES = ["center_a", "center_b", "center_c", "center_d"]
#: Cox model checks the federated run does not compute: the concordance compares pairs of
#: patients across sites; cox.zph (issue 11) is not wired into federated mode yet (its score
#: test is a function of the per-time sums at the final beta, so it could be).
NOT_FEDERATED = {"concordance", "ph_p_value"}


@pytest.fixture(scope="module")
def federated(demo, tmp_path_factory):
    cfg, _ = demo
    con = duckdb.connect(str(cfg.out / "warehouse.duckdb"), read_only=True)
    pooled, _ = load_analysis_input(con)
    ids = set(con.execute("SELECT study_id FROM patient").fetchdf()["study_id"])
    con.close()
    frames = {s: site_frame(cfg.out / "parquet", s, str(cfg.cutoff_date)) for s in SITES}
    work = tmp_path_factory.mktemp("fed")
    out = run_federated(frames, None, DisclosureConfig(min_cell=1, log_dir=work / "logs"), work)
    # federated mode runs the paper's analyses; the plan's beyond_paper section (center
    # heterogeneity, competing risks) is centralized only, so it is not compared here
    central = run_plan(pooled, load_plan().model_copy(update={"beyond_paper": None})).table
    central = central[~central["statistic"].isin(NOT_FEDERATED)]
    return out, central, pooled, work, ids


def _joined(out, central):
    fed = pd.DataFrame(out["table"])
    fed["base_test"] = fed["test"].str.split(";").str[0]
    return central.merge(fed, left_on=KEY + ["test"], right_on=KEY + ["base_test"], how="left",
                         suffixes=("_c", "_f"))


def test_not_federated_statistics_are_not_reported_as_numbers(federated):
    out, *_ = federated
    fed = pd.DataFrame(out["table"])
    assert fed.loc[fed["statistic"].isin(NOT_FEDERATED), "value"].isna().all()


def test_site_frames_are_the_pooled_rows(federated):
    _, _, pooled, *_ = federated
    assert sorted(pooled["site_id"].unique()) == SITES


def test_every_centralized_row_has_a_federated_twin(federated):
    out, central, *_ = federated
    m = _joined(out, central)
    assert m["value_f"].notna().sum() + (m["value_c"].isna() & m["value_f"].isna()).sum() == len(central)


def test_exact_rows_match_centralized(federated):
    out, central, *_ = federated
    m = _joined(out, central)
    approx = m["test_f"].str.contains("approximate", regex=False)
    both_nan = m["value_c"].isna() & m["value_f"].isna()
    rel = ((m["value_f"] - m["value_c"]).abs() / np.maximum(1.0, m["value_c"].abs())).where(~both_nan, 0.0)
    cox = m["analysis"] == "cox"
    assert rel[~approx & ~cox].max() <= 1e-10, m.loc[rel[~approx & ~cox].idxmax(), KEY]
    assert rel[cox].max() <= 1e-8, m.loc[rel[cox].idxmax(), KEY]
    assert (~approx & ~cox).sum() > 500 and cox.sum() > 100


def test_printed_statistics_are_identical(federated):
    """statistics.csv prints 10 significant digits; the federated run prints the same ones."""
    out, central, *_ = federated
    m = _joined(out, central)
    exact = ~m["test_f"].str.contains("approximate", regex=False) & (m["analysis"] != "cox")
    fmt = lambda v: "" if pd.isna(v) else f"{v:.10g}"  # noqa: E731
    assert (m.loc[exact, "value_c"].map(fmt) == m.loc[exact, "value_f"].map(fmt)).all()


def test_approximate_rows_are_labelled_and_bounded(federated):
    out, central, *_ = federated
    m = _joined(out, central)
    approx = m[m["test_f"].str.contains(APPROXIMATE, regex=False)]
    assert set(approx["statistic"]) == {"median", "lower", "upper", "p_value"}
    assert set(approx["analysis"]) == {"table1", "kinetics"}
    fed = pd.DataFrame(out["table"])
    bounds = fed[fed["statistic"] == "median_max_error"].set_index(["analysis", "comparison", "endpoint", "term"])
    med = approx[approx["statistic"] == "median"].set_index(["analysis", "comparison", "endpoint", "term"])
    err = (med["value_f"] - med["value_c"]).abs()
    assert (err <= bounds.loc[med.index, "value"] * (1 + 1e-12)).all()


def test_rounds_and_bytes_per_site_are_recorded(federated):
    out, *_ = federated
    fed = out["federation"]
    assert fed["rounds"] > 3 and sorted(fed["sites"]) == SITES
    assert all(v["bytes"] > 0 and v["requests"] == fed["rounds"] for v in fed["sites"].values())


def test_disclosure_logs_hold_no_patient_row_id_or_date(federated):
    out, _, pooled, work, ids = federated
    assert ids
    date = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}")
    for site in SITES:
        text = (work / "logs" / f"{site}.jsonl").read_text()
        lines = [json.loads(x) for x in text.splitlines()]
        assert len(lines) == out["federation"]["rounds"]
        assert not any(i in text for i in ids)
        assert not date.search(text)
        for col in ("study_id", "local_id", "birth", "infusion_date", "source_row"):
            assert col not in text
        # counts only: no section lists patient records (a dict per patient)
        first = lines[0]["payload"]
        assert set(first) == {"site", "populations", "crosstabs", "histograms", "survival"}


def test_a_small_site_refuses_with_a_clear_message(federated, tmp_path):
    _, _, pooled, *_ = federated
    frames = {"center_d": pooled[pooled["site_id"] == "center_d"], "center_a": pooled[pooled["site_id"] == "center_a"]}
    with pytest.raises(SiteRefused, match=r"site center_d refuses: it holds 14 patients, fewer than the "
                                          r"minimum of 20 \(federated.min_rows in carpool.yml\)"):
        run_federated(frames, None, DisclosureConfig(min_rows=20), tmp_path)


def test_min_cell_suppresses_released_small_counts(federated, tmp_path):
    _, _, pooled, *_ = federated
    frames = {s: pooled[pooled["site_id"] == s] for s in SITES}
    out = run_federated(frames, None, DisclosureConfig(min_cell=5), tmp_path)
    t = pd.DataFrame(out["table"])
    small = t["statistic"].isin(["n", "count", "events"]) & t["value"].between(1, 4)
    assert not small.any()
    assert t["suppressed"].any() and t.loc[t["suppressed"], "value"].isna().all()
