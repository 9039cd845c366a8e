"""Dataset-level checks (warehouse.quality): row counts against the previous refresh,
completeness per column, per-site rates against the pooled rate; thresholds from the catalog."""
import math

import duckdb
import pytest

from schemas.catalog import catalog
from warehouse import quality


def _by(rows, **kw):
    return [r for r in rows if all(r[k] == v for k, v in kw.items())]


def test_an_export_that_shrank_by_more_than_the_catalog_threshold_fails():
    pct = catalog()["ROW_COUNT_DROP"].threshold_pct
    assert pct == 10
    rows = quality.row_count_checks("s1", {"lab": 85, "patient": 95, "toxicity": 7}, {"lab": 100, "patient": 100})
    lab, patient, tox = (_by(rows, table_name=t)[0] for t in ("lab", "patient", "toxicity"))
    assert not lab["passed"] and lab["num_violated_rows"] == 15 and lab["lower"] == pytest.approx(90)
    assert "85 mapped rows against 100" in lab["message"] and "-15%" in lab["message"]
    assert patient["passed"] and patient["message"] == ""
    assert tox["passed"] and tox["lower"] is None  # no previous refresh: reported only


def test_completeness_default_holds_required_columns_and_named_rows_override_it():
    rows = quality.completeness_checks(
        "s1", {"patient": 100, "outcome": 100},
        {"patient": {"site_id": 100, "sex": 90, "ecog": 85, "age_years": 96},
         "outcome": {"death_date": 10, "last_contact_date": 100}})
    sex, ecog, age = (_by(rows, column_name=c)[0] for c in ("sex", "ecog", "age_years"))
    assert not sex["passed"] and sex["check_id"] == "COMPLETENESS" and sex["num_violated_rows"] == 10
    assert sex["lower"] == pytest.approx(1 - catalog()["COMPLETENESS"].threshold_pct / 100)
    assert age["passed"]
    assert ecog["check_id"] == "COMPLETENESS_ECOG" and ecog["passed"]   # 15% missing, allowed 20%
    death = _by(rows, column_name="death_date")[0]
    assert death["passed"] and death["threshold"] is None and death["value"] == pytest.approx(0.1)
    assert not _by(rows, column_name="site_id")


def test_funnel_limits_are_the_wilson_interval_inverted():
    """p0 inside the site's Wilson score interval  <=>  the site's rate inside p0 +- z*sqrt(p0(1-p0)/n)."""
    z = 2.5758293035489004  # qnorm(0.995)
    lo, hi = quality.funnel_limits(0.5, 25, 99)
    assert (lo, hi) == (pytest.approx(0.5 - z * 0.1), pytest.approx(0.5 + z * 0.1))
    for n in (10, 23, 40):
        for k in range(n + 1):
            p, p0 = k / n, 0.62
            centre = (p + z * z / (2 * n)) / (1 + z * z / n)
            half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
            in_wilson = centre - half <= p0 <= centre + half
            lo, hi = quality.funnel_limits(p0, n, 99)
            assert in_wilson == (lo <= p <= hi), (n, k)


def test_a_site_whose_rate_is_far_from_the_pooled_rate_is_flagged():
    con = duckdb.connect()
    rows = [("a", i < 20, i < 15, i < 12) for i in range(40)] + [("b", i < 19, i < 14, i < 11) for i in range(40)]
    rows += [("c", i < 3, i < 14, i < 11) for i in range(40)]   # CRS at c: 3 of 40
    con.execute("CREATE TABLE analysis_patient (site_id VARCHAR, crs_any BOOLEAN, icans_any BOOLEAN, cr_d30 BOOLEAN)")
    con.executemany("INSERT INTO analysis_patient VALUES (?, ?, ?, ?)", rows)
    out = quality.rate_checks(con)
    crs = {r["site_id"]: r for r in out if r["check_id"] == "SITE_RATE_CRS"}
    assert not crs["c"]["passed"] and crs["a"]["passed"] and crs["b"]["passed"]
    assert crs["c"]["value"] == pytest.approx(3 / 40) and crs["c"]["num_denominator_rows"] == 40
    assert "pooled 0.350" in crs["c"]["message"]
    assert all(r["passed"] for r in out if r["check_id"] != "SITE_RATE_CRS")


def test_summary_counts_checks_passed_failed_with_the_catalog_threshold():
    rows = quality.row_count_checks("s1", {"lab": 50, "patient": 100}, {"lab": 100, "patient": 100})
    s = quality.summary(quality.frame(rows)).iloc[0]
    assert (s.check_id, s.checks, s.passed, s.failed) == ("ROW_COUNT_DROP", 2, 1, 1)
    assert "10%" in s.threshold


def test_every_quality_check_column_is_described():
    assert all(d.strip() for _, _, d in quality.COLUMNS)
    assert [c for c, _, _ in quality.COLUMNS][:1] == ["check_id"]
