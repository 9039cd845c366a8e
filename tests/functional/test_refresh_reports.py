"""Every refresh writes each validated site's report and quarantine CSV, stamped with the
run id (issue 13 item 4): before, they appeared only after `carpool validate` and went
stale without notice."""
from __future__ import annotations

import csv
import json


def test_refresh_writes_each_sites_report_stamped_with_the_run(demo):
    cfg, outcome = demo
    for site in outcome.sites:
        folder = cfg.out / "validation" / site.site_id
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        assert summary["run_id"] == outcome.run_id and summary["site_id"] == site.site_id
        assert f"Run <code>{outcome.run_id}</code>" in (folder / "index.html").read_text(encoding="utf-8")
        with (folder / "quarantine.csv").open(encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == len(site.quarantine)
        assert {r["run_id"] for r in rows} <= {outcome.run_id}
        assert summary["patients_would_quarantine"] == site.patients_quarantined
