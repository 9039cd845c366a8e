"""Figures of the plan's `beyond_paper` section, drawn like `analysis.figures` (bytes, never written).

* `forest_figure`: per-center hazard ratios with 95% CIs (squares sized by weight), the
  pooled fixed-effect, DerSimonian–Laird and REML estimates as diamonds, and Cochran's Q,
  I² and τ² in the caption line; centers that cannot be estimated are listed by name.
* `cif_figure`: cumulative incidence of the event of interest (solid) and the competing
  event (dashed) per group, with Gray's test per cause.
* `build_beyond_figures(results)`: every such figure of a `PlanResults`.
"""

from __future__ import annotations

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from analysis.competing import CIFResult  # noqa: E402
from analysis.figures import (  # noqa: E402
    COLORS,
    ENDPOINT_TITLES,
    RC,
    Figure,
    _label,
    group_label,
    level_labels,
    order_levels,
    p_text,
    render,
)
from analysis.heterogeneity import HeterogeneityResult  # noqa: E402

POOLED = {"FE": "Fixed effect", "DL": "Random effects (DerSimonian–Laird)",
          "REML": "Random effects (REML)"}


def forest_figure(res: HeterogeneityResult, *, name: str, title: str,
                  center_labels: dict[str, str] | None = None) -> Figure:
    """Forest plot of one exposure's per-center HRs and the pooled estimates."""
    centers = res.per_center[res.per_center["estimable"]]
    pooled = res.pooled.summary if res.pooled is not None else None
    rows = len(centers) + (len(pooled) if pooled is not None else 0)
    note = _heterogeneity_note(res)
    n_note = note.count("\n") + 1 if note else 0
    height = 1.2 + 0.34 * rows + 0.17 * n_note          # inches
    with matplotlib.rc_context(RC):
        fig = plt.figure(figsize=(7.2, height))
        bottom = (0.55 + 0.17 * n_note) / height
        ax = fig.add_axes([2.7 / 7.2, bottom, 2.9 / 7.2, 1 - bottom - 0.4 / height])
        y = rows
        w = 1 / centers["se"] ** 2 if len(centers) else []
        labels = []
        for (_, r), wi in zip(centers.iterrows(), w, strict=True):
            y -= 1
            ax.plot([r["hr_lower"], r["hr_upper"]], [y, y], color=COLORS[0], lw=1.2)
            ax.plot(r["hr"], y, "s", color=COLORS[0], ms=4 + 6 * np.sqrt(wi / max(w)))
            labels.append((y, f"{(center_labels or {}).get(r['center'], r['center'])} "
                              f"(n={int(r['n'])}, events={int(r['events'])})",
                           f"{r['hr']:.2f} ({r['hr_lower']:.2f}–{r['hr_upper']:.2f})"))
        if pooled is not None:
            for k, r in enumerate(pooled.to_dict("records")):
                y -= 1
                lo, mid, hi = np.exp([r["lower"], r["estimate"], r["upper"]])
                ax.fill([lo, mid, hi, mid], [y, y + 0.3, y, y - 0.3], color=COLORS[1 + k])
                labels.append((y, POOLED[r["method"]], f"{mid:.2f} ({lo:.2f}–{hi:.2f})"))
        ax.axvline(1, color="grey", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_ylim(-0.7, rows - 0.3)
        ax.set_yticks([lab[0] for lab in labels])
        ax.set_yticklabels([lab[1] for lab in labels], fontsize=8)
        for yy, _, txt in labels:
            ax.text(1.03, yy, txt, transform=ax.get_yaxis_transform(), va="center", fontsize=8)
        ax.set_xlabel("Hazard ratio (log scale) with 95% CI", fontsize=8)
        fig.text(0.02, 1 - 0.12 / height, title, fontsize=10, va="top")
        if note:
            fig.text(0.02, 0.06 / height, note, fontsize=7.5, va="bottom")
    return render(fig, name, title)


def _heterogeneity_note(res: HeterogeneityResult) -> str:
    parts = []
    if res.pooled is not None:
        fe = res.pooled.row("FE")
        parts.append(f"Heterogeneity: Q = {res.pooled.q:.2f} on {res.pooled.q_dof} df, "
                     f"{p_text(res.pooled.q_p, 'cochran_q')}; I² = {fe['i2']:.1f}%")
        parts.append(f"τ² = {res.pooled.row('DL')['tau2']:.3f} (DerSimonian–Laird), "
                     f"{res.pooled.row('REML')['tau2']:.3f} (REML)")
    skipped = res.per_center[~res.per_center["estimable"]]
    for r in skipped.to_dict("records"):
        parts.append(f"{r['center']} not estimable: {r['note'].split(':')[0]}")
    return "\n".join(parts)


def cif_figure(res: CIFResult, *, name: str, title: str, comparison_label: str = "",
               group_labels: dict[str, str] | None = None,
               cause_labels: dict[str, str] | None = None, xlabel: str = "Months") -> Figure:
    """Cumulative incidence per group: event of interest solid, competing dashed."""
    cause_labels = cause_labels or {}
    groups = order_levels(res.curves["group"].unique(), group_labels)
    causes = [res.event, *res.competing]
    with matplotlib.rc_context(RC):
        fig, ax = plt.subplots(figsize=(6.2, 4.2))
        t_max = float(res.curves["time"].max()) or 1.0
        for k, g in enumerate(groups):
            for j, cause in enumerate(causes):
                c = res.curves[(res.curves["group"] == g) & (res.curves["cause"] == cause)]
                t = np.append(c["time"].to_numpy(), t_max)
                f = np.append(c["estimate"].to_numpy(), c["estimate"].iloc[-1])
                glab = ("" if g == "all" else
                        group_label(comparison_label, g, group_labels) + ", ")
                ax.step(t, f, where="post", color=COLORS[k % len(COLORS)], lw=1.6,
                        ls="-" if j == 0 else "--",
                        label=f"{glab}{cause_labels.get(cause, cause)}")
        ax.set_ylim(0, 1)
        ax.set_xlim(0, t_max * 1.02)
        ax.set_ylabel("Cumulative incidence")
        ax.set_xlabel(xlabel)
        ax.set_title(title, fontsize=10, loc="left")
        ax.legend(loc="upper left", frameon=False, fontsize=8)
        if len(res.tests):
            txt = "\n".join(f"{cause_labels.get(r['cause'], r['cause'])}: "
                            f"{p_text(r['p_value'], 'gray')}"
                            for r in res.tests.to_dict("records"))
            ax.text(0.98, 0.98, txt, transform=ax.transAxes, ha="right", va="top", fontsize=8)
        fig.tight_layout()
    return render(fig, name, title)


def build_beyond_figures(results) -> list[Figure]:
    """Forest plots (heterogeneity) and CIF plots (competing risks) of a `PlanResults`."""
    plan, b = results.plan, results.beyond
    figures: list[Figure] = []
    if plan.beyond_paper is None:
        return figures
    h = plan.beyond_paper.heterogeneity
    for (x, ep), res in b.heterogeneity.items():
        figures.append(forest_figure(
            res, name=f"forest_{ep}_{x}",
            title=f"{ENDPOINT_TITLES.get(ep, ep)}: {_label(plan, x)} by center",
            center_labels=level_labels(plan, h.center) if h else None))
    cr = plan.beyond_paper.competing_risks
    for (comp, ep), res in b.competing.items():
        spec = cr.endpoints[ep]
        lab = _label(plan, comp) if comp != "all" else ""
        causes = ", ".join(spec.labels.get(c, c).lower() for c in [spec.event, *spec.competing])
        figures.append(cif_figure(
            res, name=f"cif_{ep}_{comp}",
            title=f"Cumulative incidence of {causes}" + (f" by {lab}" if lab else ""),
            comparison_label=lab, group_labels=level_labels(plan, comp) if lab else None,
            cause_labels=spec.labels))
    return figures
