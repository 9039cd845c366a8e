"""The study's figures, drawn with matplotlib (Agg) and returned as bytes, never written.

* `km_figure`: Kaplan–Meier curves (Figs. 2–3) with censoring marks, the number at risk
  in a table aligned under the time axis (`curves_and_table`, shared with the CIF plots)
  and the log-rank p (with the test's name) under the title.
* `response_figure`: Fig. 1-style bars, CR and MRD-negative CR rate per group, with p.
* `kinetics_figure`: Fig. 4-style peak CAR copies per group (log scale), points and the
  median, with p.
* `build_figures(results, df)`: every figure of a `PlanResults`, in report order, ending
  with the proportional-hazards diagnostics of each Cox model (`analysis.figures_zph`);
  `figure_jobs` gives the same figures as jobs not yet drawn, `draw` runs jobs.

Colours, resolution (300 dpi PNG plus SVG), titles and layout come from
`analysis.figure_style`, the one place every figure takes them from. Output is
reproducible byte for byte: fixed SVG hash salt, text as paths, no dates or software
versions in the PNG/SVG metadata, no global rcParams changed.
"""

from __future__ import annotations

from functools import partial

import matplotlib
import numpy as np
import pandas as pd

from analysis.figure_style import (  # noqa: F401  (Figure, RC, render: also the figures API)
    DPI,
    NEUTRAL,
    PALETTE,
    RASTER_ABOVE,
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
from analysis.formatting import format_p  # noqa: F401  (also the figures API)
from analysis.labels import BOOLEAN_LEVELS
from analysis.runner import variable_frame
from analysis.survival import level_name

TEST_NAMES = {"fisher": "Fisher's exact test", "chi2": "Pearson χ² test",
              "logrank": "log-rank test", "mann_whitney": "Mann–Whitney U test",
              "kruskal_wallis": "Kruskal–Wallis test", "cox_wald": "Wald test",
              "cox_lr": "likelihood-ratio test", "cox_zph": "PH test, cox.zph",
              "none": "no test",
              "gray": "Gray's test", "cochran_q": "Cochran's Q test",
              "cox_stratified": "Cox stratified by center, Wald test",
              "logrank_stratified": "log-rank test stratified by center",
              "cox_lr_interaction": "likelihood-ratio test of center × exposure",
              "meta_fixed": "fixed-effect pooling", "meta_dl": "DerSimonian–Laird pooling",
              "meta_reml": "REML pooling", "aalen_johansen": "Aalen–Johansen estimate",
              "fine_gray": "Fine–Gray model, Wald test"}
SHORT_LEVELS = BOOLEAN_LEVELS  # Yes / No: one source, analysis.labels


def p_text(p: float | None, test: str) -> str:
    """'p = 0.342 (Fisher's exact test)' / 'p <0.001 (...)'."""
    f = format_p(p)
    sign = "" if f.startswith("<") else "= "
    return f"p {sign}{f} ({TEST_NAMES.get(test, test)})"


def group_label(comparison_label: str, level: str, labels: dict[str, str] | None = None) -> str:
    """A group's name in a legend: the plan's `level_labels`, else "<grouping>: yes/no", else the level."""
    if labels and level in labels:
        return labels[level]
    if level in ("yes", "no"):
        return f"{comparison_label}: {level}"
    return str(level)


def short_group_label(level: str, labels: dict[str, str] | None = None) -> str:
    """A group's name in a risk table row: the plan's label, else Yes/No, else the level."""
    return (labels or {}).get(level) or SHORT_LEVELS.get(level, str(level))


def level_labels(plan, comparison: str) -> dict[str, str] | None:
    var = plan.variables.get(comparison) if plan is not None else None
    return var.level_labels if var is not None else None


def order_levels(levels, preferred=None) -> list[str]:
    """Groups in the plan's level order (`preferred`), else yes before no, then by name."""
    rank = {v: i for i, v in enumerate(preferred or [])} or {"yes": 0, "no": 1}
    return sorted(levels, key=lambda v: (rank.get(v, len(rank)), str(v)))


def curves_and_table(n_rows: int, width: float = 6.4, plot_height: float = 3.3):
    """A figure with the curves' axes above a number-at-risk axes sharing its x axis."""
    table_height = 0.35 + 0.24 * n_rows
    fig = new_figure(width, plot_height + table_height + 0.9)
    gs = fig.add_gridspec(2, 1, height_ratios=[plot_height, table_height])
    ax = fig.add_subplot(gs[0])
    tab = fig.add_subplot(gs[1], sharex=ax)
    return fig, ax, tab


def km_figure(km, p_value: float | None, test: str, *, name: str, title: str,
              comparison_label: str = "", times=None, xlabel: str = "Months",
              group_labels: dict[str, str] | None = None) -> Figure:
    """Kaplan–Meier curves of a `KMResult` with a number-at-risk table aligned under the
    time axis (same ticks), censoring marks, the legend above the plot and the test's p
    under the title."""
    with matplotlib.rc_context(RC):
        groups = order_levels(km.curves, group_labels)
        fig, ax, tab = curves_and_table(len(groups))
        t_max = max((float(c.timeline.max()) for c in km.curves.values() if len(c.timeline)),
                    default=1.0)
        times = time_ticks(t_max) if times is None else np.asarray(times, dtype=float)
        for k, g in enumerate(groups):
            c = km.curves[g]
            label = f"{group_label(comparison_label, g, group_labels)} (n={c.n}, events={c.n_events})"
            ax.step(c.timeline, c.survival, where="post", color=color(k), lw=1.6, label=label)
            cens = c.censored > 0
            if cens.any():
                ax.plot(c.timeline[cens], c.survival[cens], "|", color=color(k), ms=7, mew=1.2,
                        rasterized=int(cens.sum()) > RASTER_ABOVE)
        ax.set_ylim(-0.02, 1.03)
        ax.set_xlim(0, max(times[-1], t_max) * 1.02)
        ax.set_xticks(times)
        ax.set_ylabel("Survival probability")
        ax.set_xlabel(xlabel)
        titles(fig, title)
        legend_above(ax, title=p_text(p_value, test))
        at_risk = km.at_risk_table(times)
        risk_table(tab, times, [(short_group_label(g, group_labels), color(k),
                                 list(at_risk.loc[g])) for k, g in enumerate(groups)])
    return render(fig, name, title)


def response_figure(summaries: dict[str, pd.DataFrame], tests: dict[str, tuple[float, str]],
                    *, name: str, title: str, comparison_label: str = "",
                    labels: dict[str, str] | None = None,
                    group_labels: dict[str, str] | None = None) -> Figure:
    """Bars of the 'yes' percentage per group for each endpoint (e.g. CR, MRD-neg CR).

    `summaries[endpoint]` is a ProportionResult.summary (group, value, count, n,
    percent); `tests[endpoint]` is (p, test name).
    """
    labels = labels or {}
    endpoints = list(summaries)
    groups = order_levels(dict.fromkeys(g for s in summaries.values() for g in s["group"]), group_labels)
    with matplotlib.rc_context(RC):
        fig = new_figure(6.4, 4.2)
        ax = fig.add_subplot()
        width = 0.8 / max(len(groups), 1)
        for k, g in enumerate(groups):
            xs, hs, notes = [], [], []
            for j, ep in enumerate(endpoints):
                s = summaries[ep]
                rows = s[s["group"] == g]
                yes = rows[rows["value"] == "yes"]
                n = int(rows["n"].iloc[0]) if len(rows) else 0
                count = int(yes["count"].iloc[0]) if len(yes) else 0
                xs.append(j + (k - (len(groups) - 1) / 2) * width)
                hs.append(100.0 * count / n if n else 0.0)
                notes.append(f"{count}/{n}")
            bars = ax.bar(xs, hs, width * 0.92, color=color(k),
                          label=group_label(comparison_label, g, group_labels))
            for bar, note in zip(bars, notes, strict=True):
                ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 1.5, note,
                        ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(endpoints)))
        ax.set_xticklabels([f"{labels.get(ep, ep)}\n{wrap(p_text(*tests[ep]), 6.0 / max(len(endpoints), 1), 8)}"
                            for ep in endpoints], fontsize=8)
        ax.set_ylim(0, 110)
        ax.set_ylabel("Patients (%)")
        titles(fig, title)
        legend_above(ax)
    return render(fig, name, title)


