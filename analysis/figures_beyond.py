"""Figures of the plan's `beyond_paper` section, drawn like `analysis.figures` (bytes, never written).

* `forest_figure`: per-center hazard ratios with 95% CIs (squares sized by weight), the
  pooled fixed-effect, DerSimonian–Laird and REML estimates as diamonds, and Cochran's Q,
  I² and τ² in the caption line; centers that cannot be estimated are listed by name.
* `cif_figure`: cumulative incidence of the event of interest (solid) and the competing
  event (dashed) per group, with Gray's test per cause and the numbers at risk aligned
  under the time axis (taken from the Kaplan–Meier curve of the same patients,
  `cif_risk_set`).
* `build_beyond_figures(results)`: every such figure of a `PlanResults`;
  `beyond_figure_jobs` gives them as jobs not yet drawn.
"""

from __future__ import annotations

from functools import partial

import matplotlib
import matplotlib.ticker
import numpy as np
from matplotlib.lines import Line2D

from analysis.competing import CIFResult
from analysis.figure_style import (
    NEUTRAL,
    RC,
    Figure,
    color,
    legend_above,
    new_figure,
    render,
    risk_table,
    time_ticks,
    titles,
    wrap,
)
from analysis.figures import (
    ENDPOINT_TITLES,
    _label,
    curves_and_table,
    draw,
    group_label,
    level_labels,
    order_levels,
    p_text,
    short_group_label,
)
from analysis.heterogeneity import HeterogeneityResult

POOLED = {"FE": "Fixed effect", "DL": "Random effects (DerSimonian–Laird)",
          "REML": "Random effects (REML)"}
CAUSE_STYLES = ("-", "--", ":", "-.")  # event of interest solid, competing events dashed, ...


