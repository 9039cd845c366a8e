"""`carpool scaffold`: a reviewed draft that parses, with TODOs, identifiers and code lists."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etl.cli import app
from etl.compile.mapping import load_mapping
from sites.twin import redcap_e

ROOT = Path(__file__).resolve().parents[2]
SITES = ROOT / "sites"


def _scaffold(center: str, sites_dir: Path, site: str = "center_new", *extra: str):
    paths = [str(p) for p in sorted((SITES / center / "export").iterdir())]
    return CliRunner().invoke(app, ["scaffold", *paths, "--site", site, "--sites-dir", str(sites_dir), *extra])


@pytest.mark.parametrize("center", ["center_a", "center_b", "center_c", "center_d", "center_e"])
def test_draft_parses_for_every_demo_export(center, tmp_path):
    result = _scaffold(center, tmp_path)
    assert result.exit_code == 0, result.output
    mapping = load_mapping(tmp_path / "center_new" / "mapping.yml")
    assert mapping.identifiers.columns, "identifiers marked for dropping"
    assert mapping.identifiers.local_id != "TODO"
    assert "patient" in mapping.tables


def test_redcap_draft_uses_instruments_checkboxes_and_code_lists(tmp_path):
    result = _scaffold("center_e", tmp_path)
    assert result.exit_code == 0, result.output
    site = tmp_path / "center_new"
    text = (site / "mapping.yml").read_text(encoding="utf-8")
    m = load_mapping(site / "mapping.yml")
    assert m.sources["cart_redcap_raw"].format == "redcap"
    assert m.identifiers.columns == ["pt_name", "mrn", "dob", "phone"] and m.identifiers.birth_date.from_ == "dob"
    assert m.tables["patient"].where == {"redcap_repeat_instrument": [""]}
    assert m.tables["toxicity"].where == {"redcap_repeat_instrument": ["toxicity_episode"]}
    assert m.tables["lab"].columns["value"].unit_from == "lab_unit"
    melt = m.tables["toxicity_treatment"].melt
    assert [(g.when, g.columns["agent"].value) for g in melt] == [
        ("tx_given___1", "tocilizumab"), ("tx_given___2", "dexamethasone"), ("tx_given___3", "methylprednisolone")]
    assert all(g.skip == [0] and g.columns["start_date"].from_ for g in melt)
    assert "# TODO: product" in text and "# TODO: source_scale" in text
    with (site / "codes" / "response.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["source_value"] for r in rows} == {"1", "2", "3", "4"}       # observed + labelled
    assert all(r["target_value"] == "" for r in rows)                        # waiting for a person
    assert {r["source_value"]: r["suggested"] for r in rows}["1"] == "CR"


def test_scaffold_never_overwrites_a_mapping(tmp_path):
    assert _scaffold("center_a", tmp_path).exit_code == 0
    again = _scaffold("center_a", tmp_path)
    assert again.exit_code == 2 and "--force" in again.output
    assert _scaffold("center_a", tmp_path, "center_new", "--force").exit_code == 0


def test_scaffold_rejects_a_bad_site_id(tmp_path):
    result = _scaffold("center_a", tmp_path, "Center-F")
    assert result.exit_code == 2 and "site id" in result.output


def test_redcap_e_export_regenerates_byte_identically(tmp_path):
    for path in redcap_e.write(tmp_path):
        assert path.read_bytes() == (SITES / "center_e" / "export" / path.name).read_bytes()


def test_profile_and_scaffold_help_have_an_example():
    for cmd in ("profile", "scaffold"):
        result = CliRunner().invoke(app, [cmd, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0 and "Example:" in result.output, cmd