def kinetics_figure(values: pd.DataFrame, p_value: float | None, test: str, *, name: str,
                    title: str, comparison_label: str = "",
                    ylabel: str = "Peak CAR copies/µg gDNA",
                    group_labels: dict[str, str] | None = None) -> Figure:
    """Points per group on a log scale with the median as a bar; `values`: group, value."""
    data = values.dropna()
    data = data[data["value"] > 0]
    groups = order_levels(data["group"].unique(), group_labels)
    rng = np.random.default_rng(0)  # fixed jitter: the figure is reproducible
    with matplotlib.rc_context(RC):
        fig = new_figure(5.2, 4.2)
        ax = fig.add_subplot()
        for k, g in enumerate(groups):
            v = data.loc[data["group"] == g, "value"].to_numpy(dtype=float)
            x = k + rng.uniform(-0.12, 0.12, len(v))
            ax.scatter(x, v, s=18, color=color(k), alpha=0.8, zorder=2,
                       rasterized=len(v) > RASTER_ABOVE)  # a 100k-point SVG is megabytes of markers
            if len(v):
                ax.hlines(np.median(v), k - 0.25, k + 0.25, color=NEUTRAL, lw=1.6, zorder=3)
        ax.set_yscale("log")
        ax.set_xticks(range(len(groups)))
        counts = data["group"].value_counts()
        ax.set_xticklabels([f"{wrap(group_label(comparison_label, g, group_labels), 4.4 / max(len(groups), 1), 8)}"
                            f"\n(n={int(counts[g])})" for g in groups], fontsize=8)
        ax.set_xlim(-0.6, len(groups) - 0.4)
        ax.set_ylabel(ylabel)
        titles(fig, title, p_text(p_value, test) + "; bar: median")
    return render(fig, name, title)


