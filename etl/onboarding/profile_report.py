"""The two faces of `carpool profile`: a rich terminal summary and an HTML + JSON report.

Both render `etl.onboarding.profile.TableProfile` objects, which hold no identifier values (only
counts and shapes), so nothing here can print one. The HTML and JSON under
`out/profile/<name>/` are meant to be sent back to the center.
"""
from __future__ import annotations

import json
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from rich.console import Console
from rich.table import Table

from etl.onboarding.profile import ColumnProfile, TableProfile

TEMPLATES = Path(__file__).parent / "templates"


def describe(c: ColumnProfile) -> str:
    """One cell: top values (with labels), or date formats, or the identifier's shape."""
    if c.identifier:
        shapes = ", ".join(f"{s} x{n}" for s, n in c.shape)
        return f"values hidden; shape {shapes}" if shapes else "values hidden"
    if c.type == "date":
        return "formats " + ", ".join(f"{f} {s:.0%}" for f, s in c.date_formats.items())
    more = f", … {len(c.top) - 5} more" if len(c.top) > 5 else ""
    return ", ".join(_top(c, v, n) for v, n in c.top[:5]) + more


def _top(c: ColumnProfile, v: str, n: int) -> str:
    v = v if len(v) <= 30 else v[:29] + "…"
    label = c.value_labels.get(v)
    return f"{v}={label} ({n})" if label else f"{v} ({n})"


def flags(c: ColumnProfile) -> str:
    out = []
    if c.identifier:
        out.append(f"IDENTIFIER: {c.identifier}")
    if c.code_like:
        out.append("code: needs a code list")
    if c.undeclared:
        out.append(f"values outside the declared choices: {', '.join(c.undeclared[:5])}")
    shares = c.date_formats
    if c.type == "date" and len([s for s in shares.values() if s >= 0.999]) > 1:
        out.append("ambiguous date format")
    if c.type == "date" and len(shares) > 1 and max(shares.values()) < 0.999:
        out.append("mixed date formats: list them all in `date:`")
    if c.type == "date" and sum(shares.values()) < 0.999:
        out.append("some values are not dates")
    return "; ".join(out)


def print_summary(tables: list[TableProfile], errors: list[str], console: Console) -> None:
    if not console.is_terminal:  # piped or captured: do not squeeze the table to 80 columns
        console = Console(file=console.file, width=220)
    for t in tables:
        console.print(f"\n[bold]{t.path}[/bold]" + (f" [{t.source.get('sheet')}]" if t.source.get("sheet") else "")
                      + f": {t.format}, {t.rows} rows, {len(t.columns)} columns", highlight=False)
        console.print("  read as: " + "; ".join(t.notes), highlight=False)
        if t.instruments:
            console.print("  REDCap rows: " + ", ".join(f"{k} {n}" for k, n in t.instruments.items()),
                          highlight=False)
        table = Table(show_lines=False, highlight=False)
        table.add_column("column", no_wrap=True, overflow="fold")
        for h in ("label", "type", "null", "distinct", "min", "max", "values", "flags"):
            table.add_column(h, overflow="fold")
        for c in t.columns:
            table.add_row(c.name, (c.label or "")[:40] + (f" [{c.instrument}]" if c.instrument else ""),
                          c.type, f"{c.null_share:.0%}", str(c.distinct), c.min or "", c.max or "",
                          describe(c), flags(c), style="red" if c.identifier else None)
        console.print(table)
        ids = [c.name for c in t.identifiers]
        console.print(f"  direct identifiers ({len(ids)}): {', '.join(ids) or 'none found'}; "
                      "their values are never shown", highlight=False)
    for e in errors:
        console.print(f"[red]error:[/red] {e}", highlight=False)


def write_report(tables: list[TableProfile], errors: list[str], out_dir: Path, title: str) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"title": title, "tables": [t.to_dict() for t in tables], "errors": errors}
    (out_dir / "profile.json").write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str),
                                          encoding="utf-8")
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape())
    html = env.get_template("profile.html.j2").render(title=title, tables=tables, errors=errors,
                                                      describe=describe, flags=flags)
    path = out_dir / "index.html"
    path.write_text(html, encoding="utf-8")
    return path
