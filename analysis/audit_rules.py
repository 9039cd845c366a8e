"""The audit's rules: each tests published numbers against the paper's *other* numbers.

Every rule takes a `Context` (the published table plus the subset relations between
Table 1 columns and endpoint metadata) and returns findings: dicts with rule, status
(consistent, within tolerance, contradiction in the paper), comparison, endpoint, rows
(indices into the published table) and a message a reader of the paper understands.
"Contradiction" means impossible given the other printed numbers after allowing for the
printed rounding; nothing here names a particular number of the paper.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.audit_context import (  # noqa: F401  (some re-exported as the audit API)
    ALPHA,
    CONTRADICTION,
    FLAG_COMPARISON,
    KEYS,
    NAMES,
    Context,
    _finding,
    _label,
    _p_status,
    _subsets,
    fmt,
    half_unit,
)
from analysis.audit_ranges import _cell, _cont_stats, rule_ranges
from analysis.formatting import format_p


def rule_percent_vs_count(ctx: Context) -> list[dict]:
    """A printed 'n (x%)' must have x = 100 n / N at the printed precision."""
    out = []
    rows = ctx.pub[(ctx.pub["statistic"] == "percent") & ctx.pub["n"].notna()
                   & ctx.pub["denominator"].notna()]
    for i, r in rows.iterrows():
        true = 100.0 * r["n"] / r["denominator"]
        status = _p_status(ctx, i, true)
        n, d, shown = int(r["n"]), int(r["denominator"]), r["printed"]
        where = f"{r['source']}: '{r['text']}'"
        if status == "consistent":
            msg = f"{where}: {n}/{d} = {true:.2f}%"
        elif status == "within tolerance":
            msg = (f"{where}: {n}/{d} = {true:.3f}%, which rounds to "
                   f"{round(true, len(shown.split('.')[-1]) if '.' in shown else 0)}%; "
                   f"the paper truncated it to {shown}%")
        else:
            msg = (f"{where}: {n} of {d} patients is {true:.1f}%, not {shown}% "
                   f"({shown}% of {d} would be {r['value'] * d / 100:.1f} patients)")
        out.append(_finding("percent_vs_count", status, [i], msg, r["comparison"],
                            r["endpoint"] or r["level"]))
    return out


def _counts(ctx: Context, comparison: str, endpoint: str) -> dict:
    """{(group, level): (row index, count)} from Table 1's 'n (%)' cells."""
    rows = ctx.rows(source="table1", comparison=comparison, endpoint=endpoint,
                    statistic="percent")
    return {(r["group"], r["level"]): (i, float(r["n"])) for i, r in rows.iterrows()}


def rule_group_sizes(ctx: Context) -> list[dict]:
    """Columns add up to the cohort; levels add up to the column; totals agree across splits."""
    out = []
    i_n, total = ctx.cohort_n()
    t1 = ctx.rows(source="table1")
    for comp in dict.fromkeys(t1["comparison"]):
        sizes = ctx.rows(source="table1", comparison=comp, statistic="n", endpoint="")
        s = float(sizes["value"].sum())
        parts = " + ".join(f"{int(v)} ({g})" for g, v in zip(sizes["group"], sizes["value"],
                                                                strict=True))
        ok = s == total
        out.append(_finding(
            "group_sizes", "consistent" if ok else CONTRADICTION, list(sizes.index) + [i_n],
            f"Table 1 {NAMES.get(comp, comp)} columns: {parts} = {int(s)}"
            + ("" if ok else f", but {int(total)} patients were enrolled"), comp))
        for ep in dict.fromkeys(ctx.rows(source="table1", comparison=comp,
                                         statistic="percent")["endpoint"]):
            cells = _counts(ctx, comp, ep)
            for g in dict.fromkeys(k[0] for k in cells):
                gi, gn = ctx.group_n(comp, g)
                members = {lv: c for (gg, lv), c in cells.items() if gg == g}
                s = sum(c for _, c in members.values())
                ok = s == gn
                out.append(_finding(
                    "column_total", "consistent" if ok else CONTRADICTION,
                    [i for i, _ in members.values()] + [gi],
                    f"Table 1 {ep}, {NAMES.get(comp, comp)} {g}: "
                    + " + ".join(f"{int(c)} {lv}" for lv, (_, c) in members.items())
                    + f" = {int(s)}" + ("" if ok else f", but the column has n = {int(gn)}"),
                    comp, ep))
    out += _marginal_totals(ctx)
    out += _subset_counts(ctx)
    return out


