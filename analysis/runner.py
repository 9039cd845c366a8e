"""Run an analysis plan on the `analysis_patient` DataFrame: `run_plan(df, plan)`.

`df` has one row per patient (the warehouse view `analysis_patient`); the plan
(`analysis.plan.Plan`, e.g. `load_plan()`) says what to compute. Nothing here
reads files or databases.

`PlanResults` holds every result object, keyed by (comparison, endpoint):
`table1`, `response` (ProportionResult / DistributionResult), `survival`
(SurvivalComparison: `.km` KMResult with plotting-ready curves, `.logrank`),
`overall` (ungrouped KMResult per survival endpoint), `beyond` (the plan's
`beyond_paper` section: `analysis.runner_beyond.BeyondResults`), `followup` (reverse-KM
KMResult), `kinetics` (DistributionResult), `cox` and `screen` (CoxResult /
ScreenResult per endpoint), `populations` (rows per population), `landmarks`
(survival at the plan's `survival.times`: columns comparison, endpoint, group,
time, survival, lower, upper, at_risk; comparison "all" for the overall curve)
and `errors` ({(analysis, comparison, endpoint): message} for a Cox model that
could not be fitted, e.g. no events, or survival input that cannot be analysed,
e.g. an empty population or a status column not coded 0/1; its rows are absent
from the table and the message says why; per-candidate screen failures are in `ScreenResult.errors`).

`PlanResults.table` is one long DataFrame, columns
`analysis, comparison, endpoint, term, statistic, value, test`:

* analysis: table1 | response | survival | followup | kinetics | cox, and for the
  `beyond_paper` section heterogeneity | competing | fine_gray (their terms, statistics
  and tests are listed in `analysis.runner_beyond`)
* comparison: a grouping (crs, icans, crs_grade, icans_grade, concurrent, tox_group,
  tocilizumab, steroids: whatever the plan names); `all` for ungrouped rows (overall KM, follow-up, the multivariable
  Cox model); `screen` for the univariate Cox screen.
* endpoint: a Table 1 variable, cr, mrd_neg_cr, os, lfs, car_peak.
* term: "" for a whole comparison or model (its p_value, n, events; in the
  screen, a model's n and events are under the candidate's name);
  `level:<group level>` for per-group rows (booleans are `yes`/`no`, e.g.
  `level:yes`, `level:grade3plus`); `level:<group level>|value:<value>` for the
  counts of a categorical Table 1 variable (e.g. `level:yes|value:F`);
  for Cox, the model term (`bm_blasts_ge20`, `steroids`, `tox_group:other`,
  `sex:F`, ...) or the factor name (`tox_group`) for its global test.
* statistic: p_value, hr, hr_lower, hr_upper, median, lower, upper, n,
  events, count, percent; for the multivariable Cox model also concordance
  (term "") and ph_p_value (R's cox.zph: per variable, and term "" for GLOBAL).
  `lower`/`upper` are the 95% CI of a Kaplan–Meier median, but the
  **range (min, max)** of a continuous variable (table1, kinetics), as the
  paper prints "median (range)". `percent` is within the group level (0-100).
* test: the method that produced the value: mann_whitney, kruskal_wallis,
  chi2, fisher (the test actually run), logrank, kaplan_meier, reverse_km,
  cox_wald, cox_lr (a factor's global likelihood-ratio test; its `cox_wald`
  twin is the SPSS-style "Group" p), cox (n, events, concordance of a model),
  cox_zph (the proportional-hazards test), descriptive
  (counts, percents, medians and ranges). A row is unique on all columns but
  `value`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analysis.cox import FIT_ERRORS, CoxResult, ScreenResult, cox_ph, univariate_screen
from analysis.derive import evaluate, select
from analysis.distributions import DistributionResult, compare_distributions
from analysis.logrank import LogRankResult, logrank
from analysis.plan import Plan
from analysis.proportions import ProportionResult, compare_proportions
from analysis.runner_beyond import BeyondResults, run_beyond
from analysis.survinput import SurvivalInputError
from analysis.survival import KMResult, follow_up, kaplan_meier

COLUMNS = ["analysis", "comparison", "endpoint", "term", "statistic", "value", "test"]
_LANDMARK_COLUMNS = ["comparison", "endpoint", "group", "time", "survival", "lower", "upper",
                     "at_risk"]
_D, _E, _V = "__duration", "__event", "__value"


@dataclass(frozen=True, eq=False)
class SurvivalComparison:
    km: KMResult
    logrank: LogRankResult


@dataclass(frozen=True, eq=False)
class PlanResults:
    plan: Plan
    table1: dict[tuple[str, str], ProportionResult | DistributionResult]
    response: dict[tuple[str, str], ProportionResult]
    survival: dict[tuple[str, str], SurvivalComparison]
    overall: dict[str, KMResult]
    followup: KMResult | None
    kinetics: dict[tuple[str, str], DistributionResult]
    cox: dict[str, CoxResult]
    screen: dict[str, ScreenResult]
    populations: dict[str, int]
    landmarks: pd.DataFrame
    errors: dict[tuple[str, str, str], str]
    table: pd.DataFrame
    beyond: BeyondResults = BeyondResults()


def required_columns(plan: Plan) -> set[str]:
    """Every column of `df` the plan refers to."""
    cols = {v.column or v.derive.column for v in plan.variables.values()}
    cols |= {c.column for p in plan.populations.values() for c in p.where}
    for sec in (plan.response, plan.kinetics):
        cols |= {e.column for e in sec.endpoints.values()} if sec else set()
    if plan.survival:
        cols |= {c for e in plan.survival.endpoints.values() for c in (e.duration, e.event)}
    cr = plan.beyond_paper.competing_risks if plan.beyond_paper else None
    if cr:
        cols |= {c for e in cr.endpoints.values() for c in (e.duration, e.status)}
    return cols


def variable_frame(df: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """One column per plan variable, named after it (derived ones evaluated)."""
    out = {}
    for name, var in plan.variables.items():
        out[name] = (df[var.column] if var.column is not None
                     else evaluate(df, var.derive.column, var.derive.op, var.derive.value))
    return pd.DataFrame(out, index=df.index)


def run_plan(df: pd.DataFrame, plan: Plan) -> PlanResults:
    """Run every analysis the plan names; see the module docstring for the output."""
    missing = sorted(required_columns(plan) - set(df.columns))
    if missing:
        raise KeyError(f"plan {plan.name!r} needs columns missing from the data: {missing}")
    variables = variable_frame(df, plan)
    pops = {k: select(df, [c.as_tuple() for c in p.where]).index
            for k, p in plan.populations.items()}
    rows: list[dict] = []
    landmarks: list[pd.DataFrame] = []
    errors: dict[tuple[str, str, str], str] = {}

    def frame(pop: str, names: list[str], **endpoint: str) -> pd.DataFrame:
        idx = pops[pop]
        parts = [variables.loc[idx, names]]
        parts += [df.loc[idx, col].rename(alias) for alias, col in endpoint.items()]
        return pd.concat(parts, axis=1)

    def add(analysis, comparison, endpoint, term, statistic, value, test):
        rows.append(dict(analysis=analysis, comparison=comparison, endpoint=endpoint,
                         term=term, statistic=statistic, value=float(value), test=test))

    table1 = {}
    if plan.table1:
        for comp in plan.table1.compare_by:
            for ep in plan.table1.variables:
                data = frame("all", list(dict.fromkeys([comp, ep])))
                if plan.variables[ep].kind == "continuous":
                    res = compare_distributions(data, ep, comp)
                    _distribution_rows(add, "table1", comp, ep, res)
                else:
                    res = compare_proportions(data, ep, comp, plan.table1.categorical_test)
                    _proportion_rows(add, "table1", comp, ep, res, only_value=None)
                table1[(comp, ep)] = res

    response = {}
    if plan.response:
        for ep, spec in plan.response.endpoints.items():
            for comp in plan.response.compare_by:
                data = frame(spec.population, [comp], **{_V: spec.column})
                res = compare_proportions(data, _V, comp, plan.response.tests.get(comp))
                _proportion_rows(add, "response", comp, ep, res, only_value="yes")
                response[(comp, ep)] = res

    survival, overall, followup = {}, {}, None
    if plan.survival:
        for ep, spec in plan.survival.endpoints.items():
            cols = {_D: spec.duration, _E: spec.event}
            data = frame(spec.population, [], **cols)
            try:
                km = kaplan_meier(data, _D, _E)
            except SurvivalInputError as exc:  # e.g. an empty population: say so, run the rest
                errors[("survival", "all", ep)] = _real_names(exc, spec)
                continue
            overall[ep] = km
            _km_rows(add, "survival", "all", ep, km, level=False)
            times = plan.survival.times
            if times:
                landmarks.append(km.survival_at(times).assign(comparison="all", endpoint=ep))
            for comp in plan.survival.compare_by:
                data = frame(spec.population, [comp], **cols)
                try:
                    km, lr = kaplan_meier(data, _D, _E, comp), logrank(data, _D, _E, comp)
                except SurvivalInputError as exc:
                    errors[("survival", comp, ep)] = _real_names(exc, spec)
                    continue
                survival[(comp, ep)] = SurvivalComparison(km=km, logrank=lr)
                add("survival", comp, ep, "", "p_value", lr.p_value, "logrank")
                _km_rows(add, "survival", comp, ep, km, level=True)
                if times:
                    landmarks.append(km.survival_at(times).assign(comparison=comp, endpoint=ep))
        if plan.followup:
            spec = plan.survival.endpoints[plan.followup.endpoint]
            data = frame(spec.population, [], **{_D: spec.duration, _E: spec.event})
            try:
                followup = follow_up(data, _D, _E)
            except SurvivalInputError as exc:
                errors[("followup", "all", plan.followup.endpoint)] = _real_names(exc, spec)
            else:
                s = followup.summary.iloc[0]
                for stat in ("median", "lower", "upper", "n"):
                    add("followup", "all", plan.followup.endpoint, "", stat, s[stat],
                        "reverse_km")

    kinetics = {}
    if plan.kinetics:
        for ep, spec in plan.kinetics.endpoints.items():
            for comp in plan.kinetics.compare_by:
                data = frame(spec.population, [comp], **{_V: spec.column})
                res = compare_distributions(data, _V, comp)
                _distribution_rows(add, "kinetics", comp, ep, res)
                kinetics[(comp, ep)] = res

    cox, screen = {}, {}
    if plan.cox:
        categorical = {k: v.reference for k, v in plan.variables.items()
                       if v.kind == "categorical"}
        for ep in plan.cox.endpoints:
            spec = plan.survival.endpoints[ep]
            names = list(dict.fromkeys(plan.cox.terms + (
                plan.cox.screen.candidates if plan.cox.screen else [])))
            data = frame(spec.population, names, **{_D: spec.duration, _E: spec.event})
            if plan.cox.terms:
                cats = {k: categorical[k] for k in plan.cox.terms if k in categorical}
                try:
                    cox[ep] = cox_ph(data, _D, _E, plan.cox.terms, cats)
                    _cox_rows(add, "all", ep, cox[ep])
                except FIT_ERRORS as exc:
                    errors[("cox", "all", ep)] = f"{type(exc).__name__}: {_real_names(exc, spec)}"
            if plan.cox.screen:
                sc = plan.cox.screen
                cats = {k: categorical[k] for k in sc.candidates if k in categorical}
                try:
                    screen[ep] = univariate_screen(data, _D, _E, sc.candidates, cats,
                                                   sc.threshold)
                    for model in screen[ep].models.values():
                        _cox_rows(add, "screen", ep, model, model.summary["variable"].iloc[0])
                except FIT_ERRORS as exc:
                    errors[("cox", "screen", ep)] = f"{type(exc).__name__}: {_real_names(exc, spec)}"

    beyond = run_beyond(plan, frame, add, errors)

    return PlanResults(
        plan=plan, beyond=beyond, table1=table1, response=response, survival=survival, overall=overall,
        followup=followup, kinetics=kinetics, cox=cox, screen=screen,
        populations={k: len(v) for k, v in pops.items()},
        landmarks=(pd.concat(landmarks, ignore_index=True)[_LANDMARK_COLUMNS] if landmarks
                   else pd.DataFrame(columns=_LANDMARK_COLUMNS)),
        errors=errors, table=pd.DataFrame(rows, columns=COLUMNS))


def _real_names(exc: Exception, spec) -> str:
    """An error message with the endpoint's real column names instead of the runner's aliases."""
    return (str(exc).replace(repr(_D), repr(spec.duration)).replace(repr(_E), repr(spec.event)))


def _distribution_rows(add, analysis, comp, ep, res: DistributionResult) -> None:
    add(analysis, comp, ep, "", "p_value", res.p_value, res.test)
    for r in res.summary.to_dict("records"):
        term = f"level:{r['group']}"
        for stat, key in (("n", "n"), ("median", "median"), ("lower", "min"),
                          ("upper", "max")):
            add(analysis, comp, ep, term, stat, r[key], "descriptive")


def _proportion_rows(add, analysis, comp, ep, res: ProportionResult, only_value) -> None:
    add(analysis, comp, ep, "", "p_value", res.p_value, res.test)
    for r in res.summary.to_dict("records"):
        if only_value is not None and r["value"] != only_value:
            continue
        level = f"level:{r['group']}"
        term = level if only_value is not None else f"{level}|value:{r['value']}"
        add(analysis, comp, ep, term, "count", r["count"], "descriptive")
        add(analysis, comp, ep, term, "percent", r["percent"], "descriptive")
    groups = res.summary.drop_duplicates("group")
    if only_value is not None:  # a level where no patient had the outcome still has a count of 0
        seen = set(res.summary.loc[res.summary["value"] == only_value, "group"])
        for g in groups["group"]:
            if g not in seen:
                add(analysis, comp, ep, f"level:{g}", "count", 0, "descriptive")
                add(analysis, comp, ep, f"level:{g}", "percent", 0, "descriptive")
    for r in groups.to_dict("records"):
        add(analysis, comp, ep, f"level:{r['group']}", "n", r["n"], "descriptive")


def _km_rows(add, analysis, comp, ep, km: KMResult, level: bool) -> None:
    for r in km.summary.to_dict("records"):
        term = f"level:{r['group']}" if level else ""
        for stat in ("n", "events", "median", "lower", "upper"):
            add(analysis, comp, ep, term, stat, r[stat], "kaplan_meier")


def _cox_rows(add, comp, ep, res: CoxResult, model_term: str = "") -> None:
    add("cox", comp, ep, model_term, "n", res.n, "cox")
    add("cox", comp, ep, model_term, "events", res.events, "cox")
    for r in res.summary.to_dict("records"):
        for stat in ("hr", "hr_lower", "hr_upper", "p_value"):
            add("cox", comp, ep, r["term"], stat, r[stat], "cox_wald")
    for r in res.factors.to_dict("records"):
        add("cox", comp, ep, r["variable"], "p_value", r["wald_p"], "cox_wald")
        add("cox", comp, ep, r["variable"], "p_value", r["lr_p"], "cox_lr")
    if comp == "all":  # the multivariable model: PH test per term and GLOBAL, concordance
        add("cox", comp, ep, "", "concordance", res.concordance, "cox")
        if res.ph_test is not None:
            for r in res.ph_test.to_dict("records"):
                term = "" if r["term"] == "GLOBAL" else r["term"]
                add("cox", comp, ep, term, "ph_p_value", r["p_value"], "cox_zph")
