"""Write the bad-input corpus: `.venv/bin/python tests/corpus/make_bad_inputs.py`.

The same cases every run (the .sav files differ only in the creation time pyreadstat writes).

Each case is one file under tests/corpus/bad_inputs/ that takes the place of one input of a
small site (center_a's mapping reading a 6-patient slice of its CSV export, or center_e's
REDCap export): the export itself (CSV, XLSX, SPSS .sav, REDCap), the mapping.yml, or a code
list. `cases.csv` says which input each file replaces, how the source is read, and what must
happen: the exit code of `carpool profile`, `validate` and `refresh`, and a piece of text the
one-line message must hold (the file, and the row/column where there is one). The outcome
for every case, loaded or not, is also held to: no traceback, rows_read = rows_loaded +
rows_quarantined, and the last good warehouse untouched after a failed refresh
(tests/functional/test_bad_input_corpus.py).
"""
from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).with_name("bad_inputs")
A_EXPORT = ROOT / "sites" / "center_a" / "export" / "cart_patients.csv"
E_EXPORT = ROOT / "sites" / "center_e" / "export" / "cart_redcap_raw.csv"
E_DICT = ROOT / "sites" / "center_e" / "export" / "cart_redcap_dictionary.csv"
A_MAPPING = ROOT / "sites" / "center_a" / "mapping.yml"
N_PATIENTS = 6
SHOWN_AS = {"mapping": "mapping.yml", "codes": "sex.csv", "dictionary": "cart_redcap_dictionary.csv"}
FIELDS = ["case", "file", "template", "role", "source", "profile", "validate", "refresh", "message", "xfail"]

# exit codes: 0 ok, 1 data errors / unreadable export, 2 config error. "-" = command not run for the case
COMPILER = "fixed by the compiler rewrite (issue 10)"


def _a_rows() -> tuple[list[str], list[list[str]]]:
    with A_EXPORT.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], [r for r in rows[1:] if not r[0].startswith("A99")][:N_PATIENTS]


def _csv(header: list[str], rows: list[list], delimiter: str = ",") -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows([header, *rows])
    return buf.getvalue()


