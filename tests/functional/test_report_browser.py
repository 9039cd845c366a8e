"""The demo report and its audit page in a real browser (headless Chromium, 1280 px wide).

Issue 11, "a report a journal would take": `carpool analyze` on the demo warehouse writes
out/report/index.html, audit.html and figures/; laid out by Chromium,

* neither page is wider than the window, and no box's content is wider than the box
  (so a table that does not fit cannot hide in a scrolling wrapper);
* no heading is clipped, and every embedded figure loads;
* in every figure (the SVG written beside the page), the title and every other text lie
  inside the figure and no two texts overlap.

The first two tests check that the measurement itself can fail. Chromium is Debian's
`chromium` package (.ci/run installs it); without /usr/bin/chromium the tests skip.
Select them with `pytest -m browser`.
"""

from __future__ import annotations

import io

import matplotlib
import pytest

from etl.analyze import analyze_warehouse
from tests.browser import CHROMIUM, measure_figures, measure_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed (apt-get install "
                       "chromium; .ci/run does it): the report is not checked in a browser"),
]
WIDTH = 1280


@pytest.fixture(scope="module")
def report_dir(demo):
    cfg, _ = demo
    index = analyze_warehouse(cfg, None, None, lambda *a, **k: None)
    return index.parent


def _svg(draw) -> str:
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(3, 2))
    draw(fig)
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    return buf.getvalue()


def test_the_figure_check_catches_clipped_titles_and_overlapping_labels():
    def clipped(fig):
        fig.suptitle("A title far too long to fit in a figure only three inches wide", x=0.02,
                     ha="left", gid="figure-title")

    def overlapping(fig):
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "first label")
        ax.text(0.52, 0.5, "second label")

    m = measure_figures({"clipped": _svg(clipped), "overlapping": _svg(overlapping)}, WIDTH)
    assert [o["figure"] for o in m["outside"]] == ["clipped"]
    assert m["titled"] == 1
    assert {o["figure"] for o in m["overlaps"]} == {"overlapping"}


def test_the_page_check_catches_a_table_wider_than_the_window():
    cells = "".join(f"<td>column_{i}_with_a_long_unbreakable_value</td>" for i in range(12))
    page = (f"<!DOCTYPE html><html><body><h1>t</h1><div style='overflow-x:auto'>"
            f"<table><tr>{cells}</tr></table></div></body></html>")
    m = measure_page(page, WIDTH)
    assert m["overflow"] and any("div" in o["element"] for o in m["overflow"])


@pytest.mark.parametrize("page", ["index.html", "audit.html"])
def test_page_fits_a_1280px_window(report_dir, page):
    m = measure_page((report_dir / page).read_text(encoding="utf-8"), WIDTH)
    assert m["tables"] > 0 and m["headings"] > 0  # the page was laid out, not an error page
    assert m["scrollWidth"] <= m["width"], "horizontal scrollbar"
    assert m["overflow"] == [], m["overflow"][:5]
    assert m["clipped"] == [], m["clipped"][:5]
    assert m["broken"] == []


def test_every_figure_is_embedded_and_loads(report_dir):
    m = measure_page((report_dir / "index.html").read_text(encoding="utf-8"), WIDTH)
    svgs = sorted((report_dir / "figures").glob("*.svg"))
    assert m["images"] == len(svgs) == len(list((report_dir / "figures").glob("*.png"))) > 20


def test_no_figure_text_is_clipped_or_overlapping(report_dir):
    svgs = {p.stem: p.read_text(encoding="utf-8") for p in sorted((report_dir / "figures").glob("*.svg"))}
    m = measure_figures(svgs, WIDTH)
    assert m["figures"] == len(svgs) > 20
    assert m["titled"] == len(svgs)  # every figure has its title, inside the figure
    assert m["outside"] == [], m["outside"][:5]
    assert m["overlaps"] == [], m["overlaps"][:5]
