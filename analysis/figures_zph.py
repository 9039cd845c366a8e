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

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from analysis.figures import COLORS, RC, Figure, p_text, render  # noqa: E402


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
        fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 2.8 * rows + 0.5),
                                 squeeze=False)
        x = res["transformed"].to_numpy(dtype=float)
        for k, term in enumerate(terms):
            ax = axes[k // cols][k % cols]
            y = res[term].to_numpy(dtype=float)
            ax.scatter(x, y, s=10, color=COLORS[0], alpha=0.6)
            ax.axhline(1.0 if term in factor else float(coef[term]), color="black", lw=1,
                       ls="--")
            if len(np.unique(x)) > 4:
                grid = np.linspace(x.min(), x.max(), 100)
                ax.plot(grid, np.polyval(np.polyfit(x, y, 3), grid), color=COLORS[1], lw=1.4)
            ticks = np.quantile(x, [0, 0.25, 0.5, 0.75, 1])
            times = np.interp(ticks, np.sort(x), np.sort(res["time"].to_numpy(dtype=float)))
            ax.set_xticks(ticks)
            ax.set_xticklabels([f"{t:.0f}" for t in times], fontsize=7)
            ax.set_xlabel(xlabel, fontsize=8)
            ax.set_ylabel(f"Beta(t) for {(term_labels or {}).get(term, term)}", fontsize=8)
            ax.set_title(p_text(float(tests.loc[term, "p_value"]), "cox_zph"), fontsize=8,
                         loc="left")
        for k in range(n, rows * cols):
            axes[k // cols][k % cols].axis("off")
        g = float(tests.loc["GLOBAL", "p_value"])
        fig.suptitle(f"{title}\nglobal {p_text(g, 'cox_zph')}", fontsize=10, x=0.02, ha="left")
        fig.tight_layout()
    return render(fig, name, title)
