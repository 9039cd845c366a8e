"""Issue 15 item 2: every output shows hostile export content as inert data.

Script, event-handler, console-markup and spreadsheet-formula payloads are pushed through
the headers, coded fields and values of all five demo export formats: wide CSV
(center_a), Excel workbook (center_b), GBK event-level CSV (center_c), SPSS .sav
(center_d) and REDCap (center_e). Then `carpool validate` and `carpool profile` run on
each, and every output is checked:
- HTML (validation report, profile report, Great Expectations Data Docs): the raw payload
  never appears, and our own pages carry no injected tag or `on…=` attribute; the
  escaped payload does appear, so the test sees the payload arrive;
- CSV (quarantine.csv): no text cell starts with = + - @ tab or CR (numbers aside), and
  the neutralized payloads are there;
- JSON (summary.json, profile.json): valid JSON holding the payload as a string;
- terminal: the markup payload prints verbatim, and no command crashes.
"""
from __future__ import annotations

import csv
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import openpyxl
import pyreadstat
import pytest
import yaml
from typer.testing import CliRunner

from etl.cli import app
from etl.escape import PLAIN_NUMBER

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = "<script>alert(1)</script>"
EVENT = '"><img src=x onerror=alert(2)>'
MARKUP = "[b]bold[/b][/]"
FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3+cmd|' /C calc'!A0"]
VALUES = [SCRIPT, EVENT, MARKUP, *FORMULAS]
HEADER = f"notes{EVENT}{MARKUP}"
runner = CliRunner()


def _csv_site(folder: Path, name: str, column: str, encoding: str = "utf-8", delimiter: str = ",",
              only=None) -> None:
    path = folder / "export" / name
    with path.open(encoding=encoding, newline="") as fh:
        rows = list(csv.reader(fh, delimiter=delimiter))
    header, body = rows[0], rows[1:]
    col = header.index(column)
    targets = [r for r in body if only is None or only(header, r)][: len(VALUES)]
    for row, payload in zip(targets, VALUES, strict=True):
        row[col] = payload
    header.append(HEADER)
    for i, row in enumerate(body):
        row.append(VALUES[i % len(VALUES)])
    with path.open("w", encoding=encoding, newline="") as fh:
        csv.writer(fh, delimiter=delimiter).writerows([header, *body])


def _xlsx_site(folder: Path) -> None:
    path = folder / "export" / "cart_export_2023-03.xlsx"
    book = openpyxl.load_workbook(path)
    sheet = book["患者"]
    header = [c.value for c in sheet[2]]
    col = header.index("性别") + 1
    for i, payload in enumerate(VALUES):
        sheet.cell(row=3 + i, column=col, value=payload)
    extra = len(header) + 1
    sheet.cell(row=2, column=extra, value=HEADER)
    for r in range(3, sheet.max_row + 1):
        sheet.cell(row=r, column=extra, value=VALUES[r % len(VALUES)])
    book.save(path)


