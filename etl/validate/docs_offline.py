"""Make a site's GX Data Docs open offline, and write their index page.

GX's page templates load Bootstrap, Font Awesome, jQuery, Vega and its logo from CDNs, and
its index draws the list of suites with a JavaScript table: offline, the pages render
unstyled and the index is empty. The pages' content itself is plain server-rendered HTML,
so `make_offline` drops every remote stylesheet, script and image and inlines a small
stylesheet instead. `write_index` replaces GX's index with a static page listing every
suite (its validation result and its expectations), how the batch was sampled, and the
site's dataset-level checks (warehouse.quality).
"""
from __future__ import annotations

import html
import os
import re
from pathlib import Path

import pandas as pd

REMOTE_LINK = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//[^>]*>", re.I)
REMOTE_SCRIPT = re.compile(r"<script\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//[^>]*>\s*</script\s*>", re.I)
REMOTE_IMG = re.compile(r"<img\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//[^>]*>", re.I)
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:0 auto;max-width:1200px;
  padding:1rem;color:#222;line-height:1.4}
table{border-collapse:collapse;margin:.5rem 0 1rem;width:100%}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f2f2f2} a{color:#0b5cad} h1,h2,h3,h4,h5{margin:1rem 0 .5rem}
.fail,.text-danger{color:#b00020;font-weight:600} .pass,.text-success{color:#1b6e20}
.d-none,.modal,button{display:none} code,pre{background:#f6f6f6;padding:0 .2rem}
.card{border:1px solid #ddd;border-radius:4px;padding:.5rem;margin:.5rem 0}
ul{padding-left:1.2rem}
"""
STYLE = f'<style id="carpool-offline">{CSS}</style>'


def make_offline(docs_dir: Path) -> list[Path]:
    """Strip remote stylesheets, scripts and images from every page under `docs_dir`
    and inline `CSS`; returns the pages rewritten."""
    pages = sorted(docs_dir.rglob("*.html"))
    for page in pages:
        text = page.read_text(encoding="utf-8")
        text = REMOTE_SCRIPT.sub("", REMOTE_LINK.sub("", text))
        text = REMOTE_IMG.sub("", text)
        if 'id="carpool-offline"' not in text:
            text = re.sub(r"</head\s*>", STYLE + "</head>", text, count=1, flags=re.I)
        page.write_text(text, encoding="utf-8")
    return pages


def remote_references(docs_dir: Path) -> list[str]:
    """`page: tag` for every stylesheet, script or image still loaded from the network."""
    found = []
    for page in sorted(docs_dir.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        for pattern in (REMOTE_LINK, REMOTE_SCRIPT, REMOTE_IMG):
            found += [f"{page.relative_to(docs_dir)}: {m.group(0)[:120]}" for m in pattern.finditer(text)]
    return found


def _rel(page: Path, docs_dir: Path) -> str:
    return Path(os.path.relpath(page, docs_dir)).as_posix()


def write_index(docs_dir: Path, site_id: str, suites: list[dict], notes: list[str],
                quality: pd.DataFrame | None) -> Path:
    """The static index: one row per suite (`table`, `success`, `evaluated`, `failed`,
    `rows`, `failing_rows`, `sample_rows`), the sampling notes and the dataset checks."""
    e = html.escape
    rows = []
    for s in suites:
        table = s["table"]
        result = next(iter(sorted((docs_dir / "validations" / table).rglob("*.html"))), None)
        suite_page = docs_dir / "expectations" / f"{table}.html"
        status = '<span class="pass">Succeeded</span>' if s["success"] else '<span class="fail">Failed</span>'
        link = f'<a href="{e(_rel(result, docs_dir))}">{e(table)}</a>' if result else e(table)
        expect = f'<a href="{e(_rel(suite_page, docs_dir))}">expectations</a>' if suite_page.is_file() else ""
        rows.append(f"<tr><td>{link}</td><td>{status}</td><td>{s['evaluated']}</td><td>{s['failed']}</td>"
                    f"<td>{s['rows']:,}</td><td>{s['failing_rows']:,}</td><td>{s['sample_rows']:,}</td>"
                    f"<td>{expect}</td></tr>")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(site_id)}: validation</title>{STYLE}"
             f"</head><body><h1>{e(site_id)}: Great Expectations Data Docs</h1>",
             "<p>Each suite ran on the site's mapped rows <b>before quarantine</b>: every row with a finding "
             "plus a repeatable random sample of the other rows, identifiers masked (local ids shown as their "
             "keyed hash, text holding a name, MRN, phone or birth date as ***). The suites come from "
             "schemas/common.yml and schemas/checks.csv.</p>",
             "<h2>Suites</h2><table id='suites'><tr><th>table (validation result)</th><th>status</th>"
             "<th>expectations</th><th>failed</th><th>mapped rows</th><th>rows with a finding</th>"
             "<th>rows validated</th><th>suite</th></tr>", *rows, "</table>"]
    if notes:
        parts.append("<h2>Sampling</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
    if quality is not None and len(quality):
        parts.append("<h2>Dataset checks (OHDSI DQD style)</h2><p>Thresholds from schemas/checks.csv; the same "
                     "rows as the warehouse table <code>quality_check</code>.</p><table id='quality'><tr>"
                     "<th>check</th><th>table</th><th>column</th><th>value</th><th>threshold</th><th>passed</th>"
                     "<th>message</th></tr>")
        q = quality.sort_values(["passed", "check_id", "table_name", "column_name"], kind="stable")
        for r in q.itertuples():
            shown = f"{r.value:,.0f}" if r.check_type == "row_count_change" else f"{r.value:.3f}"
            ok = '<span class="pass">yes</span>' if r.passed else '<span class="fail">no</span>'
            parts.append(f"<tr><td>{e(r.check_id)}</td><td>{e(r.table_name)}</td><td>{e(r.column_name or '')}</td>"
                         f"<td>{shown}</td><td>{e(r.threshold or 'reported only')}</td><td>{ok}</td>"
                         f"<td>{e(r.message or '')}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    index = docs_dir / "index.html"
    index.write_text("\n".join(parts), encoding="utf-8")
    return index
