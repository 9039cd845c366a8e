"""Regression (issue 13): `carpool profile` printed patient names from a Big5 export, read
as cp1252 (`陳大文` -> `³¯¤j¤å`), and missed `姓名`, `nombre_completo`, `kis_nr`, `contatto`.

Each export below is written in one encoding, with names, MRNs and phones under known and
unknown headers. The profile must read it in the right encoding, flag every identifier
column, and show none of the values in stdout, index.html or profile.json, in any byte
form: the text itself, its bytes in any of the encodings involved, the mojibake a wrong
decoding gives, JSON and HTML escapes.
"""
from __future__ import annotations

import html
import json

import pytest
from typer.testing import CliRunner

from etl.cli import app
from etl.read.encoding import detect_encoding
from etl.read.sniff import sniff

TRAD = ["陳大文", "王小明", "李美玲", "張偉強", "黃志強", "林淑芬"]
SIMP = ["陈大文", "王小明", "李美玲", "张伟强", "黄志强", "林淑芬"]
JAPANESE = ["山田太郎", "佐藤花子", "鈴木一郎", "高橋美咲", "田中健一", "伊藤恵子"]
KOREAN = ["김민준", "이서연", "박지훈", "최수빈", "정예준", "강하은"]
LATIN = ["José Muñoz", "Ana Peña", "Jürgen Müller", "François Lefèvre", "Søren Ødegård", "Inès Côté"]
PHONES = ["0912-345-678", "0922-456-789", "0933-567-890", "0944-678-901", "0955-789-012", "0966-890-123"]
MRNS = ["KIS-4410021", "KIS-4410022", "KIS-4410023", "KIS-4410024", "KIS-4410025", "KIS-4410026"]
DOBS = ["1961-02-03", "1958-11-30", "1972-07-14", "1966-05-09", "1980-12-24", "1955-03-17"]


def _rows(header: list[str], names: list[str], sex: list[str], named: bool = True) -> str:
    lines = [",".join(header)]
    for i, n in enumerate(names):
        lines.append(",".join([f"P{i + 1:03d}", n, sex[i % 2], str(40 + i), PHONES[i], MRNS[i], DOBS[i],
                               f"2021-0{i + 1}-1{i}", str(i % 4)]))
    return "\n".join(lines) + "\n"


TAIL = ["contatto", "kis_nr", "geboren", "infusion_date", "crs_grade"]
CASES = {
    # name -> (encoding written, text); the name column has a known header in some, an unknown one in others
    "big5": ("big5", _rows(["patient_id", "姓名", "性別", "年齡", *TAIL], TRAD, ["男", "女"])),
    "gbk": ("gbk", _rows(["patient_id", "病人", "性别", "年龄", *TAIL], SIMP, ["男", "女"])),   # unknown header
    "shift_jis": ("shift_jis", _rows(["patient_id", "氏名", "性別", "年齢", *TAIL], JAPANESE, ["男", "女"])),
    "euc_kr": ("euc_kr", _rows(["patient_id", "성명", "성별", "나이", *TAIL], KOREAN, ["M", "F"])),
    "latin1": ("latin-1", _rows(["patient_id", "nombre_completo", "sexo", "edad", *TAIL], LATIN, ["M", "F"])),
    "cp1252": ("cp1252", _rows(["patient_id", "wer", "sex", "age", *TAIL], LATIN, ["M", "F"])),  # unknown header
    "utf16_le_bom": ("utf-16", _rows(["patient_id", "姓名", "sex", "age", *TAIL], SIMP, ["M", "F"])),
    "utf16_le": ("utf-16-le", _rows(["patient_id", "who", "sex", "age", *TAIL], TRAD, ["M", "F"])),
    "utf16_be": ("utf-16-be", _rows(["patient_id", "氏名", "sex", "age", *TAIL], JAPANESE, ["M", "F"])),
    "utf16_be_bom": ("utf-16-be", _rows(["patient_id", "name_x", "sex", "age", *TAIL], LATIN, ["M", "F"])),
}
ENCODINGS = ["utf-8", "utf-16-le", "utf-16-be", "big5", "gbk", "gb18030", "shift_jis", "cp932", "euc_kr",
             "cp1252", "latin-1"]
MISREAD = ["cp1252", "latin-1", "gbk", "big5", "shift_jis", "cp1250", "mac_roman"]