def _marginal_totals(ctx: Context) -> list[dict]:
    """The number of, say, men is the same whichever way Table 1 splits the cohort."""
    out = []
    t1 = ctx.rows(source="table1", statistic="percent")
    for (ep, level), rows in t1.groupby(["endpoint", "level"], sort=False):
        totals = rows.groupby("comparison", sort=False)["n"].sum()
        idx = list(rows.index)
        text = ctx.rows(analysis="cohort", comparison="all", endpoint=ep, level=level)
        claims = {f"{NAMES.get(c, c)} split": v for c, v in totals.items()}
        for i, r in text.iterrows():
            claims[f"text ('{r['text']}')"] = r["n"] if pd.notna(r["n"]) else r["value"]
            idx.append(i)
        ok = len(set(claims.values())) == 1
        out.append(_finding(
            "marginal_total", "consistent" if ok else CONTRADICTION, idx,
            f"{ep} = {level}: total " + ", ".join(f"{int(v)} by the {k}"
                                                  for k, v in claims.items()), "", ep))
    for flag, comp in FLAG_COMPARISON.items():  # '76 (81.7%) developed CRS' vs the header
        text = ctx.rows(analysis="cohort", comparison="all", endpoint=flag, level="yes")
        gi, gn = ctx.group_n(comp, "yes")
        for i, r in text.iterrows():
            ok = float(r["n"]) == gn
            out.append(_finding(
                "marginal_total", "consistent" if ok else CONTRADICTION, [i, gi],
                f"text '{r['text']}' vs Table 1 {NAMES[comp]} yes column n = {int(gn)}",
                comp, flag))
    return out


def _subset_counts(ctx: Context) -> list[dict]:
    """A ⊂ B: count(A, level) <= count(B, level) <= count(A, level) + |B| - |A|."""
    out = []
    for a, b, why in _subsets(ctx):
        ai, an = ctx.group_n(*a)
        bi, bn = ctx.group_n(*b)
        if an is None or bn is None:
            continue
        if an > bn:
            out.append(_finding("subset_counts", CONTRADICTION, [ai, bi],
                                f"{_label(a)} (n={int(an)}) has more patients than "
                                f"{_label(b)} (n={int(bn)}), yet {why}", a[0]))
            continue
        eps = set(ctx.rows(source="table1", comparison=a[0], statistic="percent")["endpoint"])
        for ep in sorted(eps):
            ca, cb = _counts(ctx, a[0], ep), _counts(ctx, b[0], ep)
            for (g, level), (ia, na) in ca.items():
                if g != a[1] or (b[1], level) not in cb:
                    continue
                ib, nb = cb[(b[1], level)]
                ok = na <= nb <= na + (bn - an)
                msg = (f"{ep} = {level}: {int(na)} in {_label(a)} and {int(nb)} in {_label(b)}"
                       f"; {why}, and the groups differ by {int(bn - an)} patient(s)")
                if not ok:
                    msg += ", so these counts cannot both hold"
                out.append(_finding("subset_counts", "consistent" if ok else CONTRADICTION,
                                    [ia, ib, ai, bi], msg, a[0], ep))
    return out


def _crosstab_p(table: np.ndarray) -> dict[str, float]:
    from scipy.stats import chi2_contingency, fisher_exact
    out = {"Fisher's exact": float(fisher_exact(table)[1])}
    if (table.sum(axis=0) > 0).all() and (table.sum(axis=1) > 0).all():
        out["Pearson chi-square"] = float(chi2_contingency(table, correction=False)[1])
    return out


def _table_2x2(ctx: Context, comp: str, ep: str):
    cells = _counts(ctx, comp, ep)
    groups = list(dict.fromkeys(g for g, _ in cells))
    levels = list(dict.fromkeys(lv for _, lv in cells))
    if len(groups) != 2 or len(levels) != 2 or len(cells) != 4:
        return None
    t = np.array([[cells[(g, lv)][1] for lv in levels] for g in groups])
    text = " vs ".join(f"{'/'.join(str(int(x)) for x in t[k])} ({groups[k]})"
                       for k in range(2))
    return t, [cells[(g, lv)][0] for g in groups for lv in levels], text, "/".join(levels)