def _sav_site(folder: Path) -> None:
    path = folder / "export" / "cart_study.sav"
    frame, meta = pyreadstat.read_sav(str(path))
    for i, payload in enumerate(VALUES):
        frame.loc[i, "infdate"] = payload
    labels = dict(meta.column_names_to_labels)
    labels["ecog"] = HEADER                     # SPSS names are restricted; labels are free text
    pyreadstat.write_sav(frame, str(path), column_labels=[labels.get(c) for c in frame.columns],
                         variable_value_labels=meta.variable_value_labels)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    sites = {}
    for site in ("center_a", "center_b", "center_c", "center_d", "center_e"):
        shutil.copytree(ROOT / "sites" / site, root / "sites" / site)
        sites[site] = root / "sites" / site
    _csv_site(sites["center_a"], "cart_patients.csv", "sex")
    _xlsx_site(sites["center_b"])
    _csv_site(sites["center_c"], "cart_events.csv", "sex", encoding="gbk", delimiter=";",
              only=lambda h, r: r[h.index("event")] == "登记")
    _sav_site(sites["center_d"])
    _csv_site(sites["center_e"], "cart_redcap_raw.csv", "sex", only=lambda h, r: r[h.index("sex")] != "")
    config = root / "carpool.yml"
    config.write_text(yaml.safe_dump({
        "study": "hostile", "demo": True, "cutoff_date": "2023-03-01", "output_dir": "out",
        "pseudonym_key": {"demo_key": "carpool-demo-key-NOT-SECRET"},
        "sites": [{"id": s, "mapping": f"sites/{s}/mapping.yml"} for s in sites]}))
    terminal = []
    for site in sites:
        r = runner.invoke(app, ["validate", "--site", site, "--config", str(config)])
        assert r.exception is None or isinstance(r.exception, SystemExit), (site, r.output)
        assert "Traceback" not in r.output
        terminal.append(r.output)
    for site, folder in sites.items():
        files = sorted((folder / "export").iterdir())
        args = ["profile", *[str(f) for f in files if "dictionary" not in f.name],
                "--out", str(root / "out" / "profile" / site)]
        if site == "center_e":
            args += ["--dictionary", str(folder / "export" / "cart_redcap_dictionary.csv")]
        r = runner.invoke(app, args)
        assert r.exception is None or isinstance(r.exception, SystemExit), (site, r.output)
        terminal.append(r.output)
    return root / "out", "\n".join(terminal)


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.bad = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "img", "iframe", "object"):
            self.bad.append(tag)
        self.bad += [f"{tag} {k}" for k, _ in attrs if k.startswith("on")]


def test_html_outputs_show_payloads_escaped(hostile):
    out, _ = hostile
    ours = sorted(out.glob("validation/*/index.html")) + sorted(out.glob("profile/*/index.html"))
    assert len(ours) == 10
    for site in ("center_a", "center_b", "center_c", "center_d", "center_e"):  # each format delivered them
        assert "&lt;script&gt;alert(1)" in (out / "validation" / site / "index.html").read_text(encoding="utf-8")
        assert "notes&#34;&gt;&lt;img" in (out / "profile" / site / "index.html").read_text(encoding="utf-8")
    seen = False
    for page in ours:
        text = page.read_text(encoding="utf-8")
        for raw in (SCRIPT, EVENT.lstrip('">'), "<img"):
            assert raw not in text, f"{page}: raw {raw!r}"
        parser = _Tags()
        parser.feed(text)
        assert not parser.bad, f"{page}: injected {parser.bad}"
        seen |= "&lt;script&gt;alert(1)" in text
    assert seen, "no payload reached any HTML report: the test would prove nothing"
    for page in out.glob("validation/*/gx/**/*.html"):
        text = page.read_text(encoding="utf-8")
        assert SCRIPT not in text and "<img src=x" not in text, page


def _formula(cell: str) -> bool:
    return cell.startswith(("=", "+", "-", "@", "\t", "\r")) and not PLAIN_NUMBER.fullmatch(cell)


def test_csv_outputs_neutralize_formulas(hostile):
    out, _ = hostile
    files = sorted(out.glob("validation/*/quarantine.csv"))
    assert len(files) == 5
    cells = []
    for f in files:
        with f.open(encoding="utf-8", newline="") as fh:
            mine = [c for row in csv.reader(fh) for c in row]
        assert any(c.startswith(("'=", "'@", "'+")) for c in mine), f"{f}: no formula payload arrived"
        cells += mine
    assert not [c for c in cells if _formula(c)]
    assert any(c.startswith("'=HYPERLINK") for c in cells), "the formula payload never reached a CSV"
    assert any(c.startswith("'@SUM") for c in cells)


def test_json_outputs_hold_payloads_as_strings(hostile):
    out, _ = hostile
    texts = []
    for f in sorted(out.glob("validation/*/summary.json")) + sorted(out.glob("profile/*/profile.json")):
        data = json.loads(f.read_text(encoding="utf-8"))     # valid JSON
        texts.append(json.dumps(data, ensure_ascii=False))
    assert len(texts) == 10
    assert any(SCRIPT in t for t in texts) or any(HEADER in t for t in texts)


def test_terminal_shows_markup_as_typed(hostile):
    _, terminal = hostile
    assert MARKUP in terminal, "console markup was interpreted (or the payload never printed)"
    assert "\x1b]8;" not in terminal   # no terminal hyperlink escape from [link=…]
