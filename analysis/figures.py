"""The study's figures, drawn with matplotlib (Agg) and returned as bytes, never written.

* `km_figure`: Kaplan–Meier curves (Figs. 2–3) with censoring marks, the number at risk
  under the plot and the log-rank p (with the test's name) on it.
* `response_figure`: Fig. 1-style bars, CR and MRD-negative CR rate per group, with p.
* `kinetics_figure`: Fig. 4-style peak CAR copies per group (log scale), points and the
  median, with p.
* `build_figures(results, df)`: every figure of a `PlanResults`, in report order, ending
  with the proportional-hazards diagnostics of each Cox model (`analysis.figures_zph`).

Output is reproducible byte for byte: fixed SVG hash salt, text as paths, no dates or
software versions in the PNG/SVG metadata, no global rcParams changed.
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.formatting import format_p  # noqa: F401  (also the figures API)
from analysis.runner import variable_frame
from analysis.survival import level_name

RC = {"svg.hashsalt": "carpool", "svg.fonttype": "path", "font.size": 9,
      "axes.spines.top": False, "axes.spines.right": False}
COLORS = ["#1f5fa8", "#c8402a", "#3c9a4a", "#8c5fb0", "#d08c1e"]
RASTER_ABOVE = 2000  # draw denser point layers as an embedded bitmap, in PNG and SVG alike
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
SHORT_LEVELS = {"yes": "Yes", "no": "No"}


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


def level_labels(plan, comparison: str) -> dict[str, str] | None:
    var = plan.variables.get(comparison) if plan is not None else None
    return var.level_labels if var is not None else None


@dataclass(frozen=True, eq=False)
class Figure:
    """One figure: `name` is the file stem (e.g. `km_os_crs`)."""

    name: str
    title: str
    png: bytes
    svg: bytes


def render(fig, name: str, title: str) -> Figure:
    """PNG + SVG bytes of a matplotlib figure (closed afterwards)."""
    with matplotlib.rc_context(RC):
        png, svg = io.BytesIO(), io.BytesIO()
        fig.savefig(png, format="png", dpi=110, metadata={"Software": None})
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return Figure(name=name, title=title, png=png.getvalue(), svg=svg.getvalue())


def order_levels(levels, preferred=None) -> list[str]:
    """Groups in the plan's level order (`preferred`), else yes before no, then by name."""
    rank = {v: i for i, v in enumerate(preferred or [])} or {"yes": 0, "no": 1}
    return sorted(levels, key=lambda v: (rank.get(v, len(rank)), str(v)))


