"""The warehouse views in other engines' SQL, and a check for the traps translation keeps.

sqlglot translates the DuckDB text of a view; that keeps syntax, not semantics. Three known
traps change results silently, and `semantic_traps()` finds them in the translated text:

- NULL-propagating LEAST/GREATEST: DuckDB ignores NULL arguments, Trino and Spark return NULL.
  The views write `coalesce(least(a, b), a, b)`, which means the same everywhere.
- Integer division: `7 / 2` is 3 in Trino. Every division must have a DOUBLE (or float
  literal) operand.
- Date arithmetic with `+`/`-` on dates: differences must go through DATE_DIFF with a unit.
"""
from __future__ import annotations

from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

VIEWS_DIR = Path(__file__).resolve().parent / "views"
DIALECTS = ("duckdb", "spark", "trino")
FLOAT_TYPES = {exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT, exp.DataType.Type.DECIMAL}


def view_names(views_dir: Path = VIEWS_DIR) -> list[str]:
    return sorted(p.stem for p in views_dir.glob("*.sql"))


def translate(sql: str, dialect: str) -> str:
    """A view's DuckDB text in `dialect` (pretty-printed); an unsupported construct raises."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}: use one of {', '.join(DIALECTS)}")
    body = sql.rstrip().rstrip(";")
    return sqlglot.transpile(body, read="duckdb", write=dialect, pretty=True,
                             unsupported_level=ErrorLevel.RAISE)[0]


def view_sql(name: str, dialect: str = "duckdb", views_dir: Path = VIEWS_DIR) -> str:
    path = views_dir / f"{name}.sql"
    if not path.is_file():
        raise KeyError(f"no view {name!r}: views are {', '.join(view_names(views_dir))}")
    return translate(path.read_text(encoding="utf-8"), dialect)


def semantic_traps(sql: str, dialect: str) -> list[str]:
    """Places in `sql` (written in `dialect`) whose meaning differs between engines."""
    tree = sqlglot.parse_one(sql, read=dialect)
    traps = []
    for node in tree.find_all(exp.Least, exp.Greatest):
        parent = node.parent
        args = [node.this, *node.expressions]
        wrapped = isinstance(parent, exp.Coalesce) and parent.this is node and \
            {a.sql() for a in args} <= {e.sql() for e in parent.expressions}
        if not (wrapped or all(_never_null(a) for a in args)):
            traps.append(f"NULL-propagating {node.key.upper()}: {node.sql(dialect=dialect)}")
    for node in tree.find_all(exp.Div):
        if not (_is_float(node.this) or _is_float(node.expression)):
            traps.append(f"integer division: {node.sql(dialect=dialect)}")
    for node in tree.find_all(exp.Add, exp.Sub):
        names = [c.name for c in node.find_all(exp.Column)]
        if any(n.endswith("_date") for n in names) and not node.find(exp.Interval):
            traps.append(f"date arithmetic with {'+' if isinstance(node, exp.Add) else '-'}: "
                         f"{node.sql(dialect=dialect)}")
    return traps


def _never_null(node: exp.Expression) -> bool:
    """A literal, or a COALESCE that ends in one."""
    if isinstance(node, exp.Literal):
        return True
    return isinstance(node, exp.Coalesce) and bool(node.expressions) and isinstance(node.expressions[-1], exp.Literal)


def _is_float(node: exp.Expression) -> bool:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Cast | exp.TryCast):
        return node.to.this in FLOAT_TYPES
    if isinstance(node, exp.Literal) and not node.is_string:
        return "." in node.this or "e" in node.this.lower()
    if isinstance(node, exp.Div):
        return True  # checked on its own; a checked division yields a float
    if isinstance(node, exp.Mul | exp.Add | exp.Sub):
        return _is_float(node.this) or _is_float(node.expression)
    return False
