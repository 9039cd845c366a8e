"""The per-site validation report a data manager reads: out/validation/<site>/.

Writes `index.html` (a one-page summary: rows read, would load, would quarantine, by
rule with the catalog's "how to fix" line; sample failing rows with the export's own
column, sheet and row beside the common-schema column; the source columns no mapping
reads), `quarantine.csv` (every finding, with `where` and `how_to_fix`) and
`summary.json`, each stamped with the run that
wrote it (`carpool refresh` writes them for every site it validates; `carpool validate`
stamps a dry run), so a stale report says so. Its Data Docs line says when the site's
Great Expectations docs are missing or older than its data, and which command rebuilds them
(`docs_line`, rewritten in place by etl.validate.datadocs when the docs change).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from markupsafe import Markup, escape

from etl.escape import html_env, write_csv
from schemas.catalog import catalog

TEMPLATES = Path(__file__).parent / "templates"
SAMPLES_PER_RULE = 5


def docs_line(note: str = "") -> str:
    """The report's one line about the site's Data Docs; `note` says why they are not current."""
    shown = re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(note)))   # the command as code
    warning = f' <b class="warning">{shown}</b>' if note else ""
    return ('<p id="gx-docs">Dataset expectations (Great Expectations Data Docs): '
            f'<a href="gx/index.html">gx/index.html</a>{warning}</p>')


def write_validation_report(out_dir: Path, result, config: Path, run_id: str = "dry run",
                            docs_note: str = "") -> Path:
    from etl.validate.where import location

    out_dir.mkdir(parents=True, exist_ok=True)
    q = result.quarantine.copy()
    fixes = {r: c.how_to_fix for r, c in catalog().items()}
    q.insert(0, "where", [location(r) for r in q.to_dict("records")] if len(q) else [])
    q["how_to_fix"] = q["rule_id"].map(fixes).fillna("") if len(q) else []
    write_csv(q.assign(run_id=run_id), out_dir / "quarantine.csv")
    rules = []
    for (rule, severity), group in q.groupby(["rule_id", "severity"], sort=False):
        check = catalog().get(rule)
        rules.append({"rule_id": rule, "severity": severity, "count": len(group),
                      "category": check.kahn_category if check else "", "how_to_fix": fixes.get(rule, ""),
                      "samples": group.head(SAMPLES_PER_RULE).to_dict("records")})
    rules.sort(key=lambda r: (r["severity"] != "error", r["rule_id"] == "CASCADE_PATIENT", -r["count"]))
    summary = {"site_id": result.site_id, "run_id": run_id, "patients_read": result.patients_read,
               "patients_would_load": result.patients_read - result.patients_quarantined,
               "patients_would_quarantine": result.patients_quarantined, "warnings": result.warnings,
               "files": result.files.to_dict("records"),
               "rules": [{k: r[k] for k in ("rule_id", "severity", "count", "category", "how_to_fix")} for r in rules],
               "unmapped_columns": getattr(result, "unmapped", {}) or {}}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    from jinja2 import FileSystemLoader

    env = html_env(FileSystemLoader(TEMPLATES))
    html = env.get_template("validation.html.j2").render(s=summary, rules=rules, config=str(config),
                                                         gx_docs=Markup(docs_line(docs_note)))
    path = out_dir / "index.html"
    path.write_text(html, encoding="utf-8")
    return path
