"""Issue 15 item 5: an output folder that can't eat the sites.

Regression: `output_dir: .` deleted 39 files under sites/ (every center's mapping, code
lists and export, replaced by cache Parquet), and an output_dir pointing at an existing,
unrelated folder deleted files there too.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etl.cli import app
from etl.config import load_config
from etl.errors import ConfigError
from etl.outdir import MARKER, claim, remove

runner = CliRunner()


def project(root: Path, output_dir: str) -> Path:
    """A config with one site, its mapping and export, as a data manager lays them out."""
    site = root / "sites" / "center_a"
    (site / "export").mkdir(parents=True)
    (site / "mapping.yml").write_text("site_id: center_a\n")
    (site / "export" / "data.csv").write_text("id,name\n1,Jane Doe\n")
    cfg = root / "carpool.yml"
    cfg.write_text(f"cutoff_date: 2023-03-01\noutput_dir: {output_dir}\ndemo: true\n"
                   "pseudonym_key: {demo_key: test-key-0123456789}\n"
                   "sites:\n  - {id: center_a, mapping: sites/center_a/mapping.yml}\n")
    return cfg


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_output_dir_dot_is_refused_and_sites_survive_a_refresh(tmp_path):
    cfg = project(tmp_path, ".")
    before = digest(tmp_path)
    with pytest.raises(ConfigError, match="is or contains"):
        load_config(cfg)
    r = runner.invoke(app, ["refresh", "--config", str(cfg)])
    assert r.exit_code == 2 and "output_dir" in r.output and "Traceback" not in r.output
    assert digest(tmp_path) == before


def test_a_parent_of_sites_is_refused(tmp_path):
    (tmp_path / "proj").mkdir()
    cfg = project(tmp_path / "proj", str(tmp_path))   # output_dir = the folder above the project
    with pytest.raises(ConfigError, match="site center_a's folder|config file"):
        load_config(cfg)
    cfg.write_text(cfg.read_text().replace(f"output_dir: {tmp_path}", "output_dir: sites"))
    with pytest.raises(ConfigError, match="is or contains site center_a's folder"):
        load_config(cfg)


def test_a_folder_inside_a_site_is_refused(tmp_path):
    cfg = project(tmp_path, "sites/center_a/out")
    with pytest.raises(ConfigError, match="lies inside site center_a's folder"):
        load_config(cfg)


def test_an_unrelated_non_empty_folder_is_refused(tmp_path):
    other = tmp_path / "thesis"
    other.mkdir()
    (other / "chapter1.docx").write_text("years of work")
    cfg = project(tmp_path, "thesis")
    with pytest.raises(ConfigError, match="non-empty folder that carpool did not create"):
        load_config(cfg)
    r = runner.invoke(app, ["refresh", "--config", str(cfg)])
    assert r.exit_code == 2
    assert (other / "chapter1.docx").read_text() == "years of work"


def test_a_new_empty_or_claimed_folder_is_accepted(tmp_path):
    cfg = project(tmp_path, "out")
    assert load_config(cfg).out == tmp_path / "out"          # does not exist yet
    (tmp_path / "out").mkdir()
    load_config(cfg)                                            # exists, empty
    claim(tmp_path / "out")
    (tmp_path / "out" / "run_log.jsonl").write_text("")
    load_config(cfg)                                            # carpool's own, not empty
    assert (tmp_path / "out" / MARKER).is_file()


def test_an_output_folder_from_before_the_marker_is_accepted_but_not_one_with_foreign_files(tmp_path):
    cfg = project(tmp_path, "out")
    (tmp_path / "out" / "runs").mkdir(parents=True)
    (tmp_path / "out" / "run_log.jsonl").write_text("")
    load_config(cfg)
    (tmp_path / "out" / "budget.xlsx").write_text("x")
    with pytest.raises(ConfigError, match="did not create"):
        load_config(cfg)


def test_remove_deletes_only_owned_entries_of_a_claimed_folder(tmp_path):
    out = tmp_path / "out"
    (out / "report").mkdir(parents=True)
    with pytest.raises(RuntimeError, match="refuses to delete"):
        remove(out, out / "report")                             # no marker: not carpool's
    claim(out)
    (out / "notes.txt").write_text("mine")
    for foreign in (out / "notes.txt", out, tmp_path / "elsewhere", out / ".." / "x",
                    out / "report" / ".." / "notes.txt"):
        with pytest.raises(RuntimeError, match="refuses to delete"):
            remove(out, foreign)
    remove(out, out / "report")
    assert not (out / "report").exists() and (out / "notes.txt").exists()