ENDPOINT_TITLES = {"os": "Overall survival", "lfs": "Leukemia-free survival (CR patients)",
                   "cr": "CR", "mrd_neg_cr": "MRD-negative CR\n(of CR patients)",
                   "car_peak": "Peak CAR copies"}


def _label(plan, name: str) -> str:
    """A variable's display name: the plan's label, else the name."""
    var = plan.variables.get(name)
    return (var.label or name) if var is not None else name


def build_figures(results, df: pd.DataFrame) -> list[Figure]:
    """Every figure of a `PlanResults`: response (Fig. 1), KM (Figs. 2–3), kinetics (Fig. 4).

    `df` (analysis_patient) is only needed for the kinetics points, which the result
    objects summarize but do not list.
    """
    return draw(figure_jobs(results, df))


def draw(jobs) -> list[Figure]:
    """Run figure jobs in order (a job may give None: no figure)."""
    return [f for f in (job() for job in jobs) if f is not None]


def figure_jobs(results, df: pd.DataFrame) -> list:
    """`build_figures`' figures as jobs, not yet drawn: callables without arguments that
    each return one Figure (or None), in report order. Cheap to make; the drawing is the
    cost (`draw` runs them, in this process)."""
    plan = results.plan
    jobs: list = []
    if plan.response:
        for comp in plan.response.compare_by:
            eps = [ep for ep in plan.response.endpoints if (comp, ep) in results.response]
            if not eps:
                continue
            summ = {ep: results.response[(comp, ep)].summary for ep in eps}
            tests = {ep: (results.response[(comp, ep)].p_value, results.response[(comp, ep)].test)
                     for ep in eps}
            lab = _label(plan, comp)
            jobs.append(partial(
                response_figure, summ, tests, name=f"response_{comp}", title=f"Response by {lab}",
                comparison_label=lab, labels=ENDPOINT_TITLES, group_labels=level_labels(plan, comp)))
    if plan.survival:
        for ep in plan.survival.endpoints:
            for comp in plan.survival.compare_by:
                sc = results.survival.get((comp, ep))
                if sc is None:
                    continue
                lab = _label(plan, comp)
                jobs.append(partial(
                    km_figure, sc.km, sc.logrank.p_value, sc.logrank.test, name=f"km_{ep}_{comp}",
                    title=f"{ENDPOINT_TITLES.get(ep, ep)} by {lab}", comparison_label=lab,
                    group_labels=level_labels(plan, comp)))
    if plan.kinetics and df is not None:  # no patient points in a federated report
        variables = variable_frame(df, plan)
        for ep, spec in plan.kinetics.endpoints.items():
            for comp in plan.kinetics.compare_by:
                res = results.kinetics.get((comp, ep))
                if res is None:
                    continue
                vals = pd.DataFrame({"group": variables[comp].map(level_name, na_action="ignore"),
                                     "value": pd.to_numeric(df[spec.column], errors="coerce")})
                lab = _label(plan, comp)
                jobs.append(partial(
                    kinetics_figure, vals, res.p_value, res.test, name=f"kinetics_{ep}_{comp}",
                    title=f"{ENDPOINT_TITLES.get(ep, ep)} by {lab}", comparison_label=lab,
                    group_labels=level_labels(plan, comp)))
    if plan.cox:
        from analysis.figures_zph import zph_figure  # imports this module: import here, not at top
        for ep, res in results.cox.items():
            jobs.append(partial(zph_figure, res, name=f"ph_{ep}",
                                title=f"Proportional hazards: {ENDPOINT_TITLES.get(ep, ep)}",
                                term_labels={v: _label(plan, v) for v in plan.variables}))
    return jobs

