"""Continuous columns of the twin, fitted to the published medians and ranges.

Each column is filled by `orderstats.solve_column` against the summaries of
Table 1 and the toxicity paragraph of the paper. Summaries that contradict each
other are left out here and listed in sites/twin/README.md ("What cannot hold").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sites.twin.orderstats import solve_column


def _masks(sk: pd.DataFrame) -> dict[str, np.ndarray]:
    crs = sk["has_crs"].to_numpy()
    icans = sk["has_icans"].to_numpy()
    conc = crs & icans
    return {"all": np.ones(len(sk), bool), "crs": crs, "no_crs": ~crs, "icans": icans,
            "no_icans": ~icans, "conc": conc, "no_conc": ~conc}


def _summary(m: dict, group: str, median=None, lo=None, hi=None) -> list[tuple]:
    out = []
    for kind, value in (("median", median), ("min", lo), ("max", hi)):
        if value is not None:
            out.append((kind, m[group], value))
    return out


def _table1(m: dict, rows: list[tuple], mwu_p: float | None) -> list[tuple]:
    targets = []
    for group, med, lo, hi in rows:
        targets += _summary(m, group, med, lo, hi)
    if mwu_p is not None:
        targets.append(("mwu", m["crs"], m["no_crs"], mwu_p))
    return targets


def _specs(sk: pd.DataFrame) -> dict[str, dict]:
    """Per column: the targets and the solver arguments (Table 1 and the toxicity text)."""
    m = _masks(sk)
    relapsed = ~sk["primary_refractory"].to_numpy()
    crs, icans = m["crs"], m["icans"]
    sev_crs = (sk["crs_sev"] == "severe").to_numpy()
    sev_icans = (sk["icans_sev"] == "severe").to_numpy()
    st, toc = sk["steroids"].to_numpy(), sk["tocilizumab"].to_numpy()
    car = sk["has_car_kinetics"].to_numpy()
    tox_codes = sk["tox_group"].map({"none": 0, "other": 1, "grade3plus": 2}).to_numpy()

    def car_p(mask: np.ndarray, p: float) -> tuple:
        return ("mwu", car & mask, car & ~mask, p)

    return {
        "age_years": dict(targets=_table1(m, [
            ("crs", 31, 2, 70), ("no_crs", 26, 2, 66), ("icans", 20, 6, 68),
            ("no_icans", 32, 2, 70), ("conc", 19, 6, 68), ("no_conc", 31, 2, 70),
            ("all", 28, None, None)], 0.735), lo=2, hi=70, decimals=0, log=False),
        "peak_il6_pg_ml": dict(targets=_table1(m, [
            ("crs", 517, 3.1, 27231), ("no_crs", 8.9, 2.4, 481), ("icans", 94, 7.6, 10952.9),
            ("no_icans", 255, 2.4, 27231), ("conc", None, 12, 10952.9)], 0.0005),
            lo=2.4, hi=27231, decimals=1),
        "peak_ferritin_ng_ml": dict(targets=_table1(m, [
            ("crs", 2781, 153, 76301), ("no_crs", 1459.5, 106, 67385),
            ("icans", 9987, 788, 45323), ("no_icans", 2000, 106, 76301),
            ("conc", 9987, 788, 45323), ("no_conc", 2000, 106, 76301)], 0.141),
            lo=106, hi=76301, decimals=1),
        "prior_lines": dict(targets=_table1(m, [
            ("crs", 3.5, 1, 13), ("no_crs", 4, 0, 7), ("icans", 2, 1, 6),
            ("no_icans", 4, 0, 13), ("conc", 2, 1, 6), ("no_conc", 4, None, 13)], 0.510),
            lo=0, hi=13, decimals=0, log=False),
        "n_relapses": dict(targets=_table1(m, [
            ("crs", 1, None, 4), ("no_crs", 2, None, 4), ("icans", 1, None, 2),
            ("no_icans", 1, None, 4), ("conc", 1, None, 2), ("no_conc", 1, None, 4)], 0.056),
            lo=1, hi=4, decimals=0, log=False, active=relapsed, fill=0.0),
        "bm_blasts_pct": dict(targets=_table1(m, [
            ("crs", 23.75, 0, 92), ("no_crs", 5.15, 0, 95), ("icans", None, 0, 80),
            ("conc", None, 8, 80)], 0.445), lo=0, hi=95, decimals=2, log=False),
        "dose_1e6_per_kg": dict(targets=_table1(m, [
            ("crs", 1.2, 0.4, 4.3), ("no_crs", 1.0, 0.5, 3), ("icans", 1, 0.9, 4),
            ("no_icans", 1, 0.4, 4.3), ("conc", 1, 1, 4), ("no_conc", 1, None, None)], 0.025),
            lo=0.4, hi=4.3, decimals=1),
        "crs_onset_day": dict(targets=[
            ("median", crs, 5), ("min", crs, 1), ("max", crs, 14), ("median", sev_crs, 5),
            ("min", sev_crs, 1), ("max", sev_crs, 13)], lo=1, hi=14, decimals=0, active=crs),
        "icans_onset_day": dict(targets=[
            ("median", icans, 8), ("min", icans, 4), ("max", icans, 19),
            ("median", sev_icans, 7), ("min", sev_icans, 5), ("max", sev_icans, 19)],
            lo=4, hi=19, decimals=0, active=icans, after=("crs_onset_day", crs & icans, 2)),
        "steroid_start_day": dict(targets=[("median", st, 8), ("min", st, 3), ("max", st, 14)],
                                  lo=3, hi=14, decimals=0, active=st,
                                  after=("crs_onset_day", st, 0)),
        "steroid_days": dict(targets=[("median", st, 5), ("min", st, 1), ("max", st, 20)],
                             lo=1, hi=20, decimals=0, active=st),
        "steroid_dex_equiv_mg": dict(targets=[
            ("median", st, 115), ("min", st, 7.5), ("max", st, 956)],
            lo=7.5, hi=956, decimals=1, active=st),
        "toci_start_day": dict(targets=[("median", toc, 7), ("min", toc, 2), ("max", toc, 15)],
                               lo=2, hi=15, decimals=0, active=toc,
                               after=("crs_onset_day", toc, 0)),
        "toci_days": dict(targets=[("median", toc, 1), ("min", toc, 1), ("max", toc, 2)],
                          lo=1, hi=2, decimals=0, log=False, active=toc),
        # Tocilizumab comes in 40 mg steps here (80..1280 mg); solved in units of 40 mg.
        "toci_40mg_units": dict(targets=[("median", toc, 12), ("min", toc, 2), ("max", toc, 32)],
                                lo=2, hi=32, decimals=0, active=toc),
        "peak_car_copies": dict(targets=[
            car_p(crs, 0.205), car_p(icans, 0.799), car_p(crs & icans, 0.799),
            car_p(toc, 0.535), car_p(st, 0.732), ("kruskal", car, tox_codes, 0.281)],
            lo=1e3, hi=2e5, decimals=0, active=car, soft_iter=8000),
    }


def solve_one(sk: pd.DataFrame, name: str, seed: int, subseed: int, done: pd.DataFrame,
              n_iter: int = 20000) -> np.ndarray:
    """One fitted column; `done` holds the columns solved before it (for ordering)."""
    specs = _specs(sk)
    spec = dict(specs[name])
    rng = np.random.default_rng([seed, list(specs).index(name), subseed])
    after = spec.pop("after", None)
    if after is not None:
        ref = done[after[0]].fillna(-1).to_numpy()
        mask, slack = after[1], after[2]
        spec["penalty"] = (lambda x: 0.5 * max(0, int(np.sum(x[mask] < ref[mask])) - slack))
    return solve_column(rng, len(sk), n_iter=n_iter, **spec)


def solve_all(sk: pd.DataFrame, seed: int, subseeds: dict[str, int] | None = None,
              n_iter: int = 20000) -> pd.DataFrame:
    """Every fitted column; `subseeds` (from calibration.yml) picks runs known to converge."""
    subseeds = subseeds or {}
    out = pd.DataFrame(index=sk.index)
    for name in _specs(sk):
        out[name] = solve_one(sk, name, seed, subseeds.get(name, 0), out, n_iter)
    return finish(out)


def finish(out: pd.DataFrame) -> pd.DataFrame:
    """Unit conversions and integer types of the solved columns."""
    out = out.copy()
    out["toci_mg"] = out.pop("toci_40mg_units") * 40.0
    for col in ("age_years", "prior_lines", "n_relapses"):
        out[col] = out[col].astype(int)
    return out


