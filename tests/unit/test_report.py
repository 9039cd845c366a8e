"""The HTML report and its figures, rendered on a seeded synthetic cohort.

The page is parsed with html.parser: every section heading is there, every image is an
SVG data URI (the 300 dpi PNG is a file beside it), p-values are printed as the paper
prints them, Table 1 names each test once in a footnote, and `meta` is escaped.
"""

from __future__ import annotations

import base64
from html.parser import HTMLParser

import pandas as pd
import pytest
from patient_frames import make_patients as _shared_patients

from analysis.figures import format_p, km_figure, p_text
from analysis.plan import load_plan
from analysis.report import SECTIONS, format_number, methods, render_report
from analysis.runner import run_plan
from analysis.survival import kaplan_meier


def make_patients(seed: int = 7, n: int = 93):
    return _shared_patients(seed, n)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """Headings, images, inline svgs and table cells of the report."""

    def __init__(self):
        super().__init__()
        self.headings: dict[str, list[str]] = {"h1": [], "h2": [], "h3": []}
        self.images: list[str] = []
        self.svgs = 0
        self.cells: list[str] = []
        self._tag: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        if tag == "svg":
            self.svgs += 1
        if tag in self.headings or tag == "td":
            self._tag = tag
            (self.cells if tag == "td" else self.headings[tag]).append("")

    def handle_endtag(self, tag):
        if tag == self._tag:
            self._tag = None

    def handle_data(self, data):
        if self._tag == "td":
            self.cells[-1] += data
        elif self._tag:
            self.headings[self._tag][-1] += data


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return make_patients()


@pytest.fixture(scope="module")
def results(cohort):
    return run_plan(cohort, load_plan())


@pytest.fixture(scope="module")
def report(results, cohort):
    meta = {"run_id": "run-<42>", "cutoff_date": "2023-03-01", "snapshot": "snap_2023_03"}
    return render_report(results, cohort, meta)


@pytest.fixture(scope="module")
def page(report) -> Page:
    p = Page()
    p.feed(report.html)
    return p


def test_every_section_heading_is_present(page):
    h2 = [h.strip() for h in page.headings["h2"]]
    for section in SECTIONS:
        assert section in h2


def test_every_image_is_an_embedded_svg_with_its_files_linked(page, report):
    assert len(page.images) == len(report.figures) > 0
    for src in page.images:
        assert src.startswith("data:image/svg+xml;base64,")
        assert b"<svg" in base64.b64decode(src.split(",", 1)[1])[:2000]
    for fig in report.figures:
        assert f'href="figures/{fig.name}.png"' in report.html
        assert f'href="figures/{fig.name}.svg"' in report.html
    assert "http://" not in report.html.replace("http://www.w3.org", "")  # self-contained
    assert "https://" not in report.html and "<script" not in report.html  # no CDN, works offline


def test_figures_carry_png_and_svg(report):
    names = {f.name for f in report.figures}
    assert {"km_os_crs", "km_lfs_tox_group", "response_crs", "kinetics_car_peak_crs"} <= names
    for f in report.figures:
        assert f.png.startswith(PNG_MAGIC)
        assert png_dpi(f.png) == (300, 300), f.name
        assert b"<svg" in f.svg[:2000]


def png_dpi(png: bytes) -> tuple[int, int]:
    """The PNG's resolution from its pHYs chunk (pixels per metre, unit 1), in dpi."""
    import struct

    at = png.index(b"pHYs")
    x, y, unit = struct.unpack(">IIB", png[at + 4:at + 13])
    assert unit == 1
    return round(x * 0.0254), round(y * 0.0254)


def test_one_km_figure_per_survival_comparison(results, report):
    km = [f for f in report.figures if f.name.startswith("km_")]
    plan = results.plan
    assert len(km) == len(results.survival) == len(plan.survival.compare_by) * len(plan.survival.endpoints)


def test_meta_is_shown_and_escaped(report):
    assert "run-&lt;42&gt;" in report.html and "run-<42>" not in report.html
    assert "2023-03-01" in report.html and "snap_2023_03" in report.html


def test_p_values_in_the_page_are_formatted_as_the_paper(results, report, page):
    t = results.table
    p = t[(t["analysis"] == "survival") & (t["comparison"] == "crs") & (t["endpoint"] == "os")
          & (t["statistic"] == "p_value")]["value"].iloc[0]
    assert f"log-rank test: p = {format_p(p)}" in report.html or "p <0.001" in report.html
    assert any(c.strip() == "<0.001b" for c in page.cells)  # steroids by CRS, marker b: Pearson


@pytest.mark.parametrize(("p", "shown"), [
    (0.0004, "<0.001"), (0.1, "0.100"), (0.001, "0.001"), (0.0009999, "<0.001"),
    (1.0, "1.000"), (0.3424, "0.342"), (float("nan"), "NA"), (None, "NA")])
def test_format_p(p, shown):
    assert format_p(p) == shown


