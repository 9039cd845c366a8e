"""`carpool twin` regenerates the committed truth table and all four exports exactly."""
from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from etl.cli import app

SITES = Path(__file__).resolve().parents[2] / "sites"
FILES = ["twin/truth.csv", "center_a/export/cart_patients.csv",
         "center_b/export/cart_export_2023-03.xlsx", "center_c/export/cart_events.csv",
         "center_d/export/cart_study.sav"]


def test_carpool_twin_regenerates_the_committed_files(tmp_path):
    result = CliRunner().invoke(app, ["twin", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "synthetic" in result.output
    differ = [f for f in FILES if (tmp_path / f).read_bytes() != (SITES / f).read_bytes()]
    assert not differ, f"regenerated files differ from the committed ones: {differ}"
