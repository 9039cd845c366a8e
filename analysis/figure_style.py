"""One look for every figure of the report: palette, fonts, resolution, titles, risk tables.

* `PALETTE`: the Okabe–Ito colour-blind-safe palette (Okabe & Ito 2008, "Color Universal
  Design"), the only colours any figure draws groups with; `color(k)` cycles it.
* `DPI`: the PNG resolution a journal asks for (300 dpi); the SVG is vector.
* `new_figure(...)`: a matplotlib figure with constrained layout, so titles, tick labels,
  legends and risk tables are never clipped and never overlap (every figure uses it).
* `titles(fig, title, subtitle)`: the title wrapped to the figure's width, with the test
  line (p and the test's name) under it, never on the plotting area; `legend_above(ax,
  ...)`: the legend between the title and the plotting area, the test line as its title.
* `risk_table(tab, times, rows)`: numbers at risk on an axes that shares the x axis of the
  curves above it, so every count sits under its time tick.
* `render(fig, name, title)`: PNG (300 dpi) and SVG bytes of a figure from one layout,
  reproducible byte for byte (fixed SVG hash salt, text as paths, no dates or versions in
  the metadata); `png_bytes` writes the PNG (in `render`, compressed on a helper thread
  while the SVG is drawn: the same bytes).

Nothing here changes global rcParams; everything draws inside `rc_context(RC)`.
"""

from __future__ import annotations

import functools
import io
import struct
import textwrap
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

#: Okabe–Ito, reordered for contrast on white: blue, vermillion, bluish green, reddish
#: purple, orange, sky blue, black (yellow, too light for thin lines on white, is left out).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
NEUTRAL = "#4D4D4D"   # reference lines, medians, fitted coefficients: not a group
DPI = 300
FONT = 9
RC = {"svg.hashsalt": "carpool", "svg.fonttype": "path", "font.size": FONT,
      "axes.spines.top": False, "axes.spines.right": False,
      "figure.constrained_layout.h_pad": 0.06, "figure.constrained_layout.w_pad": 0.06}
RASTER_ABOVE = 2000  # draw denser point layers as an embedded bitmap, in PNG and SVG alike


def color(k: int) -> str:
    """The k-th group's colour (the palette cycles)."""
    return PALETTE[k % len(PALETTE)]


@dataclass(frozen=True, eq=False)
class Figure:
    """One figure: `name` is the file stem (e.g. `km_os_crs`)."""

    name: str
    title: str
    png: bytes
    svg: bytes


def new_figure(width: float, height: float):
    """A figure (inches) laid out by matplotlib's constrained layout."""
    return plt.figure(figsize=(width, height), layout="constrained")


def wrap(text: str, width_in: float, fontsize: float = FONT) -> str:
    """`text` wrapped to lines that fit `width_in` inches at `fontsize` (existing breaks kept)."""
    chars = max(20, int(width_in * 72 / (0.6 * fontsize)))
    return "\n".join(textwrap.fill(line, chars) for line in str(text).splitlines() or [""])


def titles(fig, title: str, subtitle: str = "") -> None:
    """The figure's title wrapped to its width, with a smaller line under it (e.g. the test)."""
    width = fig.get_figwidth() - 0.2
    text = wrap(title, width, 10) + (f"\n{wrap(subtitle, width, 8)}" if subtitle else "")
    fig.suptitle(text, x=0.01, ha="left", fontsize=10 if not subtitle else 9.5, gid="figure-title")


def legend_above(ax, handles=None, title: str = "") -> None:
    """The legend above the plotting area (never on the data), with `title` (e.g. the
    test's p) as its first line; as many columns as fit in the figure's width."""
    handles = handles if handles is not None else ax.get_legend_handles_labels()[0]
    labels = [h.get_label() for h in handles]
    width = ax.figure.get_figwidth() - 1.0
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.01), frameon=False,
              fontsize=8, title=wrap(title, width, 8) if title else None, title_fontsize=8,
              alignment="left", ncol=legend_columns(labels, width), borderaxespad=0.2)


