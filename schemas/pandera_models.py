"""One pandera model per common-schema table, generated from `common.yml` + the catalog.

Field and row rules live here: required fields, code sets, plausible ranges, grade
within its scale. Each pandera check is named after its catalog rule id, so a failure
case maps straight back to a quarantine finding. Rows already flagged by the mapper for
a column (e.g. an unparseable date) are not reported twice.
"""
from __future__ import annotations

from functools import cache

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from schemas.catalog import Finding, catalog, finding, rule_for
from schemas.model import Table, code_attr, codes, common_schema


@cache
def table_model(name: str) -> pa.DataFrameSchema:
    """The pandera model of one table."""
    table: Table = common_schema()[name]
    columns = {}
    for col in table.columns:
        checks = []
        if col.codelist:
            checks.append(pa.Check.isin(codes(col.codelist), name="UNKNOWN_CODE"))
        if col.min is not None or col.max is not None:
            lo = col.min if col.min is not None else float("-inf")
            hi = col.max if col.max is not None else float("inf")
            rule = rule_for("field_range", name, col.name, "OUT_OF_RANGE")
            checks.append(pa.Check.in_range(lo, hi, name=rule))
        columns[col.name] = pa.Column(nullable=not col.required, checks=checks, required=True,
                                      coerce=False, title=col.description)
    frame_checks = []
    if name == "toxicity":
        frame_checks.append(pa.Check(_grade_in_scale, name="GRADE_OUT_OF_SCALE"))
    return pa.DataFrameSchema(columns, checks=frame_checks, name=name, strict=False)


def _grade_in_scale(df: pd.DataFrame) -> pd.Series:
    top = df["source_scale"].map(lambda s: float(code_attr("grading_scale", "max_grade").get(s, 5)))
    grade = pd.to_numeric(df["source_grade"], errors="coerce")
    return grade.isna() | ((grade >= 0) & (grade <= top))


def validate_table(name: str, frame: pd.DataFrame, reported: set[tuple[int, str]]) -> list[Finding]:
    """Run the table's pandera model; return findings (one per failing row and rule)."""
    table = common_schema()[name]
    data = frame.set_index("_row_id", drop=False)
    try:
        table_model(name).validate(data, lazy=True)
        return []
    except SchemaErrors as exc:
        cases = exc.failure_cases
    out = []
    local = data["local_id"] if "local_id" in data else None
    for case in cases.itertuples(index=False):
        if case.index is None or pd.isna(case.index):
            continue
        row_id = int(case.index)
        check = _rule_of(name, case)
        if check == "GRADE_OUT_OF_SCALE":
            col = "source_grade"
            value = data.at[row_id, col]
            scale = data.at[row_id, "source_scale"]
            out.append(finding(check, name, row_id, col, value, local_id=_lid(local, row_id),
                               expected=f"{scale} (0..{code_attr('grading_scale', 'max_grade').get(scale, '?')})"))
            continue
        col = str(case.column)
        if (row_id, col) in reported:
            continue
        if check == "not_nullable":
            out.append(finding("REQUIRED_MISSING", name, row_id, col, None, local_id=_lid(local, row_id)))
        elif check == "UNKNOWN_CODE":
            out.append(finding("UNKNOWN_CODE", name, row_id, col, case.failure_case, local_id=_lid(local, row_id),
                               expected=table.column(col).codelist))
        elif check in catalog():
            out.append(finding(check, name, row_id, col, case.failure_case, local_id=_lid(local, row_id),
                               expected=table.column(col).range_text))
    return out


def _rule_of(name: str, case) -> str:
    """pandera reports a check by its repr; map (column, check_number) back to the rule id."""
    if str(case.check) == "not_nullable":
        return "not_nullable"
    schema = table_model(name)
    number = int(case.check_number) if case.check_number is not None and not pd.isna(case.check_number) else 0
    if case.schema_context == "DataFrameSchema":
        return schema.checks[number].name
    return schema.columns[str(case.column)].checks[number].name


def _lid(local: pd.Series | None, row_id: int) -> str | None:
    if local is None:
        return None
    v = local.get(row_id)
    return None if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
