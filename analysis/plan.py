"""The analysis plan as data: a typed model of `analysis/plans/*.yml`.

A plan names the variables (a warehouse column, or a derived variable built
from a named operation in `analysis.derive.OPERATIONS`), the populations
(filters), the groupings to compare by, and which analyses to run on which
endpoints. Every section except `variables` is optional, so a user can write a
plan for another question without touching code. Unknown keys are rejected;
errors name the file, the key path and (when known) the line.

`load_plan(path)` is the only function in `analysis/` that reads a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from analysis.derive import NO_VALUE, OPERATIONS

STUDY_PLAN = Path(__file__).parent / "plans" / "study.yml"


class PlanError(ValueError):
    """A plan file that cannot be used; the message names file, key and line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Strict):
    column: str
    op: str
    value: Any = None

    @model_validator(mode="after")
    def _known_op(self) -> Condition:
        if self.op not in OPERATIONS:
            raise ValueError(f"unknown op {self.op!r}; known ops: {', '.join(sorted(OPERATIONS))}")
        if self.op not in NO_VALUE and self.value is None:
            raise ValueError(f"op {self.op!r} needs a value")
        return self

    def as_tuple(self) -> tuple[str, str, Any]:
        return (self.column, self.op, self.value)


class Variable(_Strict):
    column: str | None = None
    derive: Condition | None = None
    kind: Literal["continuous", "binary", "categorical"]
    levels: list[str] | None = None
    reference: str | None = None
    label: str | None = None
    level_labels: dict[str, str] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Variable:
        if (self.column is None) == (self.derive is None):
            raise ValueError("give exactly one of 'column' or 'derive'")
        if self.reference is not None and self.levels and self.reference not in self.levels:
            raise ValueError(f"reference {self.reference!r} is not one of levels {self.levels}")
        unknown = sorted(set(self.level_labels or {}) - set(self.levels or []) - {"yes", "no"})
        if unknown:
            raise ValueError(f"level_labels {unknown} are not among levels {self.levels}")
        return self


class Population(_Strict):
    where: list[Condition] = []
    label: str | None = None


class Table1(_Strict):
    compare_by: list[str]
    variables: list[str]
    categorical_test: Literal["chi2", "fisher"] | None = None


class ColumnEndpoint(_Strict):
    """An endpoint that is one column over a population (response, kinetics)."""

    column: str
    population: str = "all"


class Kinetics(_Strict):
    compare_by: list[str]
    endpoints: dict[str, ColumnEndpoint]


class Response(Kinetics):
    tests: dict[str, Literal["chi2", "fisher"]] = {}


class SurvivalEndpoint(_Strict):
    duration: str
    event: str
    population: str = "all"


class Survival(_Strict):
    compare_by: list[str] = []
    endpoints: dict[str, SurvivalEndpoint]
    times: list[float] = []


class FollowUp(_Strict):
    endpoint: str


class Screen(_Strict):
    candidates: list[str]
    threshold: float = 0.1


class Cox(_Strict):
    endpoints: list[str]
    terms: list[str] = []
    screen: Screen | None = None


class Heterogeneity(_Strict):
    """Center heterogeneity of binary exposures on survival endpoints (analysis.heterogeneity)."""

    center: str
    endpoints: list[str]
    exposures: list[str]


class CompetingEndpoint(_Strict):
    """A survival endpoint whose event is split by cause (`status` holds the cause)."""

    duration: str
    status: str
    event: str
    competing: list[str]
    censored: str
    population: str = "all"
    labels: dict[str, str] = {}


class CompetingRisks(_Strict):
    """Cumulative incidence and Gray's test by `compare_by`; Fine–Gray on `terms`."""

    endpoints: dict[str, CompetingEndpoint]
    compare_by: list[str] = []
    terms: list[str] = []
    times: list[float] = []


class BeyondPaper(_Strict):
    """Analyses the paper did not run: center heterogeneity and competing risks."""

    heterogeneity: Heterogeneity | None = None
    competing_risks: CompetingRisks | None = None