def km_figure(km, p_value: float | None, test: str, *, name: str, title: str,
              comparison_label: str = "", times=None, xlabel: str = "Months",
              group_labels: dict[str, str] | None = None) -> Figure:
    """Kaplan–Meier curves of a `KMResult` with a number-at-risk table below."""
    with matplotlib.rc_context(RC):
        fig = plt.figure(figsize=(6.2, 4.6))
        ax = fig.add_axes([0.22, 0.36, 0.74, 0.56])   # room on the left for at-risk labels
        tab = fig.add_axes([0.22, 0.04, 0.74, 0.2])
        groups = order_levels(km.curves, group_labels)
        t_max = max((float(c.timeline.max()) for c in km.curves.values() if len(c.timeline)),
                    default=1.0)
        if times is None:
            step = 12 if t_max > 24 else 6
            times = np.arange(0, t_max + 1e-9, step)
        for k, g in enumerate(groups):
            c = km.curves[g]
            color = COLORS[k % len(COLORS)]
            label = f"{group_label(comparison_label, g, group_labels)} (n={c.n}, events={c.n_events})"
            ax.step(c.timeline, c.survival, where="post", color=color, lw=1.6, label=label)
            cens = c.censored > 0
            if cens.any():
                ax.plot(c.timeline[cens], c.survival[cens], "|", color=color, ms=7, mew=1.2,
                        rasterized=int(cens.sum()) > RASTER_ABOVE)
        ax.set_ylim(-0.02, 1.03)
        ax.set_xlim(0, max(times[-1], t_max) * 1.02)
        ax.set_xticks(times)
        ax.set_ylabel("Probability")
        ax.set_xlabel(xlabel)
        ax.set_title(title, fontsize=10, loc="left")
        ax.legend(loc="lower left", frameon=False, fontsize=8)
        ax.text(0.98, 0.96, p_text(p_value, test), transform=ax.transAxes, ha="right",
                va="top", fontsize=9)
        at_risk = km.at_risk_table(times)
        tab.set_xlim(ax.get_xlim())
        tab.set_ylim(-0.5, len(groups) - 0.5)
        tab.axis("off")
        tab.text(0, len(groups) - 0.3, "Number at risk", fontsize=8, ha="left", va="bottom",
                 transform=tab.transData, fontweight="bold")
        for k, g in enumerate(groups):
            y = len(groups) - 1 - k
            tab.text(-0.03, y - 0.4, textwrap.fill((group_labels or {}).get(g) or SHORT_LEVELS.get(g, g), 16),
                     ha="right", va="center", linespacing=0.9,
                     fontsize=8, color=COLORS[k % len(COLORS)],
                     transform=tab.get_yaxis_transform())
            for t, n in zip(times, at_risk.loc[g], strict=True):
                tab.text(t, y - 0.4, str(int(n)), ha="center", va="center", fontsize=8,
                         color=COLORS[k % len(COLORS)])
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
        fig, ax = plt.subplots(figsize=(6.2, 3.8))
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
            bars = ax.bar(xs, hs, width * 0.92, color=COLORS[k % len(COLORS)],
                          label=group_label(comparison_label, g, group_labels))
            for bar, note in zip(bars, notes, strict=True):
                ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 1.5, note,
                        ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(endpoints)))
        ax.set_xticklabels([f"{labels.get(ep, ep)}\n{p_text(*tests[ep])}" for ep in endpoints],
                           fontsize=8)
        ax.set_ylim(0, 118)
        ax.set_ylabel("Patients (%)")
        ax.set_title(title, fontsize=10, loc="left")
        ax.legend(loc="upper right", frameon=False, fontsize=8, ncol=len(groups))
        fig.tight_layout()
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
        fig, ax = plt.subplots(figsize=(4.8, 3.8))
        for k, g in enumerate(groups):
            v = data.loc[data["group"] == g, "value"].to_numpy(dtype=float)
            x = k + rng.uniform(-0.12, 0.12, len(v))
            ax.scatter(x, v, s=18, color=COLORS[k % len(COLORS)], alpha=0.8, zorder=2,
                       rasterized=len(v) > RASTER_ABOVE)  # a 100k-point SVG is megabytes of markers
            if len(v):
                ax.hlines(np.median(v), k - 0.25, k + 0.25, color="black", lw=1.6, zorder=3)
        ax.set_yscale("log")
        ax.set_xticks(range(len(groups)))
        counts = data["group"].value_counts()
        ax.set_xticklabels([f"{group_label(comparison_label, g, group_labels)}\n(n={int(counts[g])})"
                            for g in groups], fontsize=8)
        ax.set_xlim(-0.6, len(groups) - 0.4)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10, loc="left")
        ax.text(0.98, 0.98, p_text(p_value, test) + "\n— median", transform=ax.transAxes,
                ha="right", va="top", fontsize=8)
        fig.tight_layout()
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
    plan = results.plan
    figures: list[Figure] = []
    if plan.response:
        for comp in plan.response.compare_by:
            eps = [ep for ep in plan.response.endpoints if (comp, ep) in results.response]
            if not eps:
                continue
            summ = {ep: results.response[(comp, ep)].summary for ep in eps}
            tests = {ep: (results.response[(comp, ep)].p_value, results.response[(comp, ep)].test)
                     for ep in eps}
            lab = _label(plan, comp)
            figures.append(response_figure(
                summ, tests, name=f"response_{comp}", title=f"Response by {lab}",
                comparison_label=lab, labels=ENDPOINT_TITLES, group_labels=level_labels(plan, comp)))
    if plan.survival:
        for ep in plan.survival.endpoints:
            for comp in plan.survival.compare_by:
                sc = results.survival.get((comp, ep))
                if sc is None:
                    continue
                lab = _label(plan, comp)
                figures.append(km_figure(
                    sc.km, sc.logrank.p_value, sc.logrank.test, name=f"km_{ep}_{comp}",
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
                figures.append(kinetics_figure(
                    vals, res.p_value, res.test, name=f"kinetics_{ep}_{comp}",
                    title=f"{ENDPOINT_TITLES.get(ep, ep)} by {lab}", comparison_label=lab,
                    group_labels=level_labels(plan, comp)))
    if plan.cox:
        from analysis.figures_zph import zph_figure  # imports this module: import here, not at top
        for ep, res in results.cox.items():
            fig = zph_figure(res, name=f"ph_{ep}",
                             title=f"Proportional hazards: {ENDPOINT_TITLES.get(ep, ep)}",
                             term_labels={v: _label(plan, v) for v in plan.variables})
            if fig is not None:
                figures.append(fig)
    return figures

