"""The demo report's "beyond the paper" section (issue 11): center heterogeneity for OS and
LFS (stratified Cox, forest plot with I²), CIF of relapse vs NRM with Gray's test, and
Fine–Gray, each naming its test; the paper's rows are untouched."""
from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from analysis.plan import load_plan
from analysis.runner import run_plan
from etl.analyze import analyze_frame, load_analysis_input


@pytest.fixture(scope="module")
def demo_analysis(demo):
    cfg, _ = demo
    con = duckdb.connect(str(cfg.out / "warehouse.duckdb"), read_only=True)
    try:
        df, settings = load_analysis_input(con)
    finally:
        con.close()
    results, _, report = analyze_frame(df, None, {"run_id": settings["run_id"]})
    return df, results, report


def test_beyond_rows_are_appended_and_the_papers_rows_unchanged(demo_analysis):
    df, results, _ = demo_analysis
    paper = run_plan(df, load_plan().model_copy(update={"beyond_paper": None})).table
    full = results.table
    pd.testing.assert_frame_equal(full.iloc[: len(paper)].reset_index(drop=True), paper)
    assert set(full.iloc[len(paper):]["analysis"]) == {"heterogeneity", "competing", "fine_gray"}


@pytest.mark.parametrize("endpoint", ["os", "lfs"])
def test_heterogeneity_rows_name_their_tests(demo_analysis, endpoint):
    _, results, _ = demo_analysis
    t = results.table
    h = t[(t.analysis == "heterogeneity") & (t.endpoint == endpoint)]
    assert set(h.comparison) == {"crs", "icans"}
    assert {"cox_stratified", "logrank_stratified", "cochran_q", "cox_lr_interaction",
            "meta_fixed", "meta_dl", "meta_reml", "cox_wald"} <= set(h.test)
    i2 = h[(h.statistic == "i2") & (h.test == "cochran_q")]["value"]
    assert len(i2) == 2 and ((i2 >= 0) & (i2 <= 100)).all()


def test_competing_risks_rows(demo_analysis):
    _, results, _ = demo_analysis
    t = results.table
    gray = t[(t.analysis == "competing") & (t.test == "gray") & (t.statistic == "p_value")]
    assert set(gray.comparison) == {"crs", "icans", "tox_group"}
    assert set(gray.term) == {"cause:relapse", "cause:nrm"}
    cif = t[(t.analysis == "competing") & (t.statistic == "cif")]
    assert set(cif.test) == {"aalen_johansen"} and cif["value"].between(0, 1).all()
    fg = t[(t.analysis == "fine_gray") & (t.statistic == "shr")]
    assert set(fg.comparison) == {"cause:relapse", "cause:nrm"} and set(fg.test) == {"fine_gray"}
    # relapse + NRM events are exactly the LFS events
    events = t[(t.analysis == "competing") & (t.comparison == "all") & (t.statistic == "events")]
    lfs = t[(t.analysis == "survival") & (t.comparison == "all") & (t.endpoint == "lfs")
            & (t.statistic == "events")]["value"].item()
    assert events["value"].sum() == lfs


def test_demo_report_shows_the_beyond_the_paper_sections(demo_analysis):
    _, _, report = demo_analysis
    html = report.html
    assert "Beyond the paper: center heterogeneity and competing risks" in html
    for title in ("Overall survival: CRS", "Leukemia-free survival (CR patients): ICANS"):
        assert title in html
    for text in ("Cox stratified by center, Wald test", "log-rank test stratified by center",
                 "Cochran&#39;s Q test", "I² =", "likelihood-ratio test of center × exposure",
                 "Gray&#39;s test", "Fine–Gray model, Wald test", "Non-relapse mortality",
                 "DerSimonian–Laird"):
        assert text in html, text
    names = {f.name for f in report.figures}
    assert {"forest_os_crs", "forest_lfs_icans", "cif_lfs_all", "cif_lfs_tox_group"} <= names
    for name in ("forest_os_crs", "cif_lfs_crs"):
        fig = next(f for f in report.figures if f.name == name)
        assert fig.png[:8] == b"\x89PNG\r\n\x1a\n" and fig.svg.lstrip().startswith(b"<?xml")
