"""Seeded search that tunes what counts cannot fix: survival times and sub-seeds.

Run `python -m sites.twin.calibrate` to redo the calibration; it rewrites
sites/twin/calibration.yml and sites/twin/truth.csv. Two searches:

1. Per fitted column (sites.twin.measures), the first sub-seed whose solver run
   meets every exact published summary, so `draw_truth` converges quickly.
2. Survival: infusion dates and death / relapse / last-contact days, by simulated
   annealing from the plain seeded draw, scoring all survival targets at once
   (log-rank p-values, Cox hazard ratios, reverse-KM median follow-up). The
   counts, groups and covariates stay fixed; only times move.

The search is bounded (a fixed number of steps) and seeded, so a rerun gives the
same result. Targets are the published numbers (see sites/twin/README.md).
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import yaml

from sites.twin import fastsurv
from sites.twin.cohort import (
    CALIBRATION_YML,
    CUTOFF,
    DEFAULT_SEED,
    FIRST_INFUSION,
    LAST_INFUSION,
    TRUTH_CSV,
    assemble,
    base_table,
)
from sites.twin.measures import _specs, solve_one
from sites.twin.orderstats import soft_miss, total_miss
from sites.twin.structure import skeleton
from sites.twin.survival_defs import DAYS_PER_MONTH

GROUPINGS = ["crs", "icans", "concurrent", "tox_group", "tocilizumab", "steroids"]
LOGRANK_P = {"os": dict(zip(GROUPINGS, [0.677, 0.326, 0.502, 0.99, 0.773, 0.099], strict=True)),
             "lfs": dict(zip(GROUPINGS, [0.869, 0.276, 0.456, 0.85, 0.985, 0.176], strict=True))}
COX_TERMS = ["bm_blasts_ge20", "steroids", "tocilizumab", "tox_grade3plus", "tox_other"]
COX_HR = {"os": dict(zip(COX_TERMS, [0.890, 0.547, 1.031, 2.021, 1.379], strict=True)),
          "lfs": dict(zip(COX_TERMS, [1.441, 0.698, 1.207, 0.785, 0.788], strict=True))}
FOLLOW_UP_MONTHS = 38.3


def design(base: pd.DataFrame) -> dict[str, np.ndarray]:
    """Fixed per-patient group codes and Cox covariates."""
    crs, icans = base["crs_grade"].to_numpy() > 0, base["icans_grade"].to_numpy() > 0
    tox = base["tox_group"].to_numpy()
    codes = {"crs": crs, "icans": icans, "concurrent": crs & icans,
             "tox_group": np.select([tox == "none", tox == "other"], [0, 1], 2),
             "tocilizumab": base["tocilizumab"].to_numpy(bool),
             "steroids": base["steroids"].to_numpy(bool)}
    x = np.c_[base["bm_blasts_pct"].to_numpy() >= 20, codes["steroids"], codes["tocilizumab"],
              tox == "grade3plus", tox == "other"].astype(float)
    return {"codes": {k: np.asarray(v).astype(int) for k, v in codes.items()}, "x": x,
            "cr": (base["response"] == "CR").to_numpy(),
            "response_day": base["response_day"].to_numpy(int)}


def endpoints(d: dict, death: np.ndarray, relapse: np.ndarray, last: np.ndarray) -> dict:
    """OS over all patients and LFS from the CR date over CR patients (days)."""
    os_event = death >= 0
    os_time = np.where(os_event, death, last)
    cr = d["cr"]
    lfs_end = np.where(relapse >= 0, relapse, os_time)
    lfs_event = (relapse >= 0) | os_event
    return {"os": (os_time, os_event, np.ones(len(death), bool)),
            "lfs": ((lfs_end - d["response_day"])[cr], lfs_event[cr], cr)}


def scores(d: dict, death: np.ndarray, relapse: np.ndarray, last: np.ndarray,
           beta: dict | None = None) -> dict[str, float]:
    """Every calibrated statistic, computed with the fast implementations."""
    ep = endpoints(d, death, relapse, last)
    out: dict[str, float] = {}
    for name, (t, e, keep) in ep.items():
        for g in GROUPINGS:
            out[f"{name}_logrank_{g}"] = fastsurv.logrank_p(t, e, d["codes"][g][keep])
        b = fastsurv.cox_hr(d["x"][keep], t, e, None if beta is None else beta.get(name))
        if beta is not None:
            beta[name] = b
        for term, hr in zip(COX_TERMS, np.exp(b), strict=True):
            out[f"{name}_hr_{term}"] = float(hr)
    t, e, _ = ep["os"]
    out["follow_up_months"] = fastsurv.km_median(t, ~e) / DAYS_PER_MONTH
    return out


def targets() -> dict[str, float]:
    out = {f"{k}_logrank_{g}": p for k, ps in LOGRANK_P.items() for g, p in ps.items()}
    out |= {f"{k}_hr_{t}": hr for k, hrs in COX_HR.items() for t, hr in hrs.items()}
    out["follow_up_months"] = FOLLOW_UP_MONTHS
    return out


def z_scores(got: dict[str, float]) -> dict[str, float]:
    """Distance to each target in units of its tolerance (|z| <= 1 passes)."""
    z = {}
    for key, want in targets().items():
        if "_hr_" in key:
            z[key] = math.log(got[key] / want) / math.log(1.1)
        elif key == "follow_up_months":
            z[key] = (got[key] - want) / 1.0
        else:
            z[key] = (got[key] - want) / 0.05
    return z


def _loss(z: dict[str, float], hinge: float = 0.6) -> float:
    """Squared distances, plus a steep extra cost beyond `hinge` tolerances."""
    return sum(v * v + 10 * max(0.0, abs(v) - hinge) ** 2 for v in z.values())


def _valid(d: dict, i: int, admin: int, death: int, rel: int, last: int) -> bool:
    rd = d["response_day"][i]
    end = death if death >= 0 else last
    if not (rd < end <= admin) or (death >= 0 and last != death):
        return False
    if not d["cr"][i]:
        return rel < 0 and (death >= 0 and death <= 730 or death < 0 and last < 730)
    return rel < 0 or rd < rel < end


def anneal(d: dict, start: pd.DataFrame, seed: int, n_steps: int = 40000, t0: float = 2.0,
           hinge: float = 0.6, verbose: bool = False) -> pd.DataFrame:
    """Simulated annealing on infusion dates and outcome days; returns the outcomes."""
    rng = np.random.default_rng([seed, 4000])
    span = (LAST_INFUSION - FIRST_INFUSION).days
    full = (CUTOFF - FIRST_INFUSION).days
    off = np.array([(date.fromisoformat(s) - FIRST_INFUSION).days for s in start.infusion_date])
    death = start["death_day"].to_numpy(int).copy()
    rel = start["relapse_day"].to_numpy(int).copy()
    last = start["last_contact_day"].to_numpy(int).copy()
    beta: dict = {}
    cur = _loss(z_scores(scores(d, death, rel, last, beta)), hinge)
    n = len(off)
    for step in range(n_steps):
        if verbose and step % 2000 == 0:
            print(step, round(cur, 2), flush=True)
        temp = t0 * (1 - step / n_steps) ** 2 + 1e-3
        i = int(rng.integers(n))
        o, de, r, la = off[i], death[i], rel[i], last[i]
        rd = d["response_day"][i]
        move = rng.integers(6)
        if move >= 4:
            # Swap two patients' whole follow-up (dates and days): moves fates across groups.
            j = int(rng.integers(n))
            if not (_valid(d, i, full - off[j], death[j], rel[j], last[j])
                    and _valid(d, j, full - off[i], death[i], rel[i], last[i])):
                continue
            for arr in (off, death, rel, last):
                arr[i], arr[j] = arr[j], arr[i]
            new = _loss(z_scores(scores(d, death, rel, last, beta)), hinge)
            if new <= cur or rng.random() < math.exp((cur - new) / temp):
                cur = new
            else:
                for arr in (off, death, rel, last):
                    arr[i], arr[j] = arr[j], arr[i]
            continue
        if move == 0:
            o = int(rng.integers(0, span + 1))
        admin = full - o
        if move == 1:
            de = -1 if rng.random() < 0.4 else int(rng.integers(rd + 1, admin + 1))
        elif move == 2 and d["cr"][i]:
            lim = de if de >= 0 else la
            r = -1 if rng.random() < 0.4 or lim <= rd + 1 else int(rng.integers(rd + 1, lim))
        elif move == 3 and de < 0:
            la = admin if rng.random() < 0.6 else int(rng.integers(rd + 1, admin + 1))
        if de >= 0:
            la = de
        elif move in (0, 1) and death[i] >= 0 or last[i] == full - off[i]:
            la = admin
        if not _valid(d, i, admin, de, r, la):
            continue
        saved = off[i], death[i], rel[i], last[i]
        off[i], death[i], rel[i], last[i] = o, de, r, la
        new = _loss(z_scores(scores(d, death, rel, last, beta)), hinge)
        if new <= cur or rng.random() < math.exp((cur - new) / temp):
            cur = new
        else:
            off[i], death[i], rel[i], last[i] = saved
    return pd.DataFrame({
        "infusion_date": [(FIRST_INFUSION + timedelta(days=int(k))).isoformat() for k in off],
        "relapse_day": rel, "death_day": death, "last_contact_day": last}, index=start.index)


def model_outcomes(rng: np.random.Generator, d: dict, admin: np.ndarray) -> tuple:
    """One draw from a Cox-type generative model with the published hazard ratios.

    CR patients: LFS event at rate mu * exp(x b_lfs); the event is a relapse (death
    follows at rate nu * exp(x (b_os - b_lfs))) or, less often, death in CR.
    Non-responders die early. Censoring: the cut-off, or loss to follow-up (5 %).
    """
    x, cr, rd = d["x"], d["cr"], d["response_day"]
    b_lfs = np.log([COX_HR["lfs"][k] for k in COX_TERMS])
    b_os = np.log([COX_HR["os"][k] for k in COX_TERMS])
    n = len(x)
    lfs = rd + rng.exponential(1.0 / (np.log(2) / 900 * np.exp(x @ b_lfs)))
    in_cr_death = rng.random(n) < 0.15 + 0.15 * x[:, 3]
    post = rng.exponential(1.0 / (np.log(2) / 250 * np.exp(x @ (b_os - b_lfs))))
    death = np.where(in_cr_death, lfs, lfs + post)
    death = np.where(cr, death, rd + rng.exponential(180, n))
    relapse = np.where(cr & ~in_cr_death, lfs, 1e9)
    lost = np.where(rng.random(n) < 0.05, rng.uniform(np.minimum(rd + 30, admin), admin), admin)
    last = np.minimum(lost, admin).astype(int)
    death_i = np.where(death <= last, np.maximum(death.astype(int), rd + 1), -1)
    end = np.where(death_i >= 0, death_i, last)
    rel_i = np.where(relapse < end, np.maximum(relapse.astype(int), rd + 1), -1)
    rel_i = np.where(rel_i >= end, -1, rel_i)
    return death_i, rel_i, np.where(death_i >= 0, death_i, last)


def best_model_start(d: dict, seed: int, n_draws: int = 400) -> pd.DataFrame:
    """The best of n seeded draws from `model_outcomes` (with random infusion dates)."""
    rng = np.random.default_rng([seed, 5000])
    span = (LAST_INFUSION - FIRST_INFUSION).days
    full = (CUTOFF - FIRST_INFUSION).days
    best = None
    for _ in range(n_draws):
        off = rng.integers(0, span + 1, len(d["cr"]))
        death, rel, last = model_outcomes(rng, d, full - off)
        loss = _loss(z_scores(scores(d, death, rel, last)))
        if best is None or loss < best[0]:
            best = (loss, off, death, rel, last)
    _, off, death, rel, last = best
    return pd.DataFrame({
        "infusion_date": [(FIRST_INFUSION + timedelta(days=int(k))).isoformat() for k in off],
        "relapse_day": rel, "death_day": death, "last_contact_day": last})


def solve_columns(seed: int, max_tries: int = 12) -> tuple[dict[str, int], pd.DataFrame]:
    """Per column, the first sub-seed whose solver run meets all exact summaries."""
    sk = base_skeleton(seed)
    specs = _specs(sk)
    done = pd.DataFrame(index=sk.index)
    chosen: dict[str, int] = {}
    for name, spec in specs.items():
        best = None
        for sub in range(max_tries):
            x = solve_one(sk, name, seed, sub, done)
            miss = (total_miss(x, spec["targets"]), soft_miss(x, spec["targets"]))
            if best is None or miss < best[0]:
                best = (miss, sub, x)
            # Exact summaries all hold and every p-value is within +-0.05.
            if miss[0] == 0 and miss[1] < 0.6:
                break
        chosen[name] = best[1]
        done[name] = best[2]
        print(f"{name}: sub-seed {best[1]}, miss {best[0]}", flush=True)
    return chosen, done


def base_skeleton(seed: int) -> pd.DataFrame:
    return skeleton(np.random.default_rng([seed, 1000]))


# Annealing stages: (steps, start temperature, hinge in tolerance units).
STAGES = ((20000, 0.3, 0.6), (20000, 0.1, 0.6))


def main(seed: int = DEFAULT_SEED, stages: tuple = STAGES) -> None:
    subseeds, solved = solve_columns(seed)
    columns = {c: [None if np.isnan(v) else float(v) for v in solved[c]] for c in solved}
    base = base_table(seed, columns)
    start = best_model_start(design(base), seed)
    start.index = base.index
    out = start
    for k, (n_steps, t0, hinge) in enumerate(stages):
        out = anneal(design(base), out, seed + k, n_steps, t0=t0, hinge=hinge, verbose=True)
    got = scores(design(base), out["death_day"].to_numpy(int),
                 out["relapse_day"].to_numpy(int), out["last_contact_day"].to_numpy(int))
    cal = {"seed": seed, "stages": [list(st) for st in stages], "subseeds": subseeds,
           "columns": columns,
           "achieved": {k: round(v, 4) for k, v in got.items()},
           "outcomes": [[r.infusion_date, int(r.relapse_day), int(r.death_day),
                         int(r.last_contact_day)] for r in out.itertuples()]}
    header = ("# Written by `python -m sites.twin.calibrate`; read by sites.twin.cohort.\n"
              "# outcomes: one row per patient in skeleton order: infusion_date, relapse_day,\n"
              "# death_day, last_contact_day (-1 = none).\n")
    CALIBRATION_YML.write_text(header + yaml.safe_dump(cal, sort_keys=False, width=100))
    assemble(seed, base, out).to_csv(TRUTH_CSV, index=False)
    for k, z in z_scores(got).items():
        print(f"{k:34s} {got[k]:9.3f}  z={z:+.2f}")


if __name__ == "__main__":
    main()