def _write(tmp_path, case: str):
    enc, text = CASES[case]
    data = text.encode(enc)
    if case == "utf16_be_bom":
        data = b"\xfe\xff" + data
    path = tmp_path / f"{case}.csv"
    path.write_bytes(data)
    return path, text


def _forms(secret: str) -> set[bytes]:
    """Every byte sequence under which `secret` could show up in an output."""
    texts = {secret, html.escape(secret), json.dumps(secret)[1:-1], secret.encode("unicode_escape").decode()}
    out = set()
    for enc in ENCODINGS:
        try:
            raw = secret.encode(enc)
        except UnicodeEncodeError:
            continue
        out.add(raw)
        for wrong in MISREAD:  # the mojibake a wrong decoding prints, as the UTF-8 output holds it
            try:
                mojibake = raw.decode(wrong)
            except UnicodeDecodeError:
                continue
            if mojibake != secret:
                texts.add(mojibake)
    for t in texts:
        for enc in ("utf-8", "utf-16-le", "utf-16-be"):
            out.add(t.encode(enc))
    return {b for b in out if len(b) >= 4}


@pytest.mark.parametrize("case", sorted(CASES))
def test_profile_detects_the_encoding(case, tmp_path):
    path, text = _write(tmp_path, case)
    enc, _ = detect_encoding(path.read_bytes(), path)
    assert path.read_bytes().decode(enc).removeprefix("\ufeff") == text
    assert sniff(path)[0].source.encoding == enc


@pytest.mark.parametrize("case", sorted(CASES))
def test_profile_never_shows_a_name_in_any_byte_form(case, tmp_path):
    path, text = _write(tmp_path, case)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["profile", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "profile.json").read_text(encoding="utf-8"))
    cols = {c["name"]: c for c in report["tables"][0]["columns"]}
    header = text.splitlines()[0].split(",")
    flagged = {n for n, c in cols.items() if c["identifier"]}
    assert flagged == {header[1], "contatto", "kis_nr", "geboren"}, flagged
    assert "direct identifiers (4)" in result.output
    outputs = {"stdout": result.output.encode("utf-8"), "html": (out / "index.html").read_bytes(),
               "json": (out / "profile.json").read_bytes()}
    names = [line.split(",")[1] for line in text.splitlines()[1:]]
    secrets = names + PHONES + MRNS + DOBS
    for where, blob in outputs.items():
        for secret in secrets:
            leaked = [f for f in _forms(secret) if f in blob]
            assert not leaked, f"{case}: {secret!r} in {where} as {leaked[0]!r}"


@pytest.mark.parametrize("header", ["姓名", "氏名", "성명", "患者氏名", "환자 이름", "nombre_completo", "Nachname",
                                    "cognome", "nom_prenom", "naam"])
def test_name_headers_in_any_script_are_identifiers(header):
    from etl.onboarding.headers import identifier_kind

    assert identifier_kind(header) == "name"


@pytest.mark.parametrize(("header", "kind"), [("kis_nr", "mrn"), ("contatto", "phone"), ("電話番号", "phone"),
                                              ("생년월일", "birth_date"), ("fecha_nacimiento", "birth_date"),
                                              ("Geburtsdatum", "birth_date"), ("codice_fiscale", "national_id"),
                                              ("病歷號", "mrn"), ("주민등록번호", "national_id")])
def test_identifier_headers_in_any_language(header, kind):
    from etl.onboarding.headers import identifier_kind

    assert identifier_kind(header) == kind


@pytest.mark.parametrize("header", ["drug_name", "nombre_farmaco", "sex", "age", "crs_grade", "patient_id",
                                    "record_id", "tox_scale", "lab_test_name"])
def test_clinical_headers_are_not_identifiers(header):
    from etl.onboarding.headers import identifier_kind

    assert identifier_kind(header) is None


def test_clinical_code_columns_are_not_names():
    from etl.onboarding.profile import profile_column

    for values in (["Complete Remission", "Partial Response", "No Response", "Progressive Disease"],
                   ["Dexamethasone IV", "Methylprednisolone IV", "Tocilizumab", "Hydrocortisone IV"]):
        assert profile_column("x", values).identifier is None
    assert profile_column("x", ["Anna Lee", "Mark Penn", "Li Na", "Jean-Luc Picard"]).identifier == "name (content)"
