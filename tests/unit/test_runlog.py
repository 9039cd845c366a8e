"""The run log: torn, non-UTF-8 and non-record lines are skipped and reported, never fatal."""
import os

from warehouse.runlog import RESERVE, append_run, read_runs, refresh_runs


def rec(run_id: str, **kw) -> dict:
    return {"run_id": run_id, "status": "ok", "started_at": "2026-01-01T00:00:00+00:00", **kw}


def test_torn_line_does_not_swallow_the_next_record(tmp_path):
    (tmp_path / "run_log.jsonl").write_text('{"run_id": "a", "status": "ok", "started_at": "x"}\n{"run_id": "b", "sta')
    append_run(tmp_path, rec("c"))
    assert [r["run_id"] for r in read_runs(tmp_path)] == ["a", "c"]


def test_non_utf8_null_list_and_partial_records_are_skipped_and_reported(tmp_path):
    """The damage that broke `carpool runs` and every rebuilding refresh (issue 16)."""
    good = [rec("a"), rec("b")]
    path = tmp_path / "run_log.jsonl"
    append_run(tmp_path, good[0])
    with path.open("ab") as fh:
        fh.write(b"\xff\xfe not utf-8 \x80\n" + b"null\n" + b"[1,2]\n" + b'{"run_id": "no status"}\n'
                 + b'{"run_id": 5, "status": "ok", "started_at": "x"}\n' + b'"a string"\n')
    append_run(tmp_path, good[1])
    said = []
    runs = read_runs(tmp_path, said.append)
    assert runs == good
    assert len(said) == 1 and "skipped 6 unreadable line(s), kept 2 run(s)" in said[0]
    assert "line 2: not UTF-8" in said[0] and "line 3: not a run record (null)" in said[0]


def test_refresh_runs_keeps_refresh_lines_and_lines_from_before_commands_existed(tmp_path):
    runs = [rec("a"), rec("b", command="refresh"), rec("c", command="analyze"), rec("d", command="freeze")]
    assert [r["run_id"] for r in refresh_runs(runs)] == ["a", "b"]


def test_space_for_the_next_line_is_reserved_past_the_end(tmp_path):
    """fallocate(KEEP_SIZE): the size is the text, the allocated blocks cover the reserve too,
    so a run failing on a full disk can still write its line."""
    append_run(tmp_path, rec("a"))
    st = os.stat(tmp_path / "run_log.jsonl")
    assert st.st_size < 1000
    assert st.st_blocks * 512 >= RESERVE, "no reserve allocated (file system without fallocate?)"