def rule_p_vs_crosstab(ctx: Context) -> list[dict]:
    """Table 1's categorical p: recomputed (Pearson, no continuity correction; Fisher)."""
    out = []
    prow = ctx.rows(source="table1", statistic="p_value")
    for i, r in prow.iterrows():
        comp, ep = r["comparison"], r["endpoint"]
        tab = _table_2x2(ctx, comp, ep)
        if tab is None:
            continue
        t, cells, text, levels = tab
        ps = _crosstab_p(t)
        status_by = {name: _p_status(ctx, i, p) for name, p in ps.items()}
        best = min(status_by.values(), key=["consistent", "within tolerance",
                                            CONTRADICTION].index)
        computed = ", ".join(f"{k} p = {format_p(v)} ({v:.4f})" for k, v in ps.items())
        shown = ("<" if r["relation"] == "<" else "") + r["printed"]
        head = (f"Table 1, {ep} by {NAMES[comp]}: printed p = {shown}; the printed "
                f"cross-tab {levels} {text} gives {computed}")
        if best == CONTRADICTION:
            others = []
            for other in dict.fromkeys(ctx.rows(source="table1", endpoint=ep,
                                                statistic="percent")["comparison"]):
                o = _table_2x2(ctx, other, ep) if other != comp else None
                if o is None:
                    continue
                for name, p in _crosstab_p(o[0]).items():
                    if _p_status(ctx, i, p) == "consistent":
                        others.append(f"{shown} is the {name} p of the {NAMES[other]} column's "
                                      f"cross-tab ({o[2]}): copied from the wrong column?")
            head += ". No test gives the printed value" + (
                "; " + "; ".join(others) if others else "")
        else:
            used = [k for k, s in status_by.items() if s == best]
            head += f". The printed p is the {' / '.join(used)} p" + (
                " truncated rather than rounded" if best == "within tolerance" else "")
        out.append(_finding("p_vs_crosstab", best, [i] + cells, head, comp, ep))
    return out


def rule_response_feasibility(ctx: Context) -> list[dict]:
    """Fig. 1 CR p-values: does any split of the non-responders give the printed p?"""
    out = []
    cr = ctx.rows(analysis="response", comparison="all", endpoint="cr", statistic="percent")
    if cr.empty:
        return out
    i_cr, n_cr, total = int(cr.index[0]), float(cr["n"].iloc[0]), float(cr["denominator"].iloc[0])
    nr = int(total - n_cr)
    for i, r in ctx.rows(analysis="response", endpoint="cr", statistic="p_value").iterrows():
        comp = r["comparison"]
        gi, n_yes = ctx.group_n(comp, "yes")
        src = [gi]
        if n_yes is None:
            text = ctx.rows(analysis="cohort", comparison="all", endpoint=comp, level="yes",
                            statistic="percent")
            if text.empty:
                continue
            n_yes, src = float(text["n"].iloc[0]), list(text.index)
        n_yes, n_no = int(n_yes), int(total - n_yes)
        fits = []
        for k in range(max(0, nr - n_no), min(nr, n_yes) + 1):
            t = np.array([[n_yes - k, k], [n_no - (nr - k), nr - k]])
            for name, p in _crosstab_p(t).items():
                if _p_status(ctx, i, p) != CONTRADICTION:
                    fits.append(f"{k} of the {nr} non-responders in the {NAMES[comp]} group "
                                f"({name} p = {p:.3f})")
        base = (f"CR by {NAMES[comp]}: printed p = {r['printed']}; groups of {n_yes} and "
                f"{n_no}, {int(n_cr)} CR / {nr} not")
        status = "consistent" if fits else CONTRADICTION
        msg = base + (": fits if " + " or ".join(fits) if fits else
                      ": no split of the non-responders gives this p with either test")
        out.append(_finding("response_feasibility", status, [i, i_cr] + src, msg, comp, "cr"))
    return out

def rule_eligibility(ctx: Context) -> list[dict]:
    """A stated eligibility bound ('less than 70 years of age') against the printed maxima."""
    out = []
    for i, r in ctx.rows(statistic="eligibility_max").iterrows():
        maxima = ctx.pub[(ctx.pub["endpoint"] == r["endpoint"]) & (ctx.pub["statistic"] == "max")]
        strict = r["relation"] == "<"
        bad = [j for j in maxima.index
               if (ctx.bounds(j)[0] >= r["value"] if strict else ctx.bounds(j)[0] > r["value"])]
        where = sorted({"the text" if m["source"] == "text" else
                        f"Table 1 ({NAMES.get(m['comparison'], m['comparison'])} {m['group']})"
                        for _, m in maxima.loc[bad].iterrows()})
        msg = (f"'{r['text']}', yet the oldest patient is {fmt(maxima.loc[bad, 'value'].max())} "
               f"in " + ", ".join(where)) if bad else f"'{r['text']}': all printed maxima fit"
        out.append(_finding("eligibility", CONTRADICTION if bad else "consistent",
                            [i] + bad, msg, "", r["endpoint"]))
    return out


