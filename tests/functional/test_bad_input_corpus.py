"""The bad-input corpus (tests/corpus/bad_inputs/, written by tests/corpus/make_bad_inputs.py):
every case through `carpool profile`, `validate` and `refresh`, in process.

For each case: no traceback; the exit code and the message its row in cases.csv expects;
per file rows_read = rows_loaded + rows_quarantined; and after a failed refresh (an
unreadable export or a config error) the last good warehouse is byte-for-byte what it was.
A refresh over the quarantine threshold (exit 1, status data_errors) publishes with the bad
rows quarantined, as documented; it must reconcile. Refresh runs where it adds something: for
every case validate refuses (the warehouse must survive) and for every format's control.
GX Data Docs are left out (etl.commands.site_docs, which `validate` calls, patched away; a refresh
builds none): they are not what a bad input tests, and they cost seconds per call.
"""
from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from etl.cli import app

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus" / "bad_inputs"
KEY = "corpus-test-key-0123456789abcdef"
with (CORPUS / "cases.csv").open(encoding="utf-8", newline="") as _fh:
    CASES = {r["case"]: r for r in csv.DictReader(_fh)}
ECHO_MAX = 5_000   # no message repeats a megabyte cell or header (csv_header_1mb, csv_cell_1mb)
TEMPLATES = {"a": ("center_a", "patients", "export/cart_patients.csv"),
             "e": ("center_e", "redcap", "export/cart_redcap_raw.csv")}


def _site(root: Path, case: dict) -> Path:
    """A site folder for the case: the template's mapping, code lists and export, one input replaced."""
    center, source, export = TEMPLATES[case["template"]]
    site = root / center
    shutil.copytree(ROOT / "sites" / center / "codes", site / "codes")
    (site / "export").mkdir()
    src = ROOT / "sites" / center / "export"
    if case["template"] == "a":  # the corpus's good export: a 6-patient slice
        shutil.copy(CORPUS / "csv_good_control.csv", site / export)
    else:
        for f in src.iterdir():
            shutil.copy(f, site / "export" / f.name)
    mapping = yaml.safe_load((ROOT / "sites" / center / "mapping.yml").read_text(encoding="utf-8"))
    file = CORPUS / case["file"]
    role = case["role"]
    if role == "export":
        target = site / "export" / case["file"]
        shutil.copy(file, target)
        spec = mapping["sources"][source]
        fmt = json.loads(case["source"])
        base = {"path": f"export/{case['file']}", "format": fmt.pop("format", spec["format"])}
        if "dictionary" in spec:
            base["dictionary"] = spec["dictionary"]
        mapping["sources"][source] = {**base, **fmt}
    elif role == "dictionary":
        shutil.copy(file, site / "export" / "cart_redcap_dictionary.csv")
    elif role == "codes":
        shutil.copy(file, site / "codes" / "sex.csv")
    (site / "mapping.yml").write_text(yaml.safe_dump(mapping, allow_unicode=True, sort_keys=False), encoding="utf-8")
    if role == "mapping":
        shutil.copy(file, site / "mapping.yml")
    return site


def _config(root: Path, site: Path, out: Path, site_id: str) -> Path:
    cfg = root / "carpool.yml"
    cfg.write_text(yaml.safe_dump({"study": "corpus", "cutoff_date": "2023-03-01", "output_dir": str(out),
                                   "pseudonym_key": {"env": "CARPOOL_PSEUDONYM_KEY"},
                                   "sites": [{"id": site_id, "mapping": str(site / "mapping.yml")}]}),
                   encoding="utf-8")
    return cfg


def _fingerprint(out: Path) -> str | None:
    """The published warehouse: which run it is and every byte of it."""
    live = out / "warehouse.duckdb"
    if not live.exists():
        return None
    h = hashlib.sha256(str(live.resolve()).encode())
    h.update(live.resolve().read_bytes())
    return h.hexdigest()


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    import etl.commands

    monkeypatch.setattr(etl.commands, "site_docs", lambda *args: None)
    monkeypatch.setenv("CARPOOL_PSEUDONYM_KEY", KEY)