class Plan(_Strict):
    name: str
    description: str = ""
    variables: dict[str, Variable]
    populations: dict[str, Population] = {"all": Population()}
    table1: Table1 | None = None
    response: Response | None = None
    survival: Survival | None = None
    followup: FollowUp | None = None
    kinetics: Kinetics | None = None
    cox: Cox | None = None
    beyond_paper: BeyondPaper | None = None

    @model_validator(mode="after")
    def _references(self) -> Plan:
        problems: list[str] = []

        def need(names, known, where, what):
            for n in names:
                if n not in known:
                    problems.append(f"{where}: unknown {what} {n!r}")

        v, p = self.variables, self.populations
        if "all" not in p:
            problems.append("populations: 'all' must be defined")
        for name, var in v.items():
            if var.kind == "categorical" and var.reference is None:
                problems.append(f"variables.{name}: a categorical variable needs 'reference'")
        if self.table1:
            need(self.table1.compare_by, v, "table1.compare_by", "variable")
            need(self.table1.variables, v, "table1.variables", "variable")
        for sec in ("response", "survival", "kinetics"):
            s = getattr(self, sec)
            if s:
                need(s.compare_by, v, f"{sec}.compare_by", "variable")
                for ep_name, ep in s.endpoints.items():
                    need([ep.population], p, f"{sec}.endpoints.{ep_name}.population",
                         "population")
        if self.response:
            need(self.response.tests, self.response.compare_by, "response.tests",
                 "comparison (not in response.compare_by)")
        surv = self.survival.endpoints if self.survival else {}
        if self.followup:
            need([self.followup.endpoint], surv, "followup.endpoint", "survival endpoint")
        if self.cox:
            need(self.cox.endpoints, surv, "cox.endpoints", "survival endpoint")
            need(self.cox.terms, v, "cox.terms", "variable")
            if self.cox.screen:
                need(self.cox.screen.candidates, v, "cox.screen.candidates", "variable")
        if self.beyond_paper:
            _beyond_references(self.beyond_paper, v, p, surv, need, problems)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _beyond_references(b: BeyondPaper, v, p, surv, need, problems: list[str]) -> None:
    if b.heterogeneity:
        h, where = b.heterogeneity, "beyond_paper.heterogeneity"
        need([h.center], v, f"{where}.center", "variable")
        need(h.endpoints, surv, f"{where}.endpoints", "survival endpoint")
        need(h.exposures, v, f"{where}.exposures", "variable")
        for x in h.exposures:
            if x in v and v[x].kind != "binary":
                problems.append(f"{where}.exposures: {x!r} is {v[x].kind}; only binary "
                                "exposures have one hazard ratio per center")
    if b.competing_risks:
        c, where = b.competing_risks, "beyond_paper.competing_risks"
        need(c.compare_by, v, f"{where}.compare_by", "variable")
        need(c.terms, v, f"{where}.terms", "variable")
        for name, ep in c.endpoints.items():
            need([ep.population], p, f"{where}.endpoints.{name}.population", "population")


def parse_plan(data: Any, source: str = "<plan>", text: str | None = None) -> Plan:
    """Validate a plan given as a dict; errors name `source`, the key path and line."""
    if not isinstance(data, dict):
        raise PlanError(f"{source}: a plan must be a mapping at the top level")
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            path = ".".join(str(p) for p in err["loc"])
            line = _line_of(text, err["loc"]) if text else None
            at = f" (line {line})" if line else ""
            lines.append(f"{source}: {path or '<top>'}{at}: {err['msg']}")
        raise PlanError("\n".join(lines)) from None


def load_plan(path: str | Path = STUDY_PLAN) -> Plan:
    """Read and validate a plan YAML file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PlanError(f"{path}: not valid YAML: {exc}") from None
    return parse_plan(data, source=str(path), text=text)


def _line_of(text: str, loc: tuple) -> int | None:
    """1-based line of the deepest key of `loc` that exists in the YAML text."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if k.value == str(key)]
            if not match:
                break
            line, node = match[0][0].start_mark.line + 1, match[0][1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            break
    return line
