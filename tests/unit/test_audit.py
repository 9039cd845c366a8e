"""The paper-consistency audit: published numbers, rules that find contradictions, and the
published-vs-recomputed table.

The rules must *find* the paper's contradictions from its own numbers; each test below
names the rule that finds it, and fails if that rule is removed from `RULES`.
"""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from patient_frames import make_patients as _shared_patients

from analysis import audit as A
from analysis.plan import load_plan
from analysis.runner import COLUMNS, run_plan


def make_patients(seed: int = 11, n: int = 93):
    return _shared_patients(seed, n)


@pytest.fixture(scope="module")
def paper() -> A.AuditResult:
    return A.audit(A.load_published())


@pytest.fixture(scope="module")
def synthetic_results():
    return run_plan(make_patients(), load_plan())


def _found(result: A.AuditResult, rule: str, **where) -> pd.DataFrame:
    c = result.contradictions
    c = c[c["rule"] == rule]
    for k, v in where.items():
        c = c[c[k] == v]
    return c


# ------------------------------------------------------------------ the published data
def test_published_csv_is_data_not_verdicts():
    pub = A.load_published()
    assert {"source", "analysis", "comparison", "endpoint", "statistic", "value", "printed",
            "text", "ocr_text"} <= set(pub.columns)
    assert not pub.apply(lambda r: r.astype(str).str.contains("contradict").any(), axis=1).any()
    t1 = pub[pub["source"] == "table1"]
    assert len(t1[t1["statistic"] == "p_value"]) == 36  # 12 characteristics x 3 splits
    assert set(pub["source"]) == {"text", "table1", "fig1", "survival", "fig4", "table2"}


def test_ocr_reading_and_interpretation_are_both_recorded():
    pub = A.load_published()
    row = pub[(pub["endpoint"] == "prior_lines") & (pub["comparison"] == "crs")
              & (pub["group"] == "yes") & (pub["statistic"] == "median")].iloc[0]
    assert row["value"] == 3.5 and row["ocr_text"] == "35 (1-13)"


# ------------------------------------------------------------------ rules on the paper
def test_icans_percentage_is_really_17_2(paper):
    hit = _found(paper, "percent_vs_count", endpoint="icans_any")
    assert len(hit) == 1
    assert "16 of 93 patients is 17.2%, not 5.3%" in hit["message"].iloc[0]


def test_severe_icans_percentage_is_really_8_6(paper):
    hit = _found(paper, "percent_vs_count", endpoint="icans_severe")
    assert "8 of 93 patients is 8.6%, not 2.65%" in hit["message"].iloc[0]


def test_concurrent_gender_p_cannot_come_from_its_crosstab(paper):
    hit = _found(paper, "p_vs_crosstab", comparison="concurrent", endpoint="sex")
    assert len(hit) == 1
    msg = hit["message"].iloc[0]
    assert "8/7 (yes) vs 39/39 (no)" in msg and "Pearson chi-square p = 0.813" in msg
    assert "ICANS column's cross-tab (8/8 (yes) vs 39/38 (no))" in msg


def test_percent_rule_is_what_finds_it(paper):
    """Without the rule the finding disappears: nothing is listed by hand."""
    pub = A.load_published()
    rules = [r for r in A.RULES if r is not A.rule_percent_vs_count]
    res = A.audit(pub, rules=rules)
    assert _found(res, "percent_vs_count").empty
    assert not res.contradictions["message"].str.contains("17.2%").any()


def test_crosstab_rule_is_what_finds_it():
    rules = [r for r in A.RULES if r is not A.rule_p_vs_crosstab]
    res = A.audit(A.load_published(), rules=rules)
    assert not res.contradictions["message"].str.contains("0.962").any()


def test_crosstab_rule_accepts_the_p_values_that_do_fit(paper):
    f = paper.findings
    ok = f[(f["rule"] == "p_vs_crosstab") & (f["status"] == "consistent")]
    # e.g. sex by CRS 0.164 and Ph by CRS 0.246 are Pearson chi-square without correction
    assert {("crs", "sex"), ("crs", "ph"), ("icans", "sex")} <= set(
        zip(ok["comparison"], ok["endpoint"], strict=True))