class Corpus:
    def __init__(self, out: Path):
        self.out, self.cases = out, []

    def add(self, case: str, data: bytes | str, ext: str = "csv", template: str = "a", role: str = "export",
            source: dict | None = None, profile="0", validate="0", refresh="0", message: str = "",
            xfail: str = "") -> None:
        name = f"{case}.{ext}"
        path = self.out / name
        if isinstance(data, str):
            data = data.encode("utf-8")
        path.write_bytes(data)
        if role != "export":
            profile = "-"
        self.cases.append({"case": case, "file": name, "template": template, "role": role,
                           "source": json.dumps(source or {}), "profile": profile, "validate": validate,
                           "refresh": refresh, "message": message.replace("{file}", SHOWN_AS.get(role, name)),
                           "xfail": xfail})

    def write_index(self) -> None:
        with (self.out / "cases.csv").open("w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, FIELDS, lineterminator="\n")
            w.writeheader()
            w.writerows(self.cases)


def with_cell(column: str, value, row: int = 0) -> tuple[list[str], list[list]]:
    header, rows = _a_rows()
    rows = [list(r) for r in rows]
    rows[row][header.index(column)] = value
    return header, rows


def csv_cases(c: Corpus) -> None:
    header, rows = _a_rows()
    good = _csv(header, rows)
    c.add("csv_good_control", good)
    c.add("csv_empty", b"", profile="1", validate="1", refresh="1", message="{file}: file is empty")
    c.add("csv_blank_lines_only", "\n\n   \n", profile="1", validate="1", refresh="1", message="{file}")
    c.add("csv_header_only", header_line(header), validate="0", refresh="1")
    c.add("csv_binary", bytes(range(256)) * 16, profile="1", validate="1", refresh="1", message="{file}")
    c.add("csv_truncated_last_row", good[: good.rindex("\n", 0, len(good) - 1) + 40], profile="1", validate="1",
          refresh="1", message="{file}: line 7")
    c.add("csv_unbalanced_quote", good.replace("Zhao", '"Zhao', 1), profile="1", validate="1", refresh="1",
          message="{file}: line")
    c.add("csv_wrong_delimiter", _csv(header, rows, ";"), validate="2", refresh="2", message="csv_wrong_delimiter.csv")
    c.add("csv_duplicate_header", header_line(header[:-1] + [header[0]]) + _csv(header, rows).split("\n", 1)[1],
          profile="1", validate="1", refresh="1", message="appears twice in the header")
    c.add("csv_missing_mapped_column", _csv([h for h in header if h != "sex"],
                                            [[v for h, v in zip(header, r, strict=True) if h != "sex"] for r in rows]),
          validate="2", refresh="2", message="has no column(s) ['sex']")
    c.add("csv_extra_columns", _csv(header + ["extra", "more"], [r + ["x", "y"] for r in rows]))
    c.add("csv_short_row", _csv(header, [*rows[:2], rows[2][:-1], *rows[3:]]), profile="1", validate="1",
          refresh="1", message="{file}: line 4: 41 fields, header has 42")
    c.add("csv_nul_byte_inside", good.replace("Zhao", "Zh\x00ao", 1), profile="1", validate="1", refresh="1",
          message="{file}")
    c.add("csv_utf8_bom", "\ufeff" + good)
    c.add("csv_crlf", good.replace("\n", "\r\n"))
    c.add("csv_cr_only", good.replace("\n", "\r"))
    c.add("csv_header_1mb", _csv([*header[:-1], "x" * 1_100_000], rows), profile="1", validate="1", refresh="1",
          message=f"{{file}}: header column {len(header)} is 1,100,000 characters long")
    c.add("csv_cell_1mb", _csv(*with_cell("name", "y" * 1_100_000)))
    c.add("csv_field_300kb_unclosed_quote", good + '"' + "z" * 300_000, profile="1", validate="1", refresh="1",
          message="{file}")
    c.add("csv_5000_rows", _csv(header, [[f"B{i:05d}", *r[1:]] for i in range(5_000) for r in rows[:1]]),
          validate="0", refresh="0")
    c.add("csv_wide_2000_columns", _csv(header + [f"c{i}" for i in range(2000)], [r + ["1"] * 2000 for r in rows]))
    c.add("csv_whitespace_cells", _csv(*with_cell("sex", "   ")), validate="0", refresh="0")
    c.add("csv_title_rows_above_header", "CAR-T export\n\n" + good, source={"header_row": 3})
    c.add("csv_header_row_past_end", good, source={"header_row": 500}, validate="1", refresh="1",
          message="no header row")
    c.add("csv_unknown_encoding_name", good, source={"encoding": "klingon"}, validate="1", refresh="1",
          message="unknown encoding")


def header_line(header: list[str]) -> str:
    return ",".join(header) + "\n"


def encoding_cases(c: Corpus) -> None:
    header, rows = _a_rows()
    good = _csv(header, rows).replace("Zhao Yangyang", "José Müller")
    c.add("enc_latin1_declared_utf8", good.encode("latin-1"), validate="1", refresh="1",
          message="not valid utf-8 at byte")
    c.add("enc_latin1_declared", good.encode("latin-1"), source={"encoding": "latin-1"})
    c.add("enc_cp1252_declared", good.encode("cp1252"), source={"encoding": "cp1252"})
    zh = _csv(header, rows).replace("Zhao Yangyang", "陳大文")
    c.add("enc_big5_declared", zh.encode("big5"), source={"encoding": "big5"})
    # one short Big5 name in an ASCII file: the detector's hint is not reliable here (it says latin-1),
    # which is why a mapping's encoding is never switched silently
    c.add("enc_big5_declared_utf8", zh.encode("big5"), validate="1", refresh="1",
          message="{file}: not valid utf-8 at byte")
    c.add("enc_gbk_declared", zh.replace("陳", "陈").encode("gbk"), source={"encoding": "gbk"})
    c.add("enc_shift_jis_declared", zh.replace("陳大文", "山田太郎").encode("shift_jis"),
          source={"encoding": "shift_jis"})
    for name, enc, bom in (("le_bom", "utf-16-le", b"\xff\xfe"), ("be_bom", "utf-16-be", b"\xfe\xff"),
                           ("le", "utf-16-le", b""), ("be", "utf-16-be", b"")):
        c.add(f"enc_utf16_{name}", bom + zh.encode(enc), source={"encoding": "utf-16" if bom else enc})
    c.add("enc_utf16_declared_utf8", b"\xff\xfe" + zh.encode("utf-16-le"), validate="1", refresh="1",
          message="{file}")


VALUE_CASES = {
    # case: (column, value, validate, refresh, xfail)
    "val_inf_age": ("age", "inf", "0", "0", ""),
    "val_neg_inf_dose": ("dose_1e6_per_kg", "-inf", "0", "0", ""),
    "val_nan_blasts": ("bm_blasts_pct", "NaN", "0", "0", ""),
    "val_1e308_il6": ("il6_peak_pg_ml", "1e308", "0", "0", ""),
    "val_1e400_age": ("age", "1e400", "0", "0", ""),
    "val_huge_int_relapses": ("n_prior_relapses", "99999999999999999999999", "0", "0", ""),
    "val_negative_age": ("age", "-5", "0", "0", ""),
    "val_grade_7": ("crs_grade", "7", "0", "0", ""),
    "val_text_in_number": ("prior_lines", "three", "0", "0", ""),
    "val_thousands_separator": ("il6_peak_pg_ml", "1,234.5", "0", "0", ""),
    "val_arabic_digits": ("age", "٢٨", "0", "0", ""),
    "val_date_zero": ("infusion_date", "0000-00-00", "0", "0", ""),
    "val_date_9999": ("last_contact_date", "9999-12-31", "0", "0", ""),
    "val_date_1800": ("infusion_date", "1800-01-01", "0", "0", ""),
    "val_date_feb_30": ("infusion_date", "2021-02-30", "0", "0", ""),
    "val_empty_local_id": ("patient_id", "", "0", "0", ""),
    "val_duplicate_local_id": ("patient_id", "A0002", "0", "0", ""),
    "val_bidi_in_id": ("patient_id", "A\u202e0001", "0", "0", ""),
    "val_zero_width_in_id": ("patient_id", "A\u200b0001", "0", "0", ""),
    "val_cyrillic_a_id": ("patient_id", "\u04100001", "0", "0", ""),
    "val_emoji_sex": ("sex", "🙂", "0", "0", ""),
    "val_unknown_code": ("disease_status", "maybe", "0", "0", ""),
    "val_markup_close_tag": ("sex", "[/]", "0", "0", ""),
    "val_markup_bold": ("disease_status", "[bold red]x[/bold red]", "0", "0", ""),
    "val_markup_link": ("sex", "[link=file:///etc/passwd]M[/link]", "0", "0", ""),
    "val_html_script": ("sex", "<script>alert(1)</script>", "0", "0", ""),
    "val_html_img": ("disease_status", '"><img src=x onerror=alert(1)>', "0", "0", ""),
    "val_formula_hyperlink": ("sex", '=HYPERLINK("http://x","y")', "0", "0", ""),
    "val_formula_cmd": ("disease_status", "+cmd|' /C calc'!A0", "0", "0", ""),
    "val_formula_at": ("sex", "@SUM(1+1)", "0", "0", ""),
    "val_formula_minus": ("disease_status", "-2+3+cmd|' /C calc'!A0", "0", "0", ""),
    "val_control_chars": ("disease_status", "rel\x07apsed\x1b[31m", "0", "0", ""),
    "val_long_text_10k": ("disease_status", "r" * 10_000, "0", "0", ""),
}


def value_cases(c: Corpus) -> None:
    for case, (col, value, validate, refresh, xfail) in VALUE_CASES.items():
        c.add(case, _csv(*with_cell(col, value)), validate=validate, refresh=refresh, xfail=xfail)
    c.add("val_markup_header", _csv(*_renamed("[/]")), validate="2", refresh="2",
          message="has no column(s) ['sex']")
    c.add("val_script_header", _csv(*_renamed("<script>x</script>")), validate="2", refresh="2",
          message="has no column(s) ['sex']; it has ['<script>x</script>'")


def _renamed(new: str) -> tuple[list[str], list[list[str]]]:
    header, rows = _a_rows()
    return [new if h == "sex" else h for h in header], rows


def xlsx_cases(c: Corpus) -> None:
    import xlsxwriter

    header, rows = _a_rows()
    numeric = {"age", "n_prior_relapses", "prior_lines", "bm_blasts_pct", "ecog", "dose_1e6_per_kg", "crs_grade",
               "icans_grade", "il6_peak_pg_ml", "ferritin_peak_ng_ml", "mrd_pct", "weight_kg"}

    def book(case: str, edit=None, options=None, title_rows: int = 0, **kw) -> None:
        buf = io.BytesIO()
        wb = xlsxwriter.Workbook(buf, {"in_memory": True, **(options or {})})
        wb.set_properties({"created": __import__("datetime").datetime(2024, 1, 1)})  # same bytes every run
        ws = wb.add_worksheet("data")
        for i in range(title_rows):
            ws.write(i, 0, f"title {i}")
        ws.write_row(title_rows, 0, header)
        for r, row in enumerate(rows, start=title_rows + 1):
            for col, v in enumerate(row):
                if header[col] in numeric and v not in ("",):
                    try:
                        ws.write_number(r, col, float(v))
                        continue
                    except ValueError:
                        pass
                ws.write_string(r, col, v) if v != "" else None
        if edit:
            edit(ws, wb, title_rows + 1)
        wb.close()
        source = {"format": "excel", **kw.pop("source", {})}
        c.add(case, buf.getvalue(), "xlsx", source=source, **kw)

    col = header.index
    book("xlsx_good_control")
    book("xlsx_inf_age", lambda ws, wb, r: ws.write_number(r, col("age"), float("inf")),
         {"nan_inf_to_errors": True})
    book("xlsx_nan_blasts", lambda ws, wb, r: ws.write_number(r, col("bm_blasts_pct"), float("nan")),
         {"nan_inf_to_errors": True})
    book("xlsx_1e308_dose", lambda ws, wb, r: ws.write_number(r, col("dose_1e6_per_kg"), 1e308))
    book("xlsx_error_na_death", lambda ws, wb, r: ws.write_formula(r, col("death_date"), "=NA()", None, "#N/A"))
    book("xlsx_error_value_age", lambda ws, wb, r: ws.write_formula(r, col("age"), '="a"+1', None, "#VALUE!"))
    book("xlsx_error_div0", lambda ws, wb, r: ws.write_formula(r, col("ecog"), "=1/0", None, "#DIV/0!"))
    book("xlsx_uncached_formula", lambda ws, wb, r: ws.write_formula(r, col("age"), "=20+8", None, ""))
    book("xlsx_markup_cell", lambda ws, wb, r: ws.write_string(r, col("sex"), "[/]"))
    book("xlsx_formula_text", lambda ws, wb, r: ws.write_string(r, col("sex"), "=HYPERLINK(\"x\")"))
    book("xlsx_date_cells", lambda ws, wb, r: ws.write_datetime(
        r, col("infusion_date"), __import__("datetime").datetime(2016, 9, 10),
        wb.add_format({"num_format": "yyyy-mm-dd"})))
    book("xlsx_bool_cell", lambda ws, wb, r: ws.write_boolean(r, col("age"), True))
    book("xlsx_title_rows", title_rows=2, source={"header_row": 3})
    book("xlsx_wrong_sheet", source={"sheet": "nope"}, validate="1", refresh="1", message="no sheet 'nope'")
    book("xlsx_header_past_end", source={"header_row": 400}, validate="1", refresh="1", message="no header")
    book("xlsx_duplicate_header", lambda ws, wb, r: ws.write_string(r - 1, col("sex"), "age"), profile="1",
         validate="1", refresh="1", message="appears twice")
    good = OUT / "xlsx_good_control.xlsx"
    data = good.read_bytes()
    c.add("xlsx_truncated", data[: len(data) // 2], "xlsx", source={"format": "excel"}, profile="1", validate="1",
          refresh="1", message="{file}")
    c.add("xlsx_garbage_zip", b"PK\x03\x04" + bytes(200), "xlsx", source={"format": "excel"}, profile="1",
          validate="1", refresh="1", message="{file}")
    c.add("xlsx_is_csv_text", _csv(header, rows), "xlsx", source={"format": "excel"}, profile="1", validate="1",
          refresh="1", message="{file}")
    c.add("xlsx_named_csv", data, "csv", profile="1", validate="1", refresh="1", message="{file}")


def sav_cases(c: Corpus) -> None:
    import pandas as pd
    import pyreadstat

    header, rows = _a_rows()
    frame = pd.DataFrame(rows, columns=header)
    for n in ("age", "n_prior_relapses", "prior_lines", "bm_blasts_pct", "ecog", "dose_1e6_per_kg", "crs_grade",
              "icans_grade"):
        frame[n] = pd.to_numeric(frame[n])

    def sav(case: str, edit=None, **kw) -> None:
        f = frame.copy()
        if edit:
            edit(f)
        tmp = OUT / f"{case}.tmp"
        pyreadstat.write_sav(f, str(tmp))
        data = tmp.read_bytes()
        tmp.unlink()
        c.add(case, data, "sav", source={"format": "sav"}, **kw)

    sav("sav_good_control")
    sav("sav_inf_age", lambda f: f.__setitem__("age", [float("inf"), *f["age"][1:]]), xfail=COMPILER)
    sav("sav_neg_inf_dose", lambda f: f.__setitem__("dose_1e6_per_kg", [float("-inf"), *f["dose_1e6_per_kg"][1:]]))
    sav("sav_nan_ecog", lambda f: f.__setitem__("ecog", [float("nan"), *f["ecog"][1:]]))
    sav("sav_1e308_grade", lambda f: f.__setitem__("crs_grade", [1e308, *f["crs_grade"][1:]]))
    sav("sav_markup_sex", lambda f: f.__setitem__("sex", ["[/]", *f["sex"][1:]]))
    sav("sav_zero_cases", lambda f: f.drop(f.index, inplace=True), validate="0", refresh="1")
    data = (OUT / "sav_good_control.sav").read_bytes()
    c.add("sav_truncated", data[: len(data) // 3], "sav", source={"format": "sav"}, profile="1", validate="1",
          refresh="1", message="{file}")
    c.add("sav_text_file", "not spss at all\n", "sav", source={"format": "sav"}, profile="1", validate="1",
          refresh="1", message="{file}")
    c.add("sav_header_garbage", b"$FL2" + bytes(range(256)) * 4, "sav", source={"format": "sav"}, profile="1",
          validate="1", refresh="1", message="{file}")


def redcap_cases(c: Corpus) -> None:
    raw = E_EXPORT.read_text(encoding="utf-8")
    lines = raw.splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")

    def edit_first(column: str, value: str) -> str:
        row = next(i for i, ln in enumerate(lines) if i and ln.split(",")[1] == "")
        cells = lines[row].rstrip("\n").split(",")
        cells[header.index(column)] = value
        return "".join(lines[:row]) + ",".join(cells) + "\n" + "".join(lines[row + 1:])

    kw = {"template": "e", "source": {"format": "redcap"}}
    c.add("redcap_good_control", raw, **kw)
    over = {"validate": "1", "refresh": "1"}  # center_e's 2 planted defects + 1 = 30% > the 25% threshold
    c.add("redcap_inf_blasts", edit_first("bm_blasts", "inf"), **kw, **over,
          message="column bm_blasts (bm_blasts_pct), file redcap_inf_blasts.csv, row 2: bm_blasts_pct = 'inf'")
    c.add("redcap_nan_dose", edit_first("cart_dose", "nan"), **kw, **over,
          message="column cart_dose (dose_1e6_per_kg), file redcap_nan_dose.csv, row 2")
    c.add("redcap_checkbox_2", edit_first("tx_given___1", "2"), **kw)
    c.add("redcap_undeclared_sex", edit_first("sex", "9"), **kw, **over,
          message="UNKNOWN_CODE x1: column sex, file redcap_undeclared_sex.csv, row 2")
    c.add("redcap_markup_phone", edit_first("phone", "[/]"), **kw)
    c.add("redcap_formula_name", edit_first("pt_name", "=cmd|' /C calc'!A0"), **kw)
    c.add("redcap_unknown_instrument", raw.replace("toxicity_episode,1,", "tox_typo,1,", 1), **kw)
    c.add("redcap_no_instrument_column", raw.replace("redcap_repeat_instrument", "repeat_instr", 1), **kw,
          validate="2", refresh="2", message="has no column(s) ['redcap_repeat_instrument']")
    c.add("redcap_header_only", lines[0], **kw, validate="0", refresh="1")
    c.add("redcap_dictionary_garbage", "just,some\ntext,here\n", template="e", role="dictionary", validate="0",
          refresh="0")
    c.add("redcap_dictionary_empty", "", template="e", role="dictionary", validate="0", refresh="0")


def mapping_cases(c: Corpus) -> None:
    text = A_MAPPING.read_text(encoding="utf-8")
    m = {"role": "mapping", "validate": "2", "refresh": "2"}
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8))
    c.add("yaml_alias_bomb", text + "\n" + bomb.replace("a:", "x_a:", 1), "yml", **m, message="{file}")
    c.add("yaml_deep_nesting", text + "\nx: " + "[" * 5000 + "]" * 5000 + "\n", "yml", **m, message="{file}")
    c.add("yaml_duplicate_top_key", text + "\nsite_id: center_a\n", "yml", **m, message="duplicate key")
    sex = "      sex: {from: sex, codes: codes/sex.csv}\n"
    c.add("yaml_duplicate_column_key", text.replace(sex, sex + "      sex: age\n", 1),
          "yml", **m, message="duplicate key 'sex'")
    c.add("yaml_unknown_key", text.replace("date_formats:", "date_fromats:", 1), "yml", **m, message="date_fromats")
    c.add("yaml_invalid", text + "\n  : : [\n", "yml", **m, message="invalid YAML")
    c.add("yaml_not_utf8", text.replace("Center A", "Centre Å").encode("latin-1"), "yml", **m,
          message="not UTF-8")
    c.add("yaml_empty", "", "yml", **m, message="empty")
    c.add("yaml_a_list", "- 1\n- 2\n", "yml", **m, message="{file}")
    c.add("yaml_tab_indent", text.replace("  patients:", "\tpatients:", 1), "yml", **m, message="{file}")
    c.add("yaml_python_tag", text + "\nx: !!python/object/apply:os.system ['echo hi']\n", "yml", **m,
          message="{file}")
    c.add("yaml_bad_date_format", text.replace("date_formats: [iso]", "date_formats: [isoo]"), "yml", **m,
          message="unknown date format")
    c.add("mapping_source_is_directory", text.replace("path: export/cart_patients.csv", "path: export"), "yml",
          **m, message="sources.patients.path: 'export' is a folder, not a file")
    c.add("mapping_source_escapes_site", text.replace("path: export/cart_patients.csv",
                                                      "path: ../../../../../../etc/passwd"), "yml", **m,
          message="outside the site folder")
    c.add("mapping_source_absolute", text.replace("path: export/cart_patients.csv", "path: /etc/passwd"), "yml",
          **m, message="outside the site folder")
    c.add("mapping_codes_is_directory", text.replace("codes: codes/sex.csv", "codes: codes"), "yml", **m,
          message="codes")
    c.add("mapping_codes_escapes_site", text.replace("codes: codes/sex.csv", "codes: ../../../../etc/passwd"), "yml",
          **m, message="outside the site folder")
    c.add("mapping_codes_missing", text.replace("codes: codes/sex.csv", "codes: codes/nope.csv"), "yml", **m,
          message="nope.csv")
    c.add("mapping_site_id_mismatch", text.replace("site_id: center_a", "site_id: center_z"), "yml", **m,
          message="does not match")
    c.add("mapping_todo_left", text.replace("      ecog: ecog\n", "      ecog: ecog\n      # TODO: check ecog\n", 1),
          "yml", **m, message="TODO")
    c.add("codes_todo_target", "source_value,target_value\nMale,M\nFemale,TODO\n", role="codes", validate="2",
          refresh="2", message="TODO")
    c.add("codes_missing_columns", "a,b\nMale,M\n", role="codes", validate="2", refresh="2",
          message="source_value,target_value")
    c.add("codes_formula_target", "source_value,target_value\nMale,=1+1\nFemale,F\n", role="codes", validate="1",
          refresh="1", message="sex = '=1+1' is not in code list")
    c.add("codes_not_utf8", "source_value,target_value\nMäle,M\nFemale,F\nMale,M\n".encode("latin-1"), role="codes",
          validate="2", refresh="2", message="sex.csv")


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    c = Corpus(OUT)
    for make in (csv_cases, encoding_cases, value_cases, xlsx_cases, sav_cases, redcap_cases, mapping_cases):
        make(c)
    c.write_index()
    print(f"wrote {len(c.cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
