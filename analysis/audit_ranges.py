"""Audit rules on Table 1 medians and ranges: subgroups inside their groups, splits
covering the same overall range, overall medians between group medians, n-1 medians.
"""

from __future__ import annotations

import numpy as np

from analysis.audit_context import CONTRADICTION, NAMES, Context, _finding, _label, _subsets, fmt


def _cont_stats(ctx: Context) -> dict:
    """{(comparison, group, endpoint): {stat: row index}} for Table 1 median/min/max."""
    rows = ctx.rows(source="table1", statistic=["median", "min", "max"])
    out: dict = {}
    for i, r in rows.iterrows():
        out.setdefault((r["comparison"], r["group"], r["endpoint"]), {})[r["statistic"]] = i
    return out


def rule_ranges(ctx: Context) -> list[dict]:
    """Subgroup ranges inside their supergroups; every split covers the same overall range;
    the overall median lies between the two medians of every split; n-1 medians."""
    out = []
    st = _cont_stats(ctx)
    b = ctx.bounds
    endpoints = list(dict.fromkeys(k[2] for k in st))
    for ep in endpoints:
        # subset containment and the one-patient-difference median bound
        for a, p, why in _subsets(ctx):
            sa, sp = st.get((*a, ep)), st.get((*p, ep))
            if not sa or not sp:
                continue
            bad = []
            if b(sa["min"])[1] < b(sp["min"])[0] - 1e-9:
                bad.append(f"its minimum {fmt(ctx.pub.loc[sa['min'], 'value'])} is below "
                           f"{_label(p)}'s minimum {fmt(ctx.pub.loc[sp['min'], 'value'])}")
            if b(sa["max"])[0] > b(sp["max"])[1] + 1e-9:
                bad.append(f"its maximum {fmt(ctx.pub.loc[sa['max'], 'value'])} is above "
                           f"{_label(p)}'s maximum {fmt(ctx.pub.loc[sp['max'], 'value'])}")
            rng = (f"{_label(a)} {_cell(ctx, sa)} ⊂ {_label(p)} {_cell(ctx, sp)} ({why})")
            out.append(_finding(
                "subset_range", CONTRADICTION if bad else "consistent",
                list(sa.values()) + list(sp.values()),
                f"{ep}: {rng}" + (": impossible, " + " and ".join(bad) if bad else ""),
                a[0], ep))
            out += _one_less_median(ctx, a, p, sa, sp, ep)
        out += _partition_ranges(ctx, st, ep)
        out += _overall_median(ctx, st, ep)
    return out


def _cell(ctx: Context, s: dict) -> str:
    p = ctx.pub["printed"]
    return f"{p[s['median']]} ({p[s['min']]}–{p[s['max']]})"


def _one_less_median(ctx, a, p, sa, sp, ep) -> list[dict]:
    """If A is B without one patient, A's median is B's middle order statistic(s)."""
    _, na = ctx.group_n(*a)
    _, nb = ctx.group_n(*p)
    if na is None or nb is None or nb - na != 1:
        return []
    b = ctx.bounds
    m, lo_, hi_ = b(sp["median"]), b(sp["min"]), b(sp["max"])
    if int(nb) % 2 == 0:  # median = (x_k + x_k+1)/2; dropping one leaves x_k or x_k+1
        low, high = max(lo_[0], 2 * m[0] - hi_[1]), min(hi_[1], 2 * m[1] - lo_[0])
    else:  # median = x_k+1; dropping one leaves a mean of two neighbours
        low, high = (lo_[0] + m[0]) / 2, (m[1] + hi_[1]) / 2
    ma = b(sa["median"])
    ok = ma[1] >= low - 1e-9 and ma[0] <= high + 1e-9
    msg = (f"{ep}: {_label(a)} (n={int(na)}) is {_label(p)} (n={int(nb)}) without one patient, "
           f"so its median must lie in {fmt(low)}–{fmt(high)} given {_label(p)}'s "
           f"{_cell(ctx, sp)}; printed {fmt(ctx.pub.loc[sa['median'], 'value'])}")
    return [_finding("one_less_median", "consistent" if ok else CONTRADICTION,
                     list(sa.values()) + list(sp.values()), msg, a[0], ep)]


def _partition_ranges(ctx: Context, st: dict, ep: str) -> list[dict]:
    """Each two-column split of the cohort covers the same overall min and max."""
    b, v = ctx.bounds, ctx.pub["value"]
    spans, idx = {}, []
    for comp in dict.fromkeys(k[0] for k in st if k[2] == ep):
        cols = [s for k, s in st.items() if k[0] == comp and k[2] == ep]
        if len(cols) != 2:
            continue
        mins = [b(s["min"]) for s in cols]
        maxs = [b(s["max"]) for s in cols]
        spans[f"{NAMES[comp]} columns"] = (
            (min(x[0] for x in mins), min(x[1] for x in mins)),
            (max(x[0] for x in maxs), max(x[1] for x in maxs)),
            f"{fmt(min(v[s['min']] for s in cols))}–{fmt(max(v[s['max']] for s in cols))}")
        idx += [s["min"] for s in cols] + [s["max"] for s in cols]
    text = ctx.rows(analysis="cohort", comparison="all", endpoint=ep)
    tmin, tmax = text[text["statistic"] == "min"], text[text["statistic"] == "max"]
    if len(tmin) and len(tmax):
        i0, i1 = int(tmin.index[0]), int(tmax.index[0])
        spans[f"text ('{tmin['text'].iloc[0]}')"] = (
            b(i0), b(i1), f"{fmt(v[i0])}–{fmt(v[i1])}")
        idx += [i0, i1]
    if len(spans) < 2:
        return []
    lo = max(s[0][0] for s in spans.values()) <= min(s[0][1] for s in spans.values()) + 1e-9
    hi = max(s[1][0] for s in spans.values()) <= min(s[1][1] for s in spans.values()) + 1e-9
    ok = lo and hi
    msg = (f"{ep}: the overall range is the union of the two columns of every split, so all "
           "must agree: " + "; ".join(f"{k} {s[2]}" for k, s in spans.items()))
    return [_finding("partition_range", "consistent" if ok else CONTRADICTION, idx, msg, "", ep)]


def _overall_median(ctx: Context, st: dict, ep: str) -> list[dict]:
    """The cohort median lies between the two group medians of every two-way split."""
    b, v = ctx.bounds, ctx.pub["value"]
    parts, idx = [], []
    lo, hi = -np.inf, np.inf
    for comp in dict.fromkeys(k[0] for k in st if k[2] == ep):
        meds = [s["median"] for k, s in st.items() if k[0] == comp and k[2] == ep]
        if len(meds) != 2:
            continue
        lo = max(lo, min(b(i)[0] for i in meds))
        hi = min(hi, max(b(i)[1] for i in meds))
        parts.append(f"{NAMES[comp]} {fmt(min(v[meds]))}–{fmt(max(v[meds]))}")
        idx += meds
    text = ctx.rows(analysis="cohort", comparison="all", endpoint=ep, statistic="median")
    for i, r in text.iterrows():
        lo, hi = max(lo, b(i)[0]), min(hi, b(i)[1])
        parts.append(f"text {r['printed']}")
        idx.append(i)
    if len(parts) < 2:
        return []
    ok = lo <= hi + 1e-9
    msg = (f"{ep}: the median of all patients must lie between the two group medians of "
           "every split (assuming no missing values): " + "; ".join(parts)
           + ("" if ok else " — no value lies in all of these intervals"))
    return [_finding("overall_median", "consistent" if ok else CONTRADICTION, idx, msg, "", ep)]