def test_p_text_names_the_test():
    assert p_text(0.0004, "logrank") == "p <0.001 (log-rank test)"
    assert p_text(0.1, "fisher") == "p = 0.100 (Fisher's exact test)"


def test_format_number():
    assert format_number(1459.5) == "1,459.5"
    assert format_number(23.75) == "23.75"
    assert format_number(2.0) == "2"


def test_table2_shows_hr_ci_p_global_p_n_and_events(results, page, report):
    h3 = " ".join(page.headings["h3"])
    cox = results.cox["os"]
    assert f"N = {cox.n}, events = {cox.events}" in h3
    hr = cox.summary.iloc[0]
    assert f"{hr['hr']:.3f}" in report.html
    assert "Toxicity group (global)" in page.cells


def test_followup_is_reported(results, report):
    s = results.followup.summary.iloc[0]
    assert f"{s['median']:.1f} months" in report.html


def test_methods_follow_the_plan():
    plan = load_plan()
    text = " ".join(methods(plan))
    assert "Pearson's chi-square test without continuity correction" in text
    assert "Fisher's exact test (two-sided)" in text  # response by CRS
    fisher = plan.model_copy(update={"table1": plan.table1.model_copy(
        update={"categorical_test": "fisher"})})
    t1 = methods(fisher)[0]
    assert "Fisher's exact test" in t1 and "Pearson" not in t1


def test_figures_are_reproducible(cohort):
    km = kaplan_meier(cohort, "os_months", "os_event", "crs_any")
    a = km_figure(km, 0.5, "logrank", name="x", title="OS")
    b = km_figure(km, 0.5, "logrank", name="x", title="OS")
    assert a.png == b.png and a.svg == b.svg
    assert b"Date" not in a.svg[:1000]


def test_audit_summary_section_when_an_audit_is_given(results, cohort):
    from analysis.audit import audit, load_published
    rep = render_report(results, cohort, {"run_id": "r", "cutoff_date": "2023-03-01"},
                        audit=audit(load_published(), results.table))
    p = Page()
    p.feed(rep.html)
    assert "Consistency with the published paper" in [h.strip() for h in p.headings["h2"]]
    assert 'href="audit.html"' in rep.html


def test_response_and_kinetics_p_values_are_in_the_page(results, page):
    cells = [c.strip() for c in page.cells]
    r = results.response[("crs", "cr")]
    assert f"{format_p(r.p_value)} Fisher's exact test" in cells
    k = results.kinetics[("tox_group", "car_peak")]
    assert f"{format_p(k.p_value)} Kruskal–Wallis test" in cells


def _table1_html(html: str) -> str:
    return html[html.index('id="table1"'):html.index('id="response"')]


def test_table1_names_each_test_once_in_a_footnote(report):
    """Issue 11: the test's name was printed in every p cell; now a superscript marker
    per p and one footnote per test."""
    t1 = _table1_html(report.html)
    table, notes = t1.split("</table>", 1)
    assert "Mann–Whitney U test" not in table and "Pearson χ² test" not in table
    assert '<sup class="marker">a</sup>' in table and '<sup class="marker">b</sup>' in table
    footnote = notes[:notes.index("</p>")]
    assert footnote.count("Mann–Whitney U test") == 1 and footnote.count("Pearson χ² test") == 1
    assert footnote.index('marker">a') < footnote.index("Mann–Whitney") < footnote.index('marker">b')


def test_table1_shows_readable_labels_from_the_code_lists(report):
    """Sex and disease status come from schemas/codelists via the view header's {codelist}."""
    from schemas.model import codelist

    t1 = _table1_html(report.html)
    for name in ("sex", "disease_status"):
        for row in codelist(name):
            assert f"<td>{row['description']}, n (%)</td>" in t1
    assert "<td>M, n (%)</td>" not in t1 and "primary_refractory" not in t1
    assert "<td>yes, n (%)</td>" not in t1 and "<td>Yes, n (%)</td>" in t1


def test_table1_p_markers_follow_the_tests_actually_run(results):
    from analysis.report import table1

    t = table1(results, codes={})
    markers = {f["test"]: f["marker"] for f in t["footnotes"]}
    for row in t["rows"]:
        for p in row.get("p", []):
            assert p["marker"] == markers[p["test"]]
    assert list(markers.values()) == list("abcdefghij"[:len(markers)])


def test_every_figure_draws_with_the_one_palette(report):
    """Groups take Okabe–Ito colours (analysis.figure_style.PALETTE), whatever the figure;
    besides them only black, white and the neutral grey of reference lines."""
    import re

    from analysis.figure_style import NEUTRAL, PALETTE

    allowed = {c.upper() for c in PALETTE} | {"#000000", "#FFFFFF", NEUTRAL.upper()}
    for f in report.figures:
        used = {c.decode().upper() for c in re.findall(rb"(?:stroke|fill):\s*(#[0-9a-fA-F]{6})", f.svg)}
        assert used <= allowed, (f.name, used - allowed)
        assert used & {c.upper() for c in PALETTE}, f.name