def forest_figure(res: HeterogeneityResult, *, name: str, title: str,
                  center_labels: dict[str, str] | None = None) -> Figure:
    """Forest plot of one exposure's per-center HRs and the pooled estimates: labels on
    the left axis, "HR (95% CI)" on the right one, heterogeneity under the plot."""
    centers = res.per_center[res.per_center["estimable"]]
    pooled = res.pooled.summary if res.pooled is not None else None
    rows = len(centers) + (len(pooled) if pooled is not None else 0)
    note = _heterogeneity_note(res)
    with matplotlib.rc_context(RC):
        fig = new_figure(7.2, 1.5 + 0.34 * rows + 0.17 * (note.count("\n") + 1 if note else 0))
        ax = fig.add_subplot()
        y = rows
        w = 1 / centers["se"] ** 2 if len(centers) else []
        labels = []
        for (_, r), wi in zip(centers.iterrows(), w, strict=True):
            y -= 1
            ax.plot([r["hr_lower"], r["hr_upper"]], [y, y], color=color(0), lw=1.2)
            ax.plot(r["hr"], y, "s", color=color(0), ms=4 + 6 * np.sqrt(wi / max(w)))
            labels.append((y, f"{(center_labels or {}).get(r['center'], r['center'])} "
                              f"(n={int(r['n'])}, events={int(r['events'])})",
                           f"{r['hr']:.2f} ({r['hr_lower']:.2f}–{r['hr_upper']:.2f})"))
        if pooled is not None:
            for k, r in enumerate(pooled.to_dict("records")):
                y -= 1
                lo, mid, hi = np.exp([r["lower"], r["estimate"], r["upper"]])
                ax.fill([lo, mid, hi, mid], [y, y + 0.3, y, y - 0.3], color=color(1 + k))
                labels.append((y, POOLED[r["method"]], f"{mid:.2f} ({lo:.2f}–{hi:.2f})"))
        ax.axvline(1, color=NEUTRAL, lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_ylim(-0.7, rows - 0.3)
        ax.set_yticks([lab[0] for lab in labels])
        ax.set_yticklabels([wrap(lab[1], 2.6, 8) for lab in labels], fontsize=8)
        ax.tick_params(axis="y", length=0)
        right = ax.twinx()
        right.set_ylim(ax.get_ylim())
        right.set_yticks([lab[0] for lab in labels])
        right.set_yticklabels([lab[2] for lab in labels], fontsize=8)
        right.tick_params(axis="y", length=0)
        for side in ("top", "right", "left"):
            right.spines[side].set_visible(False)
        right.set_ylabel("HR (95% CI)", fontsize=8, rotation=0, ha="left", va="bottom")
        right.yaxis.set_label_coords(1.02, 1.0)
        ax.spines["left"].set_visible(False)
        ax.set_xlabel("Hazard ratio (log scale) with 95% CI", fontsize=8)
        titles(fig, title)
        if note:
            fig.supxlabel(note, x=0.01, ha="left", fontsize=7.5)
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
    return "\n".join(wrap(p, 6.8, 7.5) for p in parts)


def cif_figure(res: CIFResult, *, name: str, title: str, comparison_label: str = "",
               group_labels: dict[str, str] | None = None,
               cause_labels: dict[str, str] | None = None, xlabel: str = "Months",
               at_risk=None) -> Figure:
    """Cumulative incidence per group (colour) and cause (line style: the event of
    interest solid, competing events dashed), Gray's test per cause under the title, and
    the numbers at risk aligned under the time axis when `at_risk` (a `KMResult` of the
    same patients and time, whose at-risk set is the CIF's) is given."""
    cause_labels = cause_labels or {}
    groups = order_levels(res.curves["group"].unique(), group_labels)
    causes = [res.event, *res.competing]
    with matplotlib.rc_context(RC):
        if at_risk is not None:
            fig, ax, tab = curves_and_table(len(groups))
        else:
            fig = new_figure(6.4, 4.6)
            ax, tab = fig.add_subplot(), None
        t_max = float(res.curves["time"].max()) or 1.0
        times = time_ticks(t_max)
        for k, g in enumerate(groups):
            for j, cause in enumerate(causes):
                c = res.curves[(res.curves["group"] == g) & (res.curves["cause"] == cause)]
                t = np.append(c["time"].to_numpy(), t_max)
                f = np.append(c["estimate"].to_numpy(), c["estimate"].iloc[-1])
                ax.step(t, f, where="post", color=color(k), lw=1.6,
                        ls=CAUSE_STYLES[j % len(CAUSE_STYLES)])
        ax.set_ylim(0, 1)
        ax.set_xlim(0, max(times[-1], t_max) * 1.02)
        ax.set_xticks(times)
        ax.set_ylabel("Cumulative incidence")
        ax.set_xlabel(xlabel)
        handles = [Line2D([], [], color=NEUTRAL, lw=1.6, ls=CAUSE_STYLES[j % len(CAUSE_STYLES)],
                          label=cause_labels.get(cause, cause)) for j, cause in enumerate(causes)]
        if groups != ["all"]:
            handles += [Line2D([], [], color=color(k), lw=3,
                               label=group_label(comparison_label, g, group_labels))
                        for k, g in enumerate(groups)]
        tests = "; ".join(f"{cause_labels.get(r['cause'], r['cause'])}: "
                          f"{p_text(r['p_value'], 'gray')}" for r in res.tests.to_dict("records"))
        titles(fig, title)
        legend_above(ax, handles, tests)
        if tab is not None:
            table = at_risk.at_risk_table(times)
            risk_table(tab, times, [("All" if g == "all" else short_group_label(g, group_labels),
                                     color(k), list(table.loc[g])) for k, g in enumerate(groups)])
    return render(fig, name, title)


def cif_risk_set(results, comparison: str, endpoint: str, res: CIFResult):
    """The Kaplan–Meier result whose risk set is the CIF's: same endpoint, same grouping,
    and per group the same n and the same number of events (all causes together). None
    when the plan's survival section has no such curve (no risk table is drawn then)."""
    plan = results.plan
    cr = plan.beyond_paper.competing_risks.endpoints[endpoint]
    spec = plan.survival.endpoints.get(endpoint) if plan.survival else None
    if spec is None or (spec.duration, spec.population) != (cr.duration, cr.population):
        return None
    km = (results.overall.get(endpoint) if comparison == "all"
          else getattr(results.survival.get((comparison, endpoint)), "km", None))
    if km is None:
        return None
    s = res.summary.groupby("group").agg(n=("n", "first"), events=("events", "sum"))
    ours = {g: (int(c.n), int(c.n_events)) for g, c in km.curves.items()}
    theirs = {str(g): (int(r["n"]), int(r["events"])) for g, r in s.iterrows()}
    return km if ours == theirs else None


def build_beyond_figures(results) -> list[Figure]:
    """Forest plots (heterogeneity) and CIF plots (competing risks) of a `PlanResults`."""
    return draw(beyond_figure_jobs(results))


def beyond_figure_jobs(results) -> list:
    """`build_beyond_figures`' figures as jobs not yet drawn (see `analysis.figures.figure_jobs`)."""
    plan, b = results.plan, results.beyond
    jobs: list = []
    if plan.beyond_paper is None:
        return jobs
    h = plan.beyond_paper.heterogeneity
    for (x, ep), res in b.heterogeneity.items():
        jobs.append(partial(
            forest_figure, res, name=f"forest_{ep}_{x}",
            title=f"{ENDPOINT_TITLES.get(ep, ep)}: {_label(plan, x)} by center",
            center_labels=level_labels(plan, h.center) if h else None))
    cr = plan.beyond_paper.competing_risks
    for (comp, ep), res in b.competing.items():
        spec = cr.endpoints[ep]
        lab = _label(plan, comp) if comp != "all" else ""
        causes = ", ".join(spec.labels.get(c, c).lower() for c in [spec.event, *spec.competing])
        jobs.append(partial(
            cif_figure, res, name=f"cif_{ep}_{comp}", at_risk=cif_risk_set(results, comp, ep, res),
            title=f"Cumulative incidence of {causes}" + (f" by {lab}" if lab else ""),
            comparison_label=lab, group_labels=level_labels(plan, comp) if lab else None,
            cause_labels=spec.labels))
    return jobs
