"""Readable names for the codes the report shows, each taken from the one place that defines it.

A level of a plan variable is shown as, in this order:

1. the plan's `level_labels` for that variable (e.g. tox_group `grade3plus` → "Grade ≥3
   CRS or ICANS");
2. the `description` in the code list the data dictionary names for the variable's
   column: the `analysis_patient` view header says `sex {sex}`, so `M` is shown as
   `schemas/codelists/sex.csv`'s "Male";
3. Yes / No for the booleans' `yes` / `no`;
4. otherwise the code itself, underscores as spaces.

`code_labels(plan)` reads the view header and the code lists (packaged files, no database);
`level_text(...)` applies the order above. Nothing here holds a label of its own.
"""

from __future__ import annotations

from importlib import resources

BOOLEAN_LEVELS = {"yes": "Yes", "no": "No"}
VIEW = "analysis_patient"


def code_labels(plan) -> dict[str, dict[str, str]]:
    """{plan variable: {code: description}} for each variable whose `analysis_patient`
    column the view header ties to a code list (`--   <column> {<codelist>}: ...`)."""
    from schemas.model import codelist
    from warehouse.dictionary import view_columns

    sql = (resources.files("warehouse") / "views" / f"{VIEW}.sql").read_text(encoding="utf-8")
    docs = view_columns(sql)
    out: dict[str, dict[str, str]] = {}
    for name, var in plan.variables.items():
        doc = docs.get(var.column) if var.column else None
        if doc is not None and doc.codelist:
            out[name] = {row["code"]: row["description"] for row in codelist(doc.codelist)
                         if row.get("description")}
    return out


def level_text(plan, variable: str, level, codes: dict[str, dict[str, str]] | None = None) -> str:
    """A level of `variable` as a reader should see it (see the module docstring)."""
    level = str(level)
    var = plan.variables.get(variable) if plan is not None else None
    own = (var.level_labels or {}) if var is not None else {}
    if level in own:
        return own[level]
    listed = (codes or {}).get(variable, {})
    if level in listed:
        return listed[level]
    return BOOLEAN_LEVELS.get(level, level.replace("_", " "))
