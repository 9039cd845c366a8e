from warehouse.runlog import append_run, read_runs


def test_torn_line_does_not_swallow_the_next_record(tmp_path):
    (tmp_path / "run_log.jsonl").write_text('{"run_id": "a"}\n{"run_id": "b", "sta')
    append_run(tmp_path, {"run_id": "c"})
    assert [r["run_id"] for r in read_runs(tmp_path)] == ["a", "c"]
