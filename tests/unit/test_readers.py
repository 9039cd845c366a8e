"""Readers: raw values with row numbers a person can open; unreadable files are InputError."""
from datetime import date

import pytest

from etl.compile.mapping import Source
from etl.errors import InputError
from etl.read.readers import read_source


def read(tmp_path, name, content, **kw):
    p = tmp_path / name
    p.write_bytes(content) if isinstance(content, bytes) else p.write_text(content, encoding="utf-8")
    kw.setdefault("format", "csv")
    return read_source("src", Source(path=name, **kw), tmp_path)


def unreadable(tmp_path, name, content, **kw) -> str:
    """The InputError message; also asserts it is one line naming the file."""
    with pytest.raises(InputError) as exc:
        read(tmp_path, name, content, **kw)
    msg = str(exc.value)
    assert "\n" not in msg
    assert name in msg
    return msg


def test_csv_values_and_line_numbers(tmp_path):
    t = read(tmp_path, "p.csv", '\ufeffid , name\nP1,"Ann, B"\n\n"P2","multi\nline"\nP3,x\n')
    assert list(t.frame.columns) == ["id", "name", "_source_row"]
    assert t.frame.to_dict("records") == [
        {"id": "P1", "name": "Ann, B", "_source_row": 2},
        {"id": "P2", "name": "multi\nline", "_source_row": 5},  # line where the record ends
        {"id": "P3", "name": "x", "_source_row": 6},
    ]
    assert t.rows_read == 3 and t.label == "p.csv" and t.sheet is None


def test_csv_header_row_skips_title_lines(tmp_path):
    t = read(tmp_path, "p.csv", "Export of 2023\n\nid;v\nP1;1,5\n", header_row=3, delimiter=";")
    assert t.frame.to_dict("records") == [{"id": "P1", "v": "1,5", "_source_row": 4}]


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_source("src", Source(path="nope.csv", format="csv"), tmp_path)


def test_empty_file(tmp_path):
    assert "file is empty" in unreadable(tmp_path, "e.csv", b"")


def test_binary_file(tmp_path):
    assert "binary" in unreadable(tmp_path, "b.csv", bytes(range(256)) * 8)


def test_binary_without_nul_bytes_is_bad_encoding(tmp_path):
    assert "not valid utf-8" in unreadable(tmp_path, "b.csv", bytes(range(128, 256)) * 8)


def test_truncated_csv_short_last_line(tmp_path):
    msg = unreadable(tmp_path, "t.csv", "id,a,b\nP1,1,2\nP2,3")
    assert "line 3: 2 fields, header has 3" in msg


def test_bad_encoding(tmp_path):
    msg = unreadable(tmp_path, "g.csv", "编号,性别\nP1,男\n".encode("gbk"))
    assert "not valid utf-8 at byte 0" in msg and "encoding:" in msg


def test_unknown_encoding(tmp_path):
    assert "unknown encoding 'klingon'" in unreadable(tmp_path, "k.csv", "a\n1\n", encoding="klingon")


def test_gbk_read_as_declared(tmp_path):
    t = read(tmp_path, "g.csv", "编号,性别\nP1,男\n".encode("gbk"), encoding="gbk")
    assert t.frame.to_dict("records") == [{"编号": "P1", "性别": "男", "_source_row": 2}]


def test_duplicate_header(tmp_path):
    assert "column 'a' appears twice" in unreadable(tmp_path, "d.csv", "a,b,a\n1,2,3\n")


def test_no_header_on_header_row(tmp_path):
    assert "no header row (expected on line 5)" in unreadable(tmp_path, "h.csv", "a\n1\n", header_row=5)


def test_multichar_delimiter(tmp_path):
    assert "cannot read as csv" in unreadable(tmp_path, "m.csv", "a;;b\n1;;2\n", delimiter=";;")


@pytest.mark.parametrize("fmt", ["excel", "sav"])
def test_csv_given_as_other_format(tmp_path, fmt):
    msg = unreadable(tmp_path, "p.csv", "id,a\nP1,1\n", format=fmt)
    assert fmt in msg or "Excel" in msg


def test_garbage_zip_as_excel(tmp_path):
    assert "not a readable Excel workbook" in unreadable(tmp_path, "g.xlsx", b"PK\x03\x04garbage", format="excel")


def test_unterminated_quote_is_an_error_not_swallowed_rows(tmp_path):
    """Regression: a CSV cut inside a quoted field (or with a stray opening quote) read
    without error, the rest of the file swallowed into one cell, so rows vanished
    from rows_read without trace."""
    msg = unreadable(tmp_path, "q.csv", 'id,note\nP1,"cut here\nP2,ok\nP3,ok\n')
    assert "line" in msg and "quote" in msg


def test_whitespace_only_file_has_no_header(tmp_path):
    """Regression: a file of blank lines read as a table with no columns (or one
    nameless column) instead of an InputError; the mapper then blamed the mapping."""
    assert "no header row" in unreadable(tmp_path, "w.csv", "\n \n\n")


def _xlsx(path, rows, title="Sheet1", extra_sheet=False):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for r in rows:
        ws.append(r)
    if extra_sheet:
        wb.create_sheet("Other").append(["x"])
    wb.save(path)


def test_excel_rows_keep_sheet_row_numbers(tmp_path):
    _xlsx(tmp_path / "w.xlsx", [["Title"], ["id", "d", "n", None], ["P1", date(2023, 1, 2), 1.5],
                                [None, None, None], ["  P2 ", None, 2]], title="患者", extra_sheet=True)
    t = read_source("src", Source(path="w.xlsx", format="excel", sheet="患者", header_row=2), tmp_path)
    rec = t.frame.to_dict("records")
    assert [r["_source_row"] for r in rec] == [3, 5]
    assert rec[0]["id"] == "P1" and rec[0]["n"] == 1.5 and rec[0]["d"] == date(2023, 1, 2)
    assert rec[1]["id"] == "P2"
    assert t.label == "w.xlsx [患者]"


def test_excel_missing_sheet_and_short_sheet(tmp_path):
    _xlsx(tmp_path / "w.xlsx", [["id"]])
    msg = unreadable(tmp_path, "w.xlsx", (tmp_path / "w.xlsx").read_bytes(), format="excel", sheet="Nope")
    assert "no sheet 'Nope' (sheets: Sheet1)" in msg
    msg = unreadable(tmp_path, "w.xlsx", (tmp_path / "w.xlsx").read_bytes(), format="excel", header_row=3)
    assert "no header on row 3" in msg


def test_sav_garbage(tmp_path):
    assert "cannot read as sav" in unreadable(tmp_path, "s.sav", b"\x00" * 200, format="sav")


def test_sav_reads_case_numbers_and_labels(tmp_path):
    pyreadstat = pytest.importorskip("pyreadstat")
    import pandas as pd
    pyreadstat.write_sav(pd.DataFrame({"pid": ["A", "B"], "sex": [1.0, None]}), str(tmp_path / "s.sav"),
                         variable_value_labels={"sex": {1.0: "Male"}})
    t = read_source("src", Source(path="s.sav", format="sav", value_labels=True), tmp_path)
    assert t.frame.to_dict("records") == [{"pid": "A", "sex": "Male", "_source_row": 1},
                                          {"pid": "B", "sex": None, "_source_row": 2}]
    assert t.value_labels == {"sex": {1.0: "Male"}}