@pytest.fixture(scope="session")
def good_outs(tmp_path_factory):
    """One last-good warehouse per template, built once and shared by every case's refresh."""
    outs = {}
    mp = pytest.MonkeyPatch()
    mp.setenv("CARPOOL_PSEUDONYM_KEY", KEY)
    import etl.commands

    mp.setattr(etl.commands, "site_docs", lambda *args: None)
    try:
        for t, (center, _, _) in TEMPLATES.items():
            root = tmp_path_factory.mktemp(f"good_{t}")
            case = {"template": t, "role": "none", "file": "csv_good_control.csv"}
            site = _site(root, case)
            out = tmp_path_factory.mktemp(f"out_{t}") / "out"
            cfg = _config(root, site, out, center)
            result = CliRunner().invoke(app, ["refresh", "--config", str(cfg)])
            assert result.exit_code == 0, result.output
            outs[t] = out
    finally:
        mp.undo()
    return outs


def _run(args: list[str]):
    result = CliRunner().invoke(app, args)
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not crashed and "Traceback" not in result.output, (
        f"traceback in `carpool {args[0]}`: {type(result.exception).__name__}: {result.exception}")
    longest = max(map(len, result.output.splitlines()), default=0)
    assert longest <= ECHO_MAX, f"`carpool {args[0]}` printed a {longest:,}-character line (an input echoed whole?)"
    return result


def _text(result) -> str:
    return " ".join(result.output.split())


def _reconciles(folder: Path) -> None:
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    for f in summary["files"]:
        assert f["rows_read"] == f["rows_loaded"] + f["rows_quarantined"], f


def _param(name: str):
    reason = CASES[name]["xfail"]
    return pytest.param(name, marks=pytest.mark.xfail(reason=reason, strict=False)) if reason else name


def test_the_corpus_has_every_kind_of_bad_input():
    assert len(CASES) >= 100
    exts = {Path(c["file"]).suffix for c in CASES.values()}
    assert {".csv", ".xlsx", ".sav", ".yml"} <= exts
    assert {c["role"] for c in CASES.values()} >= {"export", "mapping", "codes", "dictionary"}
    assert any(c["template"] == "e" for c in CASES.values())  # REDCap


@pytest.mark.parametrize("name", [_param(n) for n in CASES])
def test_bad_input(name, tmp_path, good_outs):
    case = CASES[name]
    center = TEMPLATES[case["template"]][0]
    site = _site(tmp_path, case)
    if case["profile"] != "-":
        r = _run(["profile", str(site / "export" / case["file"]), "--out", str(tmp_path / "profile")])
        assert r.exit_code == int(case["profile"]), _text(r)
        if r.exit_code:
            errors = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
            assert errors and case["file"] in r.output, r.output
    out = tmp_path / "out"
    cfg = _config(tmp_path, site, out, center)
    r = _run(["validate", "--site", center, "--config", str(cfg)])
    assert r.exit_code == int(case["validate"]), _text(r)
    if case["message"]:
        assert case["message"] in _text(r), _text(r)
    if r.exit_code in (0, 1) and (out / "validation" / center / "summary.json").exists():
        _reconciles(out / "validation" / center)
    if case["validate"] == case["refresh"] == "0" and not name.endswith("_control"):
        return  # loads in validate: refresh adds nothing the controls don't show
    shared = good_outs[case["template"]]
    before = _fingerprint(shared)
    cfg = _config(tmp_path, site, shared, center)
    r = _run(["refresh", "--config", str(cfg)])
    assert r.exit_code == int(case["refresh"]), _text(r)
    if r.exit_code == 0 or _last_status(shared) == "data_errors":  # published, the bad rows quarantined
        _reconciles(shared / "validation" / center)
    else:
        assert _fingerprint(shared) == before, "a failed refresh changed the last good warehouse"


def _last_status(out: Path) -> str:
    lines = (out / "run_log.jsonl").read_text(encoding="utf-8").splitlines()
    return json.loads(lines[-1])["status"]
