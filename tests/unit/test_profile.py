"""`carpool profile`: every demo export (and the REDCap one) is read, every column named,
every direct identifier flagged, and no identifier value printed anywhere; malformed
inputs give one line naming the file, never a traceback."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from etl.cli import app
from etl.compile import convert
from etl.compile.mapping import load_mapping
from etl.onboarding.profile import profile_column, profile_paths
from etl.read.readers import ROW, read_source
from etl.read.sniff import sniff

ROOT = Path(__file__).resolve().parents[2]
SITES = ROOT / "sites"
# per center: the identifier columns of each profiled table (by source file / sheet)
IDENTIFIERS = {
    "center_a": {"cart_patients": {"name", "mrn", "dob", "phone"}},
    "center_b": {"患者": {"姓名", "住院号", "出生日期", "联系电话"}, "毒性": {"姓名"}, "检验": set()},
    "center_c": {"cart_events": {"name", "mrn", "birth_date", "phone"}},
    "center_d": {"cart_study": {"name", "mrn", "dob", "phone"}},
    "center_e": {"cart_redcap_raw": {"pt_name", "mrn", "dob", "phone"}},
}


def _exports(center: str) -> list[Path]:
    return sorted((SITES / center / "export").iterdir())


def _values(v) -> set[str]:
    if convert.is_missing(v):
        return set()
    out = {str(v).strip()}
    if hasattr(v, "isoformat"):
        out.add(v.isoformat()[:10])
    if isinstance(v, float) and v.is_integer():
        out.add(str(int(v)))
    return out


def identifier_values(center: str) -> set[str]:
    """Every identifier value in the center's files, minus values that also occur in a
    non-identifier column (those are not identifying: a shared date, a common number)."""
    mapping = load_mapping(SITES / center / "mapping.yml")
    ids, other = set(), set()
    for name, src in mapping.sources.items():
        frame = read_source(name, src, mapping.site_dir).frame
        id_cols = set(mapping.identifiers.columns) | {c for c in frame.columns if c == "姓名"}
        for col in frame.columns:
            if col == ROW:
                continue
            vals = set().union(*(_values(v) for v in frame[col]))
            (ids if col in id_cols else other).update(vals)
    return {v for v in ids - other if len(v) >= 4}


@pytest.mark.parametrize("center", sorted(IDENTIFIERS))
def test_profile_names_every_column_and_hides_identifiers(center, tmp_path):
    paths = _exports(center)
    result = CliRunner().invoke(app, ["profile", *map(str, paths), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "profile.json").read_text(encoding="utf-8"))
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    by_table = {(t["source"].get("sheet") or Path(t["path"]).stem): t for t in report["tables"]}
    assert set(by_table) == set(IDENTIFIERS[center])
    for tname, expected in IDENTIFIERS[center].items():
        table = by_table[tname]
        flagged = {c["name"] for c in table["columns"] if c["identifier"]}
        assert flagged == expected, tname
        for c in table["columns"]:
            assert c["name"] in result.stdout and c["name"] in html
    secrets = identifier_values(center)
    assert len(secrets) >= 20
    texts = {"stdout": result.output, "html": html, "json": json.dumps(report, ensure_ascii=False)}
    for where, text in texts.items():
        leaked = sorted(v for v in secrets if v in text)
        assert not leaked, f"{center}: identifier values in {where}: {leaked[:3]}"


def test_profile_sniffs_the_four_formats():
    c = sniff(SITES / "center_c" / "export" / "cart_events.csv")[0].source
    assert (c.encoding, c.delimiter, c.decimal, c.header_row) == ("gb18030", ";", ",", 1)  # a superset of GBK
    b = sniff(SITES / "center_b" / "export" / "cart_export_2023-03.xlsx")
    assert [(s.source.sheet, s.source.header_row) for s in b] == [("患者", 2), ("毒性", 2), ("检验", 2)]
    assert sniff(SITES / "center_d" / "export" / "cart_study.sav")[0].source.format == "sav"
    assert sniff(SITES / "center_e" / "export" / "cart_redcap_raw.csv")[0].source.format == "redcap"


def test_profile_reports_mixed_excel_dates_and_decimal_commas():
    tables, errors = profile_paths(_exports("center_b") + _exports("center_c"))
    assert not errors
    cols = {(t.name, c.name): c for t in tables for c in t.columns}
    infusion = next(c for (t, n), c in cols.items() if n == "回输日期")
    assert infusion.type == "date" and set(infusion.date_formats) == {"excel_serial", "ymd_slash"}
    value = cols[("cart_events", "value")]
    assert value.type == "number" and value.min == "-12.5"       # the planted negative IL-6, read as -12,5
    assert cols[("cart_events", "event")].code_like


def test_profile_reads_redcap_dictionary_checkboxes_and_instruments():
    export = _exports("center_e")
    tables, errors = profile_paths(export)        # the dictionary is recognized among the paths
    assert not errors and len(tables) == 1
    t = tables[0]
    assert t.instruments == {"(base row)": 10, "toxicity_episode": 15, "lab_result": 40}
    cols = {c.name: c for c in t.columns}
    assert cols["tx_given___1"].label.endswith(": Tocilizumab")
    assert cols["tox_type"].instrument == "toxicity_episode" and cols["tox_type"].nulls == 0
    assert cols["sex"].value_labels == {"1": "Male", "2": "Female"} and cols["sex"].code_like
    assert cols["mp_start"].instrument == "" and cols["mp_start"].rows == 10


def test_content_patterns_flag_identifiers_under_innocent_headers():
    phones = profile_column("col7", ["139-1234-5678", "139-2234-5678", "139-3234-5679", ""])
    ids = profile_column("x", ["110105194912310025", "11010519491231002X", "110105195001010011"])
    names = profile_column("who", ["Wang Wei", "Li Na", "Zhang Min", "Chen Jing"])
    for cp in (phones, ids, names):
        assert cp.identifier and cp.top == [] and cp.min is None
    assert "(content)" in phones.identifier and phones.shape[0][0] == "999-9{4}-9{4}"
    assert profile_column("sex", ["M", "F", "M", "F"]).identifier is None


def test_title_rows_above_a_csv_header_are_skipped(tmp_path):
    p = tmp_path / "export.csv"
    p.write_text("CAR-T export 2023\n\npid;grade;temp\n1;2;38,5\n2;1;39,1\n", encoding="utf-8")
    s = sniff(p)[0].source
    assert (s.header_row, s.delimiter, s.decimal) == (3, ";", ",")


def _malformed(tmp_path: Path) -> dict[str, Path]:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(256)) * 8)
    truncated = tmp_path / "truncated.csv"
    truncated.write_text("id,sex,grade,onset_date\nA1,M,2,2021-01-02\nA2,F", encoding="utf-8")
    fake = tmp_path / "workbook.xlsx"
    fake.write_text("id,sex\nA1,M\n", encoding="utf-8")
    text_sav = tmp_path / "study.sav"
    text_sav.write_text("not spss", encoding="utf-8")
    return {"empty": empty, "binary": binary, "truncated": truncated, "fake_xlsx": fake, "text_sav": text_sav}


@pytest.mark.parametrize("case", ["empty", "binary", "truncated", "fake_xlsx", "text_sav"])
def test_malformed_input_is_one_line_naming_the_file(case, tmp_path):
    path = _malformed(tmp_path)[case]
    result = CliRunner().invoke(app, ["profile", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and str(path) in errors[0], result.output


def test_scaffold_refuses_a_malformed_export_with_one_line(tmp_path):
    path = _malformed(tmp_path)["truncated"]
    result = CliRunner().invoke(app, ["scaffold", str(path), "--site", "center_x", "--sites-dir", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert re.search(r"truncated\.csv: line 3: 2 fields, header has 4", result.output.replace("\n", ""))


def test_spss_value_and_variable_labels_are_shown():
    tables, errors = profile_paths(_exports("center_d"))
    cols = {c.name: c for c in tables[0].columns}
    assert not errors and cols["sex"].value_labels == {"1": "male", "2": "female"}
    assert cols["pid"].label == "Study patient number" and cols["sex"].code_like


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=600), ext=st.sampled_from([".csv", ".xlsx", ".sav", ".txt", ""]))
def test_random_junk_is_a_profile_or_one_error_line_never_a_crash(tmp_path, data, ext):
    path = tmp_path / f"junk{ext}"
    path.write_bytes(data)
    tables, errors = profile_paths([path])
    assert len(tables) + len(errors) >= 1
    for e in errors:
        assert "\n" not in e and str(path) in e
