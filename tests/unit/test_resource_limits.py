"""Issue 15 item 8: bounded resources. Each hostile input is a one-line error or a finding,
never a crash or gigabytes of memory."""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from etl.compile.mapping import Source
from etl.errors import ConfigError, InputError
from etl.read.readers import MAX_FIELD_CHARS, read_source
from etl.read.sniff import sniff
from etl.yamlfile import MAX_BYTES, read_yaml
from schemas.cell_limits import oversize_findings

BOMB = "\n".join(["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
                 + [f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)])


def test_yaml_alias_bomb_is_a_clear_error(tmp_path):
    """Regression: a billion-laughs carpool.yml grew past 13 GB."""
    (tmp_path / "carpool.yml").write_text(BOMB)
    with pytest.raises(ConfigError, match="alias bomb"):
        read_yaml(tmp_path / "carpool.yml")


def test_yaml_recursive_alias_and_too_many_aliases(tmp_path):
    (tmp_path / "r.yml").write_text("a: &a [1, *a]\n")
    with pytest.raises(ConfigError, match="refers to itself"):
        read_yaml(tmp_path / "r.yml")
    (tmp_path / "m.yml").write_text("a: &a 1\nb: [" + ", ".join(["*a"] * 1001) + "]\n")
    with pytest.raises(ConfigError, match="more than 1000 aliases"):
        read_yaml(tmp_path / "m.yml")


def test_yaml_size_and_depth_limits(tmp_path):
    (tmp_path / "big.yml").write_text("a: " + "x" * (MAX_BYTES + 1))
    with pytest.raises(ConfigError, match="holds at most"):
        read_yaml(tmp_path / "big.yml")
    (tmp_path / "deep.yml").write_text("a: " + "[" * 5000 + "]" * 5000)
    with pytest.raises(ConfigError, match="nested too deeply"):
        read_yaml(tmp_path / "deep.yml")


def test_ordinary_anchors_still_load(tmp_path):
    (tmp_path / "ok.yml").write_text("base: &b {x: 1, y: 2}\none: *b\ntwo: {<<: *b, y: 3}\n")
    data, _ = read_yaml(tmp_path / "ok.yml")
    assert data["one"] == {"x": 1, "y": 2} and data["two"] == {"x": 1, "y": 3}


def _xlsx_with_dimension(path: Path, ref: str) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "data"
    sheet.append(["id", "value"])
    sheet.append(["A1", 3])
    book.save(path)
    with zipfile.ZipFile(path) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    xml = parts["xl/worksheets/sheet1.xml"].decode()
    parts["xl/worksheets/sheet1.xml"] = re.sub(r'<dimension ref="[^"]*"', f'<dimension ref="{ref}"', xml).encode()
    assert f'ref="{ref}"' in parts["xl/worksheets/sheet1.xml"].decode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, b in parts.items():
            zf.writestr(n, b)


def test_xlsx_used_range_to_xfd1048576_is_refused_before_reading(tmp_path):
    """Regression: calamine sized its grid from the declared range and aborted (512 GB)."""
    _xlsx_with_dimension(tmp_path / "w.xlsx", "A1:XFD1048576")
    with pytest.raises(InputError, match=r"w.xlsx \[data\].*A1:XFD1048576.*17,179,869,184 cells"):
        read_source("src", Source(path="w.xlsx", format="excel"), tmp_path)
    with pytest.raises(InputError, match="used range"):
        sniff(tmp_path / "w.xlsx")   # `carpool profile` and `scaffold` read through sniff


def test_xlsx_with_a_sane_range_reads(tmp_path):
    _xlsx_with_dimension(tmp_path / "ok.xlsx", "A1:B2")
    t = read_source("src", Source(path="ok.xlsx", format="excel"), tmp_path)
    assert t.frame["id"].tolist() == ["A1"]


def test_csv_field_over_the_limit_is_a_one_line_input_error(tmp_path):
    (tmp_path / "f.csv").write_text("id,notes\n1,\"" + "x" * (MAX_FIELD_CHARS + 10) + "\"\n")
    with pytest.raises(InputError, match="line 2: a field longer than"):
        read_source("src", Source(path="f.csv", format="csv"), tmp_path)


def test_oversized_cell_is_a_finding_showing_only_its_start():
    frame = pd.DataFrame({"_row_id": [0, 1], "local_id": ["P1", "P2"], "product": ["tisa-cel", "y" * 40_000]})
    found = oversize_findings("infusion", frame)
    assert len(found) == 1
    f = found[0]
    assert (f.rule_id, f.severity, f.row_id, f.column, f.local_id) == ("CELL_TOO_LONG", "error", 1, "product", "P2")
    assert "40,000 characters" in f.message and len(f.value) <= 41


def test_a_finding_never_carries_a_huge_value():
    from schemas.catalog import SHOWN_MAX, finding

    f = finding("TYPE_MISMATCH", "patient", 0, "age_years", "9" * 1_000_000, expected="number")
    assert len(f.value) == SHOWN_MAX + 1 and len(f.message) < SHOWN_MAX + 100
