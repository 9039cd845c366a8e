"""Issue 15 item 1 and issue 14 item 6: `carpool sql` is a read-only sandbox with honest output.

Every statement of the committed hostile corpus (tests/corpus/hostile_sql.txt) is refused
with exactly one line and exit 2; afterwards every file under the output folder is
byte-identical and nothing appeared in the scratch folder the statements aim at.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from etl.cli import app
from etl.errors import UsageError
from warehouse.sandbox import check_query, open_readonly, run_query

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus" / "hostile_sql.txt"
EXPORT = ROOT / "sites" / "center_a" / "export" / "cart_patients.csv"
runner = CliRunner()


def corpus() -> list[tuple[str, str]]:
    text = "\n".join(x for x in CORPUS.read_text(encoding="utf-8").splitlines() if not x.startswith("#"))
    parts = re.split(r"^==== (\S+)\n", text, flags=re.M)[1:]
    return list(zip(parts[::2], parts[1::2], strict=True))


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def test_corpus_has_at_least_40_hostile_statements():
    cases = corpus()
    assert len(cases) >= 40
    assert len({n for n, _ in cases}) == len(cases), "case names must be unique"


@pytest.fixture(scope="module")
def sandbox(demo, tmp_path_factory):
    cfg, _ = demo
    scratch = tmp_path_factory.mktemp("hostile-target")
    parquet = next((cfg.out / "parquet" / "patient").resolve().rglob("*.parquet"))
    return cfg, scratch, {"tmp": str(scratch), "export": str(EXPORT), "db": str(cfg.out / "warehouse.duckdb"),
                          "parquet": str(parquet)}


def test_every_hostile_statement_is_refused_with_one_line_and_changes_nothing(sandbox):
    cfg, scratch, where = sandbox
    before, sites_before = tree_digest(cfg.out.resolve().parent), tree_digest(ROOT / "sites")
    accepted = []
    for name, sql in corpus():
        sql = sql.format(**where)
        result = runner.invoke(app, ["sql", "--config", str(cfg.path), "--", sql])
        lines = [x for x in result.output.splitlines() if x.strip()]
        if result.exit_code != 2 or len(lines) != 1 or not lines[0].startswith("error: SQL"):
            accepted.append(f"{name}: exit {result.exit_code}, output {result.output!r}")
    assert not accepted, "\n".join(accepted)
    assert tree_digest(cfg.out.resolve().parent) == before, "a refused statement changed the output folder"
    assert tree_digest(ROOT / "sites") == sites_before
    assert not any(scratch.rglob("*")), "a statement wrote into the scratch folder"


def test_a_second_statement_is_refused_before_the_first_runs():
    with pytest.raises(UsageError, match="exactly one statement"):
        check_query("SELECT 1; SELECT 2")
    with pytest.raises(UsageError, match="read-only"):
        check_query("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x")
    assert check_query("WITH x AS (SELECT 1 AS a) SELECT a FROM x -- trailing comment").startswith("WITH")


def test_the_connection_itself_is_locked(sandbox):
    """Even a statement that got past the parser check could not reopen files or settings."""
    cfg, scratch, _ = sandbox
    con = open_readonly(cfg.out / "warehouse.duckdb")
    try:
        for sql in ["SET enable_external_access = true", "SET lock_configuration = false",
                    f"COPY (SELECT 1) TO '{scratch}/x.csv'", f"SELECT * FROM read_csv('{EXPORT}')",
                    "LOAD httpfs", "INSTALL httpfs"]:
            with pytest.raises(Exception, match="(?i)locked|disabled|permission|read-only"):
                con.execute(sql)
        settings = dict(con.execute("SELECT name, value FROM duckdb_settings() WHERE name IN "
                                    "('enable_external_access', 'lock_configuration')").fetchall())
        assert settings == {"enable_external_access": "false", "lock_configuration": "true"}
    finally:
        con.close()


def test_ordinary_queries_and_views_still_work(sandbox):
    cfg, _, _ = sandbox
    n = run_query(cfg.out / "warehouse.duckdb", "SELECT count(*) AS n FROM analysis_patient").to_pylist()[0]["n"]
    assert n > 0
    groups = run_query(cfg.out / "warehouse.duckdb",
                       "WITH g AS (SELECT tox_group FROM analysis_patient) "
                       "SELECT count(DISTINCT tox_group) AS k FROM g")
    assert groups.to_pylist()[0]["k"] >= 2
    # views over Parquet beside the DuckDB file (analysis_result reads the run's results/ link)
    run_query(cfg.out / "warehouse.duckdb", "SELECT count(*) AS n FROM analysis_result")


def test_values_print_as_data_not_console_markup(sandbox):
    cfg, _, _ = sandbox
    r = runner.invoke(app, ["sql", "--config", str(cfg.path), "SELECT '[b]bold[/b] [/] [red]x' AS v"])
    assert r.exit_code == 0, r.output
    assert "[b]bold[/b] [/] [red]x" in r.output


def test_null_is_null_empty_or_json_null_and_integers_stay_integers(sandbox):
    cfg, _, _ = sandbox
    q = "SELECT * FROM (VALUES (NULL::INTEGER, 'a'), (2, NULL)) t(n, s) ORDER BY n NULLS FIRST"
    table = runner.invoke(app, ["sql", "--config", str(cfg.path), q])
    assert "NULL" in table.output and "nan" not in table.output and "<NA>" not in table.output
    csv = runner.invoke(app, ["sql", "--config", str(cfg.path), "-f", "csv", q])
    assert csv.output.splitlines() == ["n,s", ",a", "2,"]
    js = runner.invoke(app, ["sql", "--config", str(cfg.path), "-f", "json", q])
    assert json.loads(js.output) == [{"n": None, "s": "a"}, {"n": 2, "s": None}]


def test_unknown_format_is_refused_and_parquet_is_written(sandbox, tmp_path):
    cfg, _, _ = sandbox
    bad = runner.invoke(app, ["sql", "--config", str(cfg.path), "-f", "xml", "SELECT 1"])
    assert bad.exit_code == 2 and "xml" in bad.output
    dest = tmp_path / "p.parquet"
    ok = runner.invoke(app, ["sql", "--config", str(cfg.path), "-f", "parquet", "-o", str(dest),
                             "SELECT study_id, age_years FROM patient ORDER BY study_id"])
    assert ok.exit_code == 0, ok.output
    frame = pq.read_table(dest).to_pandas()
    assert len(frame) > 0 and list(frame.columns) == ["study_id", "age_years"]
    no_file = runner.invoke(app, ["sql", "--config", str(cfg.path), "-f", "parquet", "SELECT 1"])
    assert no_file.exit_code == 2 and "--out" in no_file.output


def test_csv_cells_that_look_like_formulas_are_neutralized(sandbox):
    cfg, _, _ = sandbox
    r = runner.invoke(app, ["sql", "--config", str(cfg.path), "-f", "csv",
                            "SELECT '=HYPERLINK(\"http://x\")' AS a, -5 AS b, '-5' AS c, '@SUM(A1)' AS d"])
    frame = pd.read_csv(__import__("io").StringIO(r.output), dtype=str)
    assert frame.iloc[0].tolist() == ["'=HYPERLINK(\"http://x\")", "-5", "-5", "'@SUM(A1)"]
