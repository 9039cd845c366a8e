"""The per-site validation report a data manager reads: out/validation/<site>/.

Writes `index.html` (a one-page summary: rows read, would load, would quarantine, by
rule; sample failing rows with the source row and column as a person sees them in the
file), `quarantine.csv` (every finding) and `summary.json`, each stamped with the run that
wrote it (`carpool refresh` writes them for every site it validates; `carpool validate`
stamps a dry run), so a stale report says so.
"""
from __future__ import annotations

import json
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from schemas.catalog import catalog

TEMPLATES = Path(__file__).parent / "templates"
SAMPLES_PER_RULE = 5


def write_validation_report(out_dir: Path, result, config: Path, run_id: str = "dry run") -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    q = result.quarantine
    q.assign(run_id=run_id).to_csv(out_dir / "quarantine.csv", index=False)
    rules = []
    for (rule, severity), group in q.groupby(["rule_id", "severity"], sort=False):
        check = catalog().get(rule)
        rules.append({"rule_id": rule, "severity": severity, "count": len(group),
                      "category": check.kahn_category if check else "",
                      "samples": group.head(SAMPLES_PER_RULE).to_dict("records")})
    rules.sort(key=lambda r: (r["severity"] != "error", r["rule_id"] == "CASCADE_PATIENT", -r["count"]))
    summary = {"site_id": result.site_id, "run_id": run_id, "patients_read": result.patients_read,
               "patients_would_load": result.patients_read - result.patients_quarantined,
               "patients_would_quarantine": result.patients_quarantined, "warnings": result.warnings,
               "files": result.files.to_dict("records"),
               "rules": [{k: r[k] for k in ("rule_id", "severity", "count", "category")} for r in rules]}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape())
    html = env.get_template("validation.html.j2").render(s=summary, rules=rules, config=str(config),
                                                         gx_index="gx/index.html")
    path = out_dir / "index.html"
    path.write_text(html, encoding="utf-8")
    return path