def rule_refractory_relapses(ctx: Context) -> list[dict]:
    """The paper defines relapse as blasts reappearing *after CR*; primary-refractory
    patients never reached CR, so a column holding any has 0 as its minimum relapse count."""
    out = []
    st = _cont_stats(ctx)
    for (comp, g, ep), s in st.items():
        if ep != "n_relapses":
            continue
        cells = _counts(ctx, comp, "disease_status")
        if (g, "primary_refractory") not in cells:
            continue
        ic, k = cells[(g, "primary_refractory")]
        mn = ctx.pub.loc[s["min"], "value"]
        bad = k > 0 and mn > 0
        msg = (f"{_label((comp, g))}: {int(k)} primary-refractory patient(s) (never in CR, so "
               f"0 relapses by the paper's definition of relapse) and number of relapses "
               f"{_cell(ctx, s)}")
        if bad:
            msg += f": the minimum cannot be {fmt(mn)}"
        out.append(_finding("refractory_relapses", CONTRADICTION if bad else "consistent",
                            [ic, s["min"]], msg, comp, ep))
    return out


def rule_significance_claims(ctx: Context) -> list[dict]:
    """'No significant difference' in the text against the printed p (alpha 0.05)."""
    out = []
    for i, r in ctx.rows(statistic="significance_claim").iterrows():
        p = ctx.rows(source="table1", analysis=r["analysis"], comparison=r["comparison"],
                     endpoint=r["endpoint"], statistic="p_value")
        if p.empty:
            continue
        j = int(p.index[0])
        plo, phi = ctx.bounds(j)
        says = "significant" if r["value"] == 1 else "not significant"
        bad = (r["value"] == 1 and plo >= ALPHA) or (r["value"] == 0 and phi < ALPHA)
        shown = ("<" if p["relation"].iloc[0] == "<" else "") + p["printed"].iloc[0]
        msg = (f"{r['endpoint']} by {NAMES[r['comparison']]}: the text says {says} "
               f"('{r['text']}'); Table 1 prints p = {shown}")
        if bad:
            msg += f", which is {'not ' if r['value'] == 1 else ''}below {ALPHA}"
        out.append(_finding("significance_claim", CONTRADICTION if bad else "consistent",
                            [i, j], msg, r["comparison"], r["endpoint"]))
    return out


def rule_same_number_twice(ctx: Context) -> list[dict]:
    """A number printed in two places (text and table) must agree."""
    out = []
    pub = ctx.pub[ctx.pub["statistic"] != "significance_claim"]
    for key, rows in pub.groupby(KEYS, sort=False):
        if rows["source"].nunique() < 2:
            continue
        ivs = {i: ctx.bounds(i) for i in rows.index}
        lo, hi = max(x[0] for x in ivs.values()), min(x[1] for x in ivs.values())
        shown = "; ".join(f"{r['source']} {'<' if r['relation'] == '<' else ''}{r['printed']}"
                          for _, r in rows.iterrows())
        if lo < hi - 1e-12:
            status, extra = "consistent", ""
        elif lo <= hi + 1e-12:
            status = "within tolerance"
            extra = ": both hold only if the unrounded value sits exactly at the boundary"
        else:
            status, extra = CONTRADICTION, ": these cannot both be true"
        if status == "consistent" and (rows["relation"] == "<").any():
            extra = (": compatible only because the table's value is rounded (the true p must "
                     "be just below the bound)") if rows["relation"].nunique() > 1 else ""
            status = "within tolerance" if extra else status
        out.append(_finding("same_number_twice", status, list(rows.index),
                            f"{key[0]} {key[2]} {key[5] or key[1]} {key[6]} printed twice: "
                            f"{shown}{extra}", key[1], key[2]))
    return out