@pytest.mark.parametrize(("rule", "endpoint", "needle"), [
    ("partition_range", "age", "22–70"),
    ("eligibility", "age", "less than 70 years of age"),
    ("subset_range", "prior_lines", "minimum 0 is below"),
    ("overall_median", "il6_peak", "no value lies in all"),
    ("one_less_median", "il6_peak", "printed 5,000"),
    ("significance_claim", "prior_lines", "0.019"),
    ("refractory_relapses", "n_relapses", "primary-refractory"),
])
def test_other_contradictions_are_found(paper, rule, endpoint, needle):
    hit = _found(paper, rule, endpoint=endpoint)
    assert hit["message"].str.contains(needle, regex=False).any(), hit["message"].tolist()


def test_group_sizes_of_the_paper_add_up(paper):
    """The concurrent columns are 15 + 78 = 93: consistent, not a contradiction."""
    f = paper.findings
    g = f[(f["rule"] == "group_sizes") & (f["comparison"] == "concurrent")]
    assert g["status"].tolist() == ["consistent"]
    assert "15 (yes) + 78 (no) = 93" in g["message"].iloc[0]


def test_truncated_percentages_are_within_tolerance(paper):
    f = paper.findings
    tol = f[(f["rule"] == "percent_vs_count") & (f["status"] == "within tolerance")]
    assert tol["message"].str.contains("45/93").any()


def test_table2_is_internally_consistent(paper):
    f = paper.findings
    cox = f[f["rule"] == "cox_ci"]
    assert len(cox) == 14 and set(cox["status"]) == {"consistent"}


# ------------------------------------------------------------------ a self-consistent table
def _published_like(results) -> pd.DataFrame:
    """The synthetic results printed as the paper prints: a table with no contradictions."""
    t = A.published_keys(results.table)
    rows = []

    def add(r, printed, relation="=", n="", den=""):
        rows.append({**{k: r[k] for k in A.KEYS}, "source": "table1" if r["analysis"] ==
                     "table1" else "text", "relation": relation, "printed": printed,
                     "value": float(printed), "n": n, "denominator": den, "text": "",
                     "ocr_text": "", "note": ""})

    t1 = t[t["analysis"] == "table1"]
    sizes = {(r["comparison"], r["group"]): r["value"] for _, r in t1[
        (t1["statistic"] == "n") & (t1["endpoint"] == "")].iterrows()}
    for _, r in t.iterrows():
        if r["analysis"] == "table1" and r["statistic"] in ("median", "min", "max", "n"):
            add(r, f"{r['value']:.6g}")
        elif r["analysis"] == "table1" and r["statistic"] == "percent":
            cnt = t1[(t1["comparison"] == r["comparison"]) & (t1["endpoint"] == r["endpoint"])
                     & (t1["group"] == r["group"]) & (t1["level"] == r["level"])
                     & (t1["statistic"] == "count")]["value"].iloc[0]
            add(r, f"{r['value']:.2f}", n=cnt, den=sizes[(r["comparison"], r["group"])])
        elif r["statistic"] == "p_value" and r["analysis"] in ("table1", "cox"):
            p = r["value"]
            add(r, "0.001" if p < 0.001 else f"{p:.3f}", "<" if p < 0.001 else "=")
        elif r["analysis"] == "cox" and r["statistic"] in ("hr", "hr_lower", "hr_upper"):
            add(r, f"{r['value']:.3f}")
        elif r["analysis"] == "cohort" and r["statistic"] == "percent":
            total = t[(t["analysis"] == "cohort") & (t["statistic"] == "n")]["value"].iloc[0]
            add(r, f"{r['value']:.1f}", n=round(r["value"] * total / 100), den=total)
        elif r["analysis"] == "cohort":
            add(r, f"{r['value']:g}")
        elif r["statistic"] == "significance_claim":
            add(r, f"{r['value']:g}")
    pub = pd.DataFrame(rows)
    for col in ("n", "denominator"):
        pub[col] = pd.to_numeric(pub[col].map(lambda x: np.nan if x == "" else x))
    return pub


def test_no_contradiction_in_a_self_consistent_table(synthetic_results):
    pub = _published_like(synthetic_results)
    res = A.audit(pub)
    assert len(res.findings) > 100  # the rules did run
    assert res.contradictions.empty, res.contradictions["message"].tolist()


