"""The one figure style: Okabe–Ito colours only, number-at-risk counts under the time ticks,
time ticks that stay readable, titles wrapped to the figure's width."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from analysis import figure_style as S
from analysis.figures import curves_and_table

OKABE_ITO = {"#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00",
             "#CC79A7"}  # Okabe & Ito (2008), Color Universal Design


def test_palette_is_okabe_ito():
    assert set(S.PALETTE) <= OKABE_ITO and len(set(S.PALETTE)) == len(S.PALETTE) >= 5
    assert [S.color(k) for k in range(len(S.PALETTE) + 1)][-1] == S.PALETTE[0]


def test_risk_table_counts_sit_under_the_time_ticks():
    """The count at time t is centred on the curves' tick at t (same display x, ±0.5 px)."""
    times = S.time_ticks(80)
    with matplotlib.rc_context(S.RC):
        fig, ax, tab = curves_and_table(2)
        ax.step([0, 40, 80], [1, 0.6, 0.3])
        ax.set_xlim(0, times[-1] * 1.02)
        ax.set_xticks(times)
        S.risk_table(tab, times, [("A long group name that wraps", S.color(0), [9] * len(times)),
                                  ("B", S.color(1), [12] * len(times))])
        fig.canvas.draw()
        ticks = [ax.transData.transform((t, 0))[0] for t in ax.get_xticks()]
        for row in range(2):
            texts = [t for t in tab.texts if t.get_position()[1] == row]
            xs = [np.mean(t.get_window_extent().intervalx) for t in texts]
            assert xs == pytest.approx(ticks, abs=0.5)
        label_right = max(lab.get_window_extent().x1 for lab in tab.get_yticklabels())
        first_count = min(t.get_window_extent().x0 for t in tab.texts)
        assert label_right < first_count  # the row labels never run into the first count
        matplotlib.pyplot.close(fig)


@pytest.mark.parametrize(("t_max", "step"), [(5, 1), (20, 3), (40, 6), (80, 12), (200, 36),
                                             (400, 60)])
def test_time_ticks_stay_readable(t_max, step):
    ticks = S.time_ticks(t_max)
    assert ticks[0] == 0 and ticks[-1] >= t_max and len(ticks) <= 9
    assert np.diff(ticks) == pytest.approx(step)


def test_long_titles_are_wrapped_to_the_figure():
    title = "Cumulative incidence of relapse and non-relapse mortality by CRS grade (none, 1-2, >= 3)"
    assert max(len(line) for line in S.wrap(title, 3.0, 10).splitlines()) <= 3.0 * 72 / 6
    assert S.wrap("a\nb", 6.0) == "a\nb"


@pytest.mark.parametrize("alpha", [255, 128])
def test_png_bytes_decode_to_the_same_pixels(alpha):
    """`png_bytes` is a plain PNG: Pillow reads back the exact pixels and the resolution."""
    import io

    from PIL import Image

    rgba = np.random.default_rng(1).integers(0, 256, (7, 5, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[0, 0, 3] = alpha
    img = Image.open(io.BytesIO(S.png_bytes(rgba, 300)))
    assert img.mode == "RGBA" and round(img.info["dpi"][0]) == 300
    assert (np.asarray(img) == rgba).all()


def test_render_lays_out_once_and_png_matches_the_canvas():
    """The PNG is the figure as constrained layout placed it at 300 dpi, and the SVG is
    drawn from the same layout (no layout engine left to move anything)."""
    import io

    from PIL import Image

    fig = S.new_figure(3, 2)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1])
    S.titles(fig, "A title")
    out = S.render(fig, "x", "A title")
    assert fig.get_layout_engine() is None
    img = Image.open(io.BytesIO(out.png))
    assert img.size == (900, 600)
    assert b"<svg" in out.svg[:2000]


@pytest.mark.parametrize("points, raster", [(200, False), (3000, True)])
def test_ph_figure_draws_a_large_point_cloud_as_one_bitmap(points, raster):
    """The PH-test figure plots every scaled Schoenfeld residual: at 100,000 patients ~50,000
    a panel, which as SVG markers took ~20 s per figure. Above RASTER_ABOVE the points are
    one embedded bitmap (text and lines stay vector); a small cloud stays vector."""
    from types import SimpleNamespace

    import pandas as pd

    from analysis.figures_zph import zph_figure

    rng = np.random.default_rng(1)
    x = np.sort(rng.uniform(0, 1, points))
    result = SimpleNamespace(
        ph_test=pd.DataFrame({"term": ["age", "GLOBAL"], "p_value": [0.4, 0.4]}),
        ph_residuals=pd.DataFrame({"transformed": x, "time": x * 24, "age": rng.normal(0, 1, points)}),
        factors=pd.DataFrame({"variable": []}), summary=pd.DataFrame({"term": ["age"], "coef": [0.1]}))
    fig = zph_figure(result, name="zph", title="PH test")
    assert (b"<image" in fig.svg) is raster
    assert fig.svg.count(b"<path") < (200 if raster else points + 200)
