"""`carpool federate`: the study plan over every configured site as a separate mock vantage6 node.

Each site's node data is its own `analysis_patient` (`federated.site_data.site_frame`, from
its Parquet partition); vantage6's `MockAlgorithmClient` runs the partials of
`federated.algorithm` in-process, one organization per site, and `central` coordinates. The
node policy comes from carpool.yml's `federated:` section (written to a JSON file named by
`$CARPOOL_FEDERATED_POLICY`, as a real node would be configured). Outputs under
`<output_dir>/federated/`: `report/` (index.html, statistics.csv, figures), `results.duckdb`
(`analysis_result` with run_id "federated:<run>", and `federation`: rounds and bytes per site),
`disclosure/<site>.jsonl` (every number that left each site) and `central.json`.
"""
from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
from vantage6.algorithm.tools.mock_client import MockAlgorithmClient

from analysis.plan import load_plan
from analysis.report import render_report
from etl.errors import CarpoolError
from federated import algorithm
from federated.disclosure import POLICY_ENV, DisclosureConfig, SiteRefused
from federated.results import plan_results
from federated.site_data import site_frame


class FederationRefused(CarpoolError):
    """A site refused (disclosure control); the message names the site and the rule."""

    exit_code = 1


@contextmanager
def node_policy(policy: DisclosureConfig, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(policy.model_dump_json(), encoding="utf-8")
    old = os.environ.get(POLICY_ENV)
    os.environ[POLICY_ENV] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(POLICY_ENV, None)
        else:
            os.environ[POLICY_ENV] = old


def run_federated(frames: dict[str, pd.DataFrame], plan_path: Path | None, policy: DisclosureConfig,
                  work: Path) -> dict:
    """The central's JSON output for `frames` ({site: analysis_patient}), one mock node each."""
    plan = load_plan(plan_path) if plan_path else load_plan()
    client = MockAlgorithmClient(datasets=[[{"database": df}] for df in frames.values()],
                                 module=algorithm.__name__)
    with node_policy(policy, work / "node_policy.json"):
        return algorithm.central(mock_client=client, plan=plan.model_dump(mode="json"))


def federate(out: Path, sites: list[str], cutoff_date: str, policy: DisclosureConfig,
             plan_path: Path | None, run_id: str, meta: dict) -> Path:
    """Run the plan federated over `sites` (read from out/parquet) and write out/federated/."""
    root = out / "federated"
    disclosure = root / "disclosure"
    shutil.rmtree(disclosure, ignore_errors=True)
    policy = policy.model_copy(update={"log_dir": disclosure})
    frames = {s: site_frame(out / "parquet", s, cutoff_date) for s in sites}
    output = run_federated(frames, plan_path, policy, root)
    (root / "central.json").write_text(json.dumps(output, indent=1), encoding="utf-8")
    plan = load_plan(plan_path) if plan_path else load_plan()
    results = plan_results(plan, output)
    fed = output["federation"]
    meta = dict(meta, federated=fed, policy=output["policy"], n_patients=results.populations.get("all"))
    report = render_report(results, None, meta=meta)
    table = pd.DataFrame(output["table"])
    from etl.analyze import write_report  # the same writer as `carpool analyze`

    write_report(root / "report", report, "<p>The paper audit runs on the centralized warehouse only.</p>",
                 table)
    _store(root / "results.duckdb", table, fed, f"federated:{run_id}")
    return root / "report" / "index.html"


def _store(db: Path, table: pd.DataFrame, fed: dict, run_id: str) -> None:
    from warehouse.results import COLUMNS as cols

    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db))
    try:
        con.execute(f"CREATE TABLE analysis_result ({', '.join(f'{c} {t}' for c, t, _ in cols)}, suppressed BOOLEAN)")
        rows = table.assign(run_id=run_id)
        con.register("_rows", rows.reindex(columns=[c for c, _, _ in cols] + ["suppressed"]))
        con.execute("INSERT INTO analysis_result SELECT * FROM _rows")
        sites = pd.DataFrame([{"site_id": s, "bytes_sent": v["bytes"], "requests": v["requests"],
                               "rounds": fed["rounds"]} for s, v in fed["sites"].items()])
        con.register("_sites", sites)
        con.execute("CREATE TABLE federation AS SELECT * FROM _sites")
    finally:
        con.close()


def federate_config(cfg, plan_path: Path | None, log) -> Path:
    """`carpool federate` on a Config: the enabled sites of the last published refresh."""
    from etl.errors import UsageError

    db = cfg.out / "warehouse.duckdb"
    if not (cfg.out / "parquet").is_dir() or not db.exists():
        raise UsageError(f"no site outputs under {cfg.out}: run `carpool refresh --config {cfg.path}` first")
    con = duckdb.connect(str(db), read_only=True)
    try:
        run_id = (con.execute("SELECT value FROM study_config WHERE key = 'run_id'").fetchone() or [""])[0]
    finally:
        con.close()
    sites = [s.id for s in cfg.sites if s.enabled]
    meta = {"run_id": f"federated:{run_id}", "cutoff_date": str(cfg.cutoff_date), "study": cfg.study,
            "plan": str(plan_path or "analysis/plans/study.yml")}
    try:
        index = federate(cfg.out, sites, str(cfg.cutoff_date), cfg.federated, plan_path, run_id, meta)
    except SiteRefused as exc:
        raise FederationRefused(str(exc)) from None
    fed = json.loads((cfg.out / "federated" / "central.json").read_text(encoding="utf-8"))["federation"]
    log("federate", f"{len(sites)} sites as mock vantage6 nodes, {fed['rounds']} rounds; bytes sent: "
        + ", ".join(f"{s} {v['bytes']}" for s, v in fed["sites"].items()))
    log("federate", f"report: {index}")
    return index
