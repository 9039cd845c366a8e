"""Issue 16, unit level: lock takeovers are logged, storage faults are recognized, damaged
site caches are named, result sets are pruned and leftovers found."""
import errno
import json
import os

import duckdb
import pandas as pd
import pytest

from etl.errors import StorageError, storage_error, storage_fault
from warehouse import results, sitecache
from warehouse.lock import NAME, refresh_lock
from warehouse.runlog import read_runs


def test_a_dead_holders_record_is_reported_and_logged_as_interrupted(tmp_path):
    (tmp_path / NAME).write_text(json.dumps({"command": "freeze", "run_id": "freeze-x", "pid": 999999,
                                             "started": "2026-01-01T00:00:00+00:00", "phase": "copying"}))
    said = []
    with refresh_lock(tmp_path, on_stale=said.append, command="refresh", run_id="R2") as holder:
        holder.phase("building the warehouse")
        rec = json.loads((tmp_path / NAME).read_text())
        assert rec["run_id"] == "R2" and rec["phase"] == "building the warehouse"
    assert (tmp_path / NAME).read_text().strip() == "{}"          # a clean exit blanks the record
    assert len(said) == 1 and "freeze run freeze-x" in said[0] and "during copying" in said[0]
    (last,) = read_runs(tmp_path)
    assert last["status"] == "interrupted" and last["run_id"] == "freeze-x" and last["command"] == "freeze"


def test_no_stale_report_after_a_clean_exit(tmp_path):
    said = []
    with refresh_lock(tmp_path, on_stale=said.append):
        pass
    with refresh_lock(tmp_path, on_stale=said.append):
        pass
    assert said == [] and read_runs(tmp_path) == []


def test_an_unwritable_out_is_a_storage_error_not_a_traceback(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores file modes (the matrix covers a read-only mount)")
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(StorageError, match="permission denied while taking the lock"):
            with refresh_lock(tmp_path / "out"):
                pass
    finally:
        tmp_path.chmod(0o755)


@pytest.mark.parametrize("exc, kind", [
    (OSError(errno.ENOSPC, "No space left on device"), "disk full"),
    (OSError(errno.EROFS, "Read-only file system"), "read-only file system"),
    (duckdb.IOException('Could not write file "x": No space left on device'), "disk full"),
    (ValueError("not a storage problem"), None),
])
def test_storage_faults_are_recognized(exc, kind):
    assert storage_fault(exc) == kind
    if kind:
        msg = str(storage_error(exc, "building the warehouse"))
        assert msg.startswith(f"{kind} while building the warehouse") and "\n" not in msg


def _cache(out, site="center_a"):
    d = out / "sites" / site
    d.mkdir(parents=True)
    for name in ("patient", "quarantine", "files"):
        pd.DataFrame({"a": [1]}).to_parquet(d / f"{name}.parquet")
    m = {"site_id": site, "input_hash": "h", "tables": ["patient"], "patients_read": 1,
         "patients_quarantined": 0, "warnings": 0}
    (d / "manifest.json").write_text(json.dumps(m))
    return d


def test_sitecache_check_names_what_is_damaged(tmp_path):
    assert sitecache.check(tmp_path, "center_a") == (None, None)          # no cache yet: not a problem
    d = _cache(tmp_path)
    assert sitecache.check(tmp_path, "center_a")[0]["input_hash"] == "h"
    (d / "patient.parquet").write_bytes(b"PAR1 cut")
    assert "patient.parquet is missing or unreadable" in sitecache.check(tmp_path, "center_a")[1]
    (d / "manifest.json").write_text("null")
    assert "not a JSON object" in sitecache.check(tmp_path, "center_a")[1]
    (d / "manifest.json").write_text('{"site_id": "center_a"}')
    assert "lacks or has a wrong input_hash" in sitecache.check(tmp_path, "center_a")[1]


def test_parquet_frame_check_finds_files_cut_or_overwritten_and_passes_whole_ones(tmp_path):
    """The cache check reads a Parquet file's frame without pyarrow. Where it finds damage,
    pyarrow's footer read fails too, except for an overwritten head, which pyarrow does not
    look at (the check is stricter there: the site is rebuilt)."""
    import pyarrow.parquet as pq

    good = tmp_path / "good.parquet"
    pd.DataFrame({"a": list(range(1000)), "b": ["x"] * 1000}).to_parquet(good)
    data = good.read_bytes()
    assert sitecache.parquet_frame_problem(good) is None
    pq.read_metadata(good)
    bad = {
        "cut": data[: len(data) // 2],
        "tail cut": data[:-1],
        "zeroed": bytes(len(data)),
        "short": b"PAR1 cut",
        "footer too long": data[:-8] + len(data).to_bytes(4, "little") + b"PAR1",
    }
    for name, content in {**bad, "head overwritten": b"XXXX" + data[4:]}.items():
        path = tmp_path / f"{name}.parquet"
        path.write_bytes(content)
        assert sitecache.parquet_frame_problem(path), name
        if name in bad:
            with pytest.raises(sitecache.corrupt_errors()):
                pq.read_metadata(path)
    assert "FileNotFoundError" in sitecache.parquet_frame_problem(tmp_path / "gone.parquet")


def test_results_prune_keeps_linked_and_newer_sets_and_leftovers_are_found(tmp_path):
    out = tmp_path
    run = out / "runs" / "R1"
    run.mkdir(parents=True)
    (run / ".published").write_text("ok\n")
    root = out / "results"
    for name in ("R1.1", "R1.2", "R1.3", "GONE.1"):
        (root / name).mkdir(parents=True)
    assert results.attach(root / "R1.2", run)
    dead = root / ".tmp-999999-R1.4"
    dead.mkdir()
    assert results.leftovers(out) == ["R1.4"] and not dead.exists()
    results.prune(out)
    assert sorted(p.name for p in root.iterdir()) == ["R1.2", "R1.3"]   # older and run-less sets go
    assert (run / "results").resolve() == (root / "R1.2").resolve()