def legend_columns(labels: list[str], width_in: float, fontsize: float = 8) -> int:
    """As many legend columns as fit side by side in `width_in` inches (at least 1)."""
    chars = width_in * 72 / (0.55 * fontsize)
    per_col = max((len(s) for s in labels), default=0) + 6  # handle and padding
    return max(1, min(len(labels), int(chars // per_col)))


def time_ticks(t_max: float, most: int = 8):
    """Ticks 0, step, 2·step, ... covering [0, t_max] with at most `most` intervals, the
    step taken from 1, 3, 6, 12, 24, 36, 60, 120, ... (months)."""
    t_max = max(float(t_max), 1e-9)
    steps = [1, 3, 6, 12, 24, 36, 60, 120, 240, 480, 960]
    step = next((s for s in steps if t_max / s <= most), steps[-1] * np.ceil(t_max / (most * steps[-1])))
    return np.arange(0, t_max + step * 0.999, step)[: most + 1]


def risk_table(tab, times, rows: list[tuple[str, str, list[int]]], title: str = "Number at risk",
               label_width_in: float = 1.4) -> None:
    """Numbers at risk on `tab`, an axes sharing x with the curves: one row per
    (label, colour, counts at `times`), each count centred under its time tick."""
    n = len(rows)
    tab.set_ylim(n - 0.5, -0.5)
    tab.set_yticks(range(n))
    tab.set_yticklabels([wrap(label, label_width_in, 8) for label, _, _ in rows], fontsize=8)
    for tick, (_, col, _) in zip(tab.get_yticklabels(), rows, strict=True):
        tick.set_color(col)
    tab.tick_params(axis="both", length=0, labelbottom=False)
    tab.xaxis.set_visible(False)  # shares the curves' x ticks; drawing none of its own saves time
    tab.tick_params(axis="y", pad=16)  # clear of the counts centred on the first tick
    for side in ("top", "right", "bottom", "left"):
        tab.spines[side].set_visible(False)
    for y, (_, col, counts) in enumerate(rows):
        for t, c in zip(times, counts, strict=True):
            tab.text(t, y, str(int(c)), ha="center", va="center", fontsize=8, color=col)
    tab.set_title(title, loc="left", fontsize=8, fontweight="bold")


def render(fig, name: str, title: str) -> Figure:
    """PNG (DPI) + SVG bytes of a matplotlib figure (closed afterwards).

    One layout for both: the figure is drawn once at DPI (constrained layout runs in that
    draw), its layout engine is then removed so the SVG draw reuses those positions
    (`savefig` with a layout engine draws twice and lays out each time). The PNG is the
    Agg canvas as it stands, written by `png_bytes`: its rows are copied here, and their
    zlib compression (which releases the GIL) runs on a helper thread while this thread
    draws the SVG. The bytes are the same as compressing in line; only when they are
    computed differs (the figure waits for them before it is returned).
    """
    with matplotlib.rc_context(RC):
        fig.dpi = DPI
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())
        png = _png_thread().submit(_png_file, _png_rows(rgba), rgba.shape, DPI)
        fig.set_layout_engine(None)
        svg = io.BytesIO()
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return Figure(name=name, title=title, png=png.result(), svg=svg.getvalue())


@functools.cache
def _png_thread() -> ThreadPoolExecutor:
    """The one helper thread that compresses PNGs beside the drawing (made on first use)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="carpool-png")


PNG_LEVEL = 3  # zlib level: unfiltered rows at 3 are ~20% larger than Pillow's filtered level 6, ~3x faster


def png_bytes(rgba, dpi: int) -> bytes:
    """A PNG of an (h, w, 4) uint8 RGBA image (the Agg canvas, as matplotlib writes it):
    rows unfiltered, resolution `dpi` in pHYs, no text chunks (no dates or versions: the
    same pixels give the same bytes)."""
    return _png_file(_png_rows(rgba), rgba.shape, dpi)


def _png_rows(rgba) -> np.ndarray:
    """The PNG scanlines of an (h, w, 4) image: a filter byte (0, None) before each row (a copy)."""
    h, w, _ = rgba.shape
    rows = np.empty((h, 1 + w * 4), dtype=np.uint8)
    rows[:, 0] = 0  # filter type None on every row
    rows[:, 1:] = rgba.reshape(h, w * 4)
    return rows


def _png_file(rows: np.ndarray, shape: tuple, dpi: int) -> bytes:
    """The PNG file of scanlines from `_png_rows` of an image of `shape` (h, w, 4)."""
    h, w, _ = shape
    ppm = int(dpi / 0.0254 + 0.5)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
            + chunk(b"pHYs", struct.pack(">IIB", ppm, ppm, 1))
            + chunk(b"IDAT", zlib.compress(rows, PNG_LEVEL))  # the array's buffer: no bytes copy
            + chunk(b"IEND", b""))
