"""The CLI is a thin, documented layer: every command's --help carries an example, and a
user mistake or a data problem ends in one line and an exit code, never a traceback."""
from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from etl.cli import app

runner = CliRunner()


def _commands() -> list[str]:
    group = typer.main.get_command(app)
    return sorted(group.commands)


def test_the_cli_has_the_documented_commands():
    assert set(_commands()) >= {"refresh", "validate", "sql", "runs", "analyze", "demo", "twin",
                                "freeze", "export-aggregates", "profile", "scaffold"}


@pytest.mark.parametrize("command", _commands())
def test_every_command_help_has_an_example(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"`carpool {command} --help` has no example"


def test_every_command_is_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    missing = [c for c in _commands() if f"carpool {c}" not in readme]
    assert not missing, f"README.md does not mention: {missing}"


def test_missing_config_is_exit_2_without_traceback(tmp_path):
    result = runner.invoke(app, ["refresh", "--config", str(tmp_path / "nope.yml")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "nope.yml" in result.output


def test_unknown_config_key_names_file_line_and_key(tmp_path):
    cfg = tmp_path / "carpool.yml"
    cfg.write_text("cutoff_date: 2023-03-01\nsites: []\nsitez: 1\n")
    result = runner.invoke(app, ["runs", "--config", str(cfg)])
    assert result.exit_code == 2
    assert "carpool.yml:3" in result.output and "sitez" in result.output
    assert "Traceback" not in result.output


def test_unreadable_export_is_exit_1_one_line_naming_the_file(tmp_path):
    site = tmp_path / "site_x"
    (site / "export").mkdir(parents=True)
    (site / "export" / "data.csv").write_bytes(b"")
    (site / "mapping.yml").write_text(
        "site_id: site_x\nsources:\n  main: {path: export/data.csv, format: csv}\n"
        "identifiers: {source: main, local_id: id, columns: [id]}\n"
        "tables:\n  patient:\n    source: main\n    columns: {local_id: id}\n")
    cfg = tmp_path / "carpool.yml"
    cfg.write_text(f"cutoff_date: 2023-03-01\noutput_dir: {tmp_path / 'out'}\n"
                   f"demo: true\npseudonym_key: {{demo_key: test-key-0123456789}}\n"
                   f"sites:\n  - {{id: site_x, mapping: {site / 'mapping.yml'}}}\n")
    result = runner.invoke(app, ["refresh", "--config", str(cfg)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "data.csv" in result.output and "empty" in result.output


def test_sql_is_read_only(tmp_path):
    result = runner.invoke(app, ["sql", "--config", str(tmp_path / "x.yml"), "SELECT 1"])
    assert result.exit_code == 2  # no config: a usage error, not a crash


@pytest.mark.parametrize("message", ["plain line", "[bold]markup[/bold] as typed [link=x]y[/link]",
                                     "bell\x07 back\x08 vt\x0b ff\x0c cr\r end", "ünïcode ✓ 登记",
                                     "a\ttab"])
def test_a_log_line_reads_the_same_with_rich_and_without(message, capsys, monkeypatch):
    """On a terminal a line goes through rich (colour); elsewhere (a log file, a scheduler's
    capture) it is printed without loading rich, and must read as rich writes it: the same
    control characters dropped. A tab is kept there; rich expands it to spaces."""
    from etl import cli

    monkeypatch.setattr(cli._State, "json_log", False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")    # rich: no colour codes, so the two lines compare as text
    monkeypatch.setattr(cli, "_terminal", lambda: False)
    cli.log("info", message)
    without = capsys.readouterr().err
    monkeypatch.setattr(cli, "_terminal", lambda: True)
    cli.console.cache_clear()   # a Console bound to this test's captured stderr
    cli.log("info", message)
    with_rich = capsys.readouterr().err
    cli.console.cache_clear()
    assert with_rich == without.expandtabs(8)
    assert "\r" not in without and "\x07" not in without


def test_demo_says_the_demo_key_banner_once(monkeypatch):
    """`carpool demo` is a refresh and an analysis of one run: the demo key's banner once."""
    from types import SimpleNamespace

    from etl import cli, commands
    from etl.config import DEMO_BANNER

    def refresh(config, only, full, log, **kw):
        log("banner", DEMO_BANNER, style="bold yellow", key_source="demo")
        return SimpleNamespace(status="ok", exit_code=0, storage_fault=False)

    def analyze(config, plan, snapshot, log):
        log("banner", DEMO_BANNER, style="bold yellow", key_source="demo")
        log("report", "report: out/report/index.html")

    said = []
    monkeypatch.setattr(commands, "do_refresh", refresh)
    monkeypatch.setattr(commands, "do_analyze", analyze)
    monkeypatch.setattr(cli, "log", lambda event, message, **kw: said.append(event))
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert said == ["banner", "report"]
