"""Proportional-hazards diagnostic figure: scaled Schoenfeld residuals per term (R `plot(cox.zph(fit))`).

One panel per model term. Points: R's scaled Schoenfeld residuals (`cox.zph(fit)$y`)
against the Kaplan–Meier-transformed event time (R's default `transform = "km"`
axis, labelled here in the time unit). Under proportional hazards they scatter
around a flat line: the dashed line is the fitted coefficient (for a factor,
whose residuals are combined with its coefficients as R does, it is 1). The
solid line is a least-squares cubic in the transformed time (4 df, as R's
default `df = 4` spline), a guide for the eye; the p-value is the term's
`cox.zph` test, which is what the report's PH flag uses.
"""

from __future__ import annotations

import matplotlib
import numpy as np

from analysis.figure_style import NEUTRAL, RASTER_ABOVE, RC, Figure, color, new_figure, render, titles, wrap
from analysis.figures import p_text


def zph_figure(result, *, name: str, title: str, term_labels: dict[str, str] | None = None,
               xlabel: str = "Months") -> Figure | None:
    """The figure for one CoxResult (None when its PH test could not be computed)."""
    if result.ph_test is None or result.ph_residuals is None:
        return None
    res = result.ph_residuals
    terms = [t for t in result.ph_test["term"] if t != "GLOBAL"]
    tests = result.ph_test.set_index("term")
    factor = set(result.factors["variable"]) if len(result.factors) else set()
    coef = result.summary.set_index("term")["coef"]
    n = len(terms)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    with matplotlib.rc_context(RC):
        fig = new_figure(3.2 * cols, 2.9 * rows + 0.7)
        axes = fig.subplots(rows, cols, squeeze=False)
        x = res["transformed"].to_numpy(dtype=float)
        for k, term in enumerate(terms):
            ax = axes[k // cols][k % cols]
            y = res[term].to_numpy(dtype=float)
            ax.scatter(x, y, s=10, color=color(0), alpha=0.6,
                       rasterized=len(x) > RASTER_ABOVE)  # every residual: 50,000 points at 100k patients
            ax.axhline(1.0 if term in factor else float(coef[term]), color=NEUTRAL, lw=1,
                       ls="--")
            if len(np.unique(x)) > 4:
                grid = np.linspace(x.min(), x.max(), 100)
                ax.plot(grid, np.polyval(np.polyfit(x, y, 3), grid), color=color(1), lw=1.4)
            ticks = np.quantile(x, [0, 0.25, 0.5, 0.75, 1])
            times = np.interp(ticks, np.sort(x), np.sort(res["time"].to_numpy(dtype=float)))
            ax.set_xticks(ticks)
            ax.set_xticklabels([f"{t:.0f}" for t in times], fontsize=7)
            ax.set_xlabel(xlabel, fontsize=8)
            ax.set_ylabel(wrap(f"Beta(t) for {(term_labels or {}).get(term, term)}", 2.2, 8), fontsize=8)
            ax.set_title(p_text(float(tests.loc[term, "p_value"]), "cox_zph"), fontsize=8,
                         loc="left")
        for k in range(n, rows * cols):
            axes[k // cols][k % cols].axis("off")
        g = float(tests.loc["GLOBAL", "p_value"])
        titles(fig, title, f"global {p_text(g, 'cox_zph')}")
    return render(fig, name, title)