def test_recomputed_values_beside_published(synthetic_results):
    pub = _published_like(synthetic_results)
    res = A.audit(pub, synthetic_results.table)
    assert set(res.table["recomputed_status"]) <= {"match", "not recomputed"}
    assert (res.table["recomputed_status"] == "match").sum() > 300


def test_paper_against_synthetic_results(synthetic_results):
    res = A.audit(A.load_published(), synthetic_results.table)
    statuses = set(res.table["status"])
    assert A.CONTRADICTION in statuses and "differs" in statuses
    icans = res.table[(res.table["endpoint"] == "icans_any")].iloc[0]
    assert icans["status"] == A.CONTRADICTION and np.isfinite(icans["recomputed"])


@pytest.mark.parametrize(("printed", "relation", "value", "status"), [
    ("0.342", "=", 0.3424, "match"),
    ("0.342", "=", 0.35, "within tolerance"),
    ("0.342", "=", 0.5, "differs"),
    ("0.001", "<", 0.0004, "match"),
    ("0.001", "<", 0.01, "within tolerance"),
])
def test_compare_value(printed, relation, value, status):
    row = pd.Series({"value": float(printed), "printed": printed, "relation": relation,
                     "statistic": "p_value"})
    assert A.compare_value(row, value) == status


def test_half_unit():
    assert A.half_unit("5.3") == pytest.approx(0.05)
    assert A.half_unit("<0.001") == pytest.approx(0.0005)
    assert A.half_unit("27,231") == pytest.approx(0.5)


def test_results_rows_use_the_results_vocabulary(paper):
    rows = paper.as_results_rows()
    assert list(rows.columns) == COLUMNS
    assert (rows["analysis"] == "audit").all()
    assert (rows["statistic"] == "contradiction").sum() == len(paper.contradictions)
    keys = [c for c in COLUMNS if c != "value"]
    assert not rows.duplicated(subset=keys).any()  # unique on all but value, as the runner


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.h2, self._in = [], False

    def handle_starttag(self, tag, attrs):
        self._in = tag == "h2"

    def handle_endtag(self, tag):
        self._in = False

    def handle_data(self, data):
        if self._in:
            self.h2.append(data.strip())


def test_render_audit(paper):
    html = A.render_audit(paper, {"run_id": "<run>"})
    p = _Text()
    p.feed(html)
    assert any(h.startswith("Contradictions in the paper") for h in p.h2)
    assert "&lt;run&gt;" in html and "<run>" not in html
    assert "17.2%" in html


def test_headline_count_leaves_exact_matches_out_of_the_contradictions():
    """Issue 11: the audit's headline counted every number of a contradiction, including the
    ones our recomputation reproduces exactly (e.g. the counts of a cross-tab whose printed
    p is the wrong number); only the unreproduced ones are contradictions."""
    table = pd.DataFrame({"recomputed_status": ["match", "differs", "not recomputed", "match"]})
    findings = pd.DataFrame([
        {"rule": "p_vs_crosstab", "status": A.CONTRADICTION, "rows": [0, 1, 2],
         "message": "printed p cannot come from the printed counts"},
        {"rule": "percent_vs_count", "status": "consistent", "rows": [3], "message": "ok"}])
    out = A._attach_findings(table, findings)
    assert out["consistency"].tolist() == [A.CONTRADICTION] * 3 + ["consistent"]
    assert out["status"].tolist() == ["match", A.CONTRADICTION, A.CONTRADICTION, "match"]
    summary = dict(A.AuditResult(table=out, findings=findings).summary.values.tolist())
    assert summary == {"match": 2, A.CONTRADICTION: 2}


def test_paper_headline_contradictions_are_never_exact_matches(synthetic_results):
    res = A.audit(A.load_published(), synthetic_results.table)
    t = res.table
    assert not ((t["status"] == A.CONTRADICTION) & (t["recomputed_status"] == "match")).any()
    n = dict(res.summary.values.tolist()).get(A.CONTRADICTION, 0)
    assert n == ((t["consistency"] == A.CONTRADICTION) & (t["recomputed_status"] != "match")).sum() > 0