def rule_cox_ci(ctx: Context) -> list[dict]:
    """Wald Cox output: HR = geometric mean of its CI, and p = 2Φ(-|log HR| / SE)."""
    from scipy.stats import norm
    out = []
    cox = ctx.rows(analysis="cox", statistic=["hr", "hr_lower", "hr_upper", "p_value"])
    z = float(norm.ppf(0.975))
    for (src, ep, term), rows in cox.groupby(["source", "endpoint", "term"], sort=False):
        s = dict(zip(rows["statistic"], rows.index, strict=True))
        if set(s) != {"hr", "hr_lower", "hr_upper", "p_value"}:
            continue
        v = ctx.pub["value"]
        hr, lo, hi = v[s["hr"]], v[s["hr_lower"]], v[s["hr_upper"]]
        geo = float(np.sqrt(lo * hi))
        h = max(half_unit(ctx.pub.loc[s[k], "printed"]) for k in ("hr", "hr_lower", "hr_upper"))
        geo_rng = (np.sqrt((lo - h) * (hi - h)), np.sqrt((lo + h) * (hi + h)))
        ok_hr = geo_rng[0] - h <= hr <= geo_rng[1] + h
        ps = [2 * norm.sf(abs(np.log(hh)) / ((np.log(uu) - np.log(ll)) / (2 * z)))
              for hh in (hr - h, hr + h) for ll in (lo - h, lo + h) for uu in (hi - h, hi + h)]
        plo, phi = ctx.bounds(s["p_value"])
        ok_p = min(ps) <= phi + 1e-9 and max(ps) >= plo - 1e-9
        p_mid = 2 * norm.sf(abs(np.log(hr)) / ((np.log(hi) - np.log(lo)) / (2 * z)))
        status = "consistent" if ok_hr and ok_p else (
            "within tolerance" if abs(p_mid - v[s["p_value"]]) < 0.01
            and abs(geo - hr) < 0.01 * hr else CONTRADICTION)
        msg = (f"{src} {ep.upper()} {term}: HR {fmt(hr)} ({fmt(lo)}–{fmt(hi)}), p = "
               f"{ctx.pub.loc[s['p_value'], 'printed']}; the CI implies HR {geo:.3f} and Wald "
               f"p {p_mid:.3f}")
        out.append(_finding("cox_ci", status, list(s.values()), msg, "", ep))
    return out


def rule_followup_ci(ctx: Context) -> list[dict]:
    """Shape of the follow-up CI: symmetric means SPSS's median ± 1.96·SE, not R's."""
    rows = ctx.rows(analysis="followup", statistic=["median", "lower", "upper"])
    s = dict(zip(rows["statistic"], rows.index, strict=True))
    if set(s) != {"median", "lower", "upper"}:
        return []
    v = ctx.pub["value"]
    m, lo, hi = v[s["median"]], v[s["lower"]], v[s["upper"]]
    sym = abs((m - lo) - (hi - m)) <= 0.1 + 1e-9
    ok = lo <= m <= hi
    msg = (f"median follow-up {fmt(m)} ({fmt(lo)}–{fmt(hi)}): the median lies in its CI"
           + (f"; the CI is symmetric ({fmt(m)} ± {fmt(m - lo)}), i.e. SPSS's median ± 1.96·SE;"
              " R's survfit reads the CI off the curve's confidence band, so a recomputed CI "
              "will be asymmetric" if sym else ""))
    return [_finding("followup_ci", "consistent" if ok else CONTRADICTION, list(s.values()),
                     msg, "all", "followup")]


RULES = [rule_percent_vs_count, rule_group_sizes, rule_p_vs_crosstab, rule_response_feasibility,
         rule_ranges, rule_eligibility, rule_refractory_relapses, rule_significance_claims,
         rule_same_number_twice, rule_cox_ci, rule_followup_ci]


def run_rules(ctx: Context, rules=None) -> pd.DataFrame:
    """All findings, one row each (rule, status, comparison, endpoint, rows, message)."""
    found = [f for rule in (RULES if rules is None else rules) for f in rule(ctx)]
    for f in found:  # a reader must know when a finding rests on a noisy OCR reading
        if f["status"] == CONTRADICTION:
            f["message"] += _ocr_caveat(ctx, f["rows"])
    cols = ["rule", "status", "comparison", "endpoint", "rows", "message"]
    return pd.DataFrame(found, columns=cols)


def _ocr_caveat(ctx: Context, rows: list[int]) -> str:
    """Name the interpreted OCR readings (rows with an OCR text *and* a note) a finding uses."""
    pub = ctx.pub.loc[rows]
    if "ocr_text" not in pub or "note" not in pub:
        return ""
    noisy = pub[(pub["ocr_text"].astype(str) != "") & (pub["note"].astype(str) != "")]
    notes = dict.fromkeys(f"'{r['ocr_text']}': {r['note']}" for _, r in noisy.iterrows())
    return f" [rests on an interpreted OCR reading: {'; '.join(notes)}]" if notes else ""
