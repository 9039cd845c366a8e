"""Tests of the twin's center exports: native re-reads, identifiers, determinism, defects.

They run on a small fake truth table with the exact columns of sites/twin/TRUTH.md, so
they do not wait for sites/twin/cohort.py; the real exports are generated with
`python -m sites.twin.exports`.
"""

from __future__ import annotations

import csv
import re
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from python_calamine import CalamineWorkbook

from sites.twin import defects
from sites.twin.defects import FILES, PLANTED
from sites.twin.exports import write_exports
from sites.twin.tables import DEX_FACTOR, expected_tables, lab_series, normalize_truth

SITE_IDS = {"center_a": ["A0001", "A0002", "A0003", "A0004", "A0005"],
            "center_b": ["BJ-2019-001", "BJ-2019-002", "BJ-2020-003", "BJ-2021-004"],
            "center_c": ["C-101", "C-102", "C-103", "C-104"],
            "center_d": ["40012", "40013", "40014"]}
O2_BY_GRADE = {1: ("none", 0.0), 2: ("low_flow_nasal", 2.0), 3: ("facemask", 8.0),
               4: ("bipap", 15.0)}


def _patient(rng, site: str, local_id: str, i: int) -> dict:
    inf = date(2017, 1, 10) + timedelta(days=int(rng.integers(0, 1800)))
    age = 9 if local_id == "40014" else int(rng.integers(15, 69))
    crs = [0, 1, 2, 3, 4][i % 5]
    icans = [0, 2, 1, 1, 3][i % 5]
    cr = i % 4 != 3
    dead = i % 3 == 0
    last = int(rng.integers(40, 700))
    steroid = icans > 0 or crs >= 3
    agent = "methylprednisolone" if i % 2 else "dexamethasone"
    o2, flow = O2_BY_GRADE.get(crs, (None, None))
    row = dict(
        site_id=site, local_id=local_id, full_name=f"Fake Person {i}", mrn=f"MRN{1000 + i}",
        birth_date=(inf - timedelta(days=365 * age + 40)).isoformat(),
        phone=f"+00 555 {1000 + i}", sex="M" if i % 2 else "F", age_years=age,
        ph_positive=bool(i % 3 == 1), disease_status="relapsed" if i % 2 else
        "primary_refractory", n_relapses=1 if i % 2 else 0, prior_lines=int(rng.integers(2, 6)),
        bm_blasts_pct=round(float(rng.uniform(5, 90)), 1), ecog=int(i % 2),
        weight_kg=round(float(rng.uniform(25, 95)), 1), infusion_date=inf.isoformat(),
        dose_1e6_per_kg=round(float(rng.uniform(0.5, 10)), 1), crs_grade=crs,
        crs_onset_day=2 if crs else None, crs_resolution_day=9 if crs else None,
        crs_max_temp_c=39.2 if crs else None, crs_hypotension=crs >= 2 if crs else None,
        crs_n_vasopressors={3: 1, 4: 2}.get(crs, 0) if crs else None, crs_o2_device=o2,
        crs_o2_flow_l_min=flow, crs_lee_grade=crs, icans_grade=icans,
        icans_onset_day=5 if icans else None, icans_resolution_day=8 if icans else None,
        icans_ice_score=(None if age <= 12 else {1: 8, 2: 5, 3: 2}[icans]) if icans else None,
        icans_capd_score=(12 if age <= 12 else None) if icans else None,
        icans_consciousness="awake" if icans else None, icans_seizure="none" if icans else None,
        icans_motor_weakness=False if icans else None,
        icans_cerebral_edema="none" if icans else None, icans_ctcae_grade=icans,
        steroids=steroid, steroid_agent=agent if steroid else None,
        steroid_start_day=5 if steroid else None, steroid_days=4 if steroid else None,
        steroid_dex_equiv_mg=40.0 if steroid else None, tocilizumab=crs >= 2,
        toci_start_day=3 if crs >= 2 else None, toci_days=1 if crs >= 2 else None,
        toci_mg=480.0 if crs >= 2 else None,
        peak_il6_pg_ml=round(float(rng.uniform(10, 5000)), 2),
        peak_ferritin_ng_ml=round(float(rng.uniform(200, 20000)), 1),
        peak_car_copies=float(rng.integers(1000, 90000)) if i % 3 == 0 else None,
        response="CR" if cr else "NR", response_day=28,
        mrd_pct=(0.001 if i % 2 else 0.5) if cr else None,
        mrd_negative=(bool(i % 2)) if cr else None,
        relapse_day=200 if (cr and i % 2 == 0 and last > 250) else None,
        death_day=last if dead else None, last_contact_day=last)
    return row


def fake_truth() -> pd.DataFrame:
    """A small truth table with every TRUTH.md column, per-site id styles included."""
    rng = np.random.default_rng(7)
    rows = [_patient(rng, site, lid, i)
            for site, ids in SITE_IDS.items() for i, lid in enumerate(ids)]
    return pd.DataFrame(rows)


TRUTH_CSV = Path(__file__).resolve().parents[2] / "sites" / "twin" / "truth.csv"
SITES_DIR = TRUTH_CSV.parents[1]


@pytest.fixture(scope="module")
def truth() -> pd.DataFrame:
    return normalize_truth(fake_truth())


@pytest.fixture(scope="module")
def root(tmp_path_factory, truth) -> Path:
    out = tmp_path_factory.mktemp("twin")
    write_exports(truth, out, seed=11)
    return out


def _path(root: Path, site: str) -> Path:
    return root / site / "export" / FILES[site]


def _valid(truth: pd.DataFrame, site: str) -> pd.DataFrame:
    return truth[truth.site_id == site].set_index("local_id")


def _sheet(root: Path, name: str) -> list[list]:
    book = CalamineWorkbook.from_path(str(_path(root, "center_b")))
    return book.get_sheet_by_name(name).to_python(skip_empty_area=False)


def _center_c(root: Path) -> list[list[str]]:
    with open(_path(root, "center_c"), encoding="gbk", newline="") as fh:
        return list(csv.reader(fh, delimiter=";"))


def _excel_date(v) -> date:
    if isinstance(v, float):
        return date(1899, 12, 30) + timedelta(days=int(v))
    return datetime.strptime(v, "%Y/%m/%d").date()


def test_center_a_is_one_utf8_row_per_patient_with_wide_peaks(root, truth):
    df = pd.read_csv(_path(root, "center_a"), dtype=str, keep_default_na=False)
    valid = _valid(truth, "center_a")
    assert len(df) == len(valid) + 3  # two duplicate rows + one test record
    assert set(df.sex) <= {"Male", "Female"}
    for lid, r in valid.iterrows():
        row = df[df.patient_id == lid].iloc[0]
        assert float(row.dose_1e6_per_kg) == r.dose_1e6_per_kg
        assert float(row.il6_peak_pg_ml) == r.peak_il6_pg_ml
        assert date.fromisoformat(row.infusion_date) == r.infusion_date
        assert int(row.crs_grade) == r.crs_grade


def test_center_b_workbook_has_title_rows_chinese_headers_and_mixed_dates(root, truth):
    import openpyxl

    book = openpyxl.load_workbook(_path(root, "center_b"))
    assert book.sheetnames == ["患者", "毒性", "检验"]
    assert all([str(r)[:3] for r in ws.merged_cells.ranges] == ["A1:"] for ws in book.worksheets)
    patients = _sheet(root, "患者")
    header = patients[1]
    assert {"研究编号", "姓名", "住院号", "性别", "出生日期", "回输日期"} <= set(header)
    dates = [row[header.index("回输日期")] for row in patients[2:]]
    kinds = {type(v) for v in dates if v != ""}
    assert kinds == {float, str}, "center_b must mix serial numbers and text dates"
    labs = _sheet(root, "检验")
    lh = labs[1]
    lab = pd.DataFrame(labs[2:], columns=lh)
    for lid, r in _valid(truth, "center_b").iterrows():
        il6 = lab[(lab["研究编号"] == lid) & (lab["检验项目"] == "IL-6")]
        assert len(il6) >= 3 and il6["结果"].max() == r.peak_il6_pg_ml
        row = next(p for p in patients[2:] if p[0] == lid)
        assert _excel_date(row[header.index("回输日期")]) == r.infusion_date


def test_center_c_is_gbk_semicolon_decimal_comma_ddmmyyyy(root, truth):
    raw = _path(root, "center_c").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    rows = _center_c(root)
    header, body = rows[0], rows[1:]
    assert header[:3] == ["patient_no", "event", "event_date"]
    assert all(len(r) == len(header) for r in body)
    assert any("," in r[5] for r in body), "decimal commas expected"
    assert all(re.fullmatch(r"\d\d/\d\d/\d{4}", r[2]) for r in body
               if r[2] != "31/02/2021" or r[0] == "C-901")
    for r in body:  # baseline only on the registration row
        assert (r[header.index("name")] != "") == (r[1] == "登记")
    for lid, t in _valid(truth, "center_c").iterrows():
        inf = next(r for r in body if r[0] == lid and r[1] == "回输")
        assert datetime.strptime(inf[2], "%d/%m/%Y").date() == t.infusion_date
        assert float(inf[5].replace(",", ".")) == t.dose_1e6_per_kg


def test_center_d_sav_has_value_labels_and_reproduces_per_kg_dose(root, truth):
    df, meta = pyreadstat.read_sav(str(_path(root, "center_d")))
    labels = meta.variable_value_labels
    assert labels["sex"] == {1.0: "male", 2.0: "female"}
    assert {"o2dev", "loc", "seiz", "edema", "crs_lee", "neu_ctc", "resp"} <= set(labels)
    assert meta.column_names_to_labels["il6_ng"] == "Peak IL-6 (ng/mL)"
    for lid, t in _valid(truth, "center_d").iterrows():
        r = df[df.pid == lid].iloc[0]
        assert round(r.cells_e8 * 100 / r.weight, 1) == t.dose_1e6_per_kg
        assert r.il6_ng * 1000 == pytest.approx(t.peak_il6_pg_ml, rel=1e-12)
        assert r.infdate == t.infusion_date
        assert r.crs_lee == t.crs_lee_grade and r.neu_ctc == t.icans_ctcae_grade
    child = df[df.pid == "40014"].iloc[0]
    assert np.isnan(child.ice) and not np.isnan(child.capd)


def test_every_export_carries_the_direct_identifiers(root, truth):
    texts = {"center_a": _path(root, "center_a").read_text("utf-8"),
             "center_c": _path(root, "center_c").read_text("gbk")}
    b = pd.DataFrame(_sheet(root, "患者")[2:], columns=_sheet(root, "患者")[1])
    d, _ = pyreadstat.read_sav(str(_path(root, "center_d")))
    for r in truth.itertuples():
        if r.site_id in texts:
            dob = r.birth_date.isoformat() if r.site_id == "center_a" else \
                r.birth_date.strftime("%d/%m/%Y")
            for value in (r.full_name, r.mrn, r.phone, dob):
                assert value in texts[r.site_id], (r.site_id, value)
        elif r.site_id == "center_b":
            row = b[b["研究编号"] == r.local_id].iloc[0]
            assert (row["姓名"], row["住院号"], row["联系电话"]) == (r.full_name, r.mrn, r.phone)
            assert _excel_date(row["出生日期"]) == r.birth_date
        else:
            row = d[d.pid == r.local_id].iloc[0]
            assert (row["name"], row.mrn, row.phone, row.dob) == (
                r.full_name, r.mrn, r.phone, r.birth_date)


def test_regeneration_is_byte_identical(root, truth, tmp_path):
    again = write_exports(truth, tmp_path, seed=11)
    for path in again:
        site = path.parts[-3]
        assert path.read_bytes() == _path(root, site).read_bytes(), site


def test_every_planted_defect_is_in_the_files(root):
    found = {(d.site_id, d.local_id, d.kind): where for d, where in defects.locate(root)}
    assert len(found) == len(PLANTED) >= 10
    assert all(found.values()), [k for k, w in found.items() if not w]
    assert len({d.rule_id for d in PLANTED}) == len(PLANTED)
    assert {d.site_id for d in PLANTED} == set(FILES)
    a = pd.read_csv(_path(root, "center_a"), dtype=str)
    assert set(a[a.patient_id == "A9901"].sex) == {"Male", "Female"}
    assert (a[a.patient_id == "A9902"].name == "TEST PATIENT").all()
    p = pd.DataFrame(_sheet(root, "患者")[2:], columns=_sheet(root, "患者")[1])
    assert p.loc[p["研究编号"] == "BJ-2099-901", "回输日期"].item() == ""
    death = p[p["研究编号"] == "BJ-2099-902"].iloc[0]
    assert _excel_date(death["死亡日期"]) < _excel_date(death["回输日期"])
    assert "BJ-2099-903" not in set(p["研究编号"])
    c = _center_c(root)
    c902 = {r[1]: datetime.strptime(r[2], "%d/%m/%Y") for r in c if r[0] == "C-902"}
    assert c902["复发"] < c902["疗效评估"]
    assert any(r[0] == "C-901" and r[1] == "复发" and r[2] == "31/02/2021" for r in c)
    d, meta = pyreadstat.read_sav(str(_path(root, "center_d")))
    assert d.loc[d.pid == "49901", "crs_lee"].item() == 7
    assert d.loc[d.pid == "49902", "o2dev"].item() not in meta.variable_value_labels["o2dev"]


def test_negative_lab_sits_on_a_valid_patient_and_is_not_its_peak(root, truth):
    host = defects.NEGATIVE_LAB_HOST
    assert host in set(_valid(truth, "center_c").index)
    il6 = [float(r[5].replace(",", ".")) for r in _center_c(root)
           if r[0] == host and r[1] == "检验" and r[4] == "IL-6"]
    assert min(il6) == defects.NEGATIVE_LAB_VALUE
    assert max(il6) == _valid(truth, "center_c").loc[host, "peak_il6_pg_ml"]


def test_expected_tables_have_one_row_per_valid_patient(truth):
    tables = expected_tables(truth)
    n = len(truth)
    for name in ("patient", "infusion", "response", "outcome"):
        assert len(tables[name]) == n, name
    assert not set(tables["patient"].local_id) & defects.PATIENT_LEVEL
    tox = tables["toxicity"]
    assert len(tox) == int((truth.crs_grade > 0).sum() + (truth.icans_grade > 0).sum())
    d = tox[tox.site_id == "center_d"]
    assert set(d.grade_method) == {"regraded"}
    assert set(d[d.tox_type == "CRS"].source_scale) == {"LEE2014"}
    assert set(tox[tox.site_id != "center_d"].grade_method) == {"native"}
    tr = tables["toxicity_treatment"]
    st = tr[tr.agent != "tocilizumab"]
    assert np.allclose(st.cumulative_dose_mg * st.agent.map(DEX_FACTOR), st.dex_equiv_mg)
    lab = tables["lab"]
    per = lab.groupby(["site_id", "local_id", "analyte"]).size()
    assert (per.loc[["center_a", "center_d"]] == 1).all()
    assert (per.loc[["center_b", "center_c"]] > 1).all()
    assert (lab.value >= 0).all()


def test_lab_series_peak_is_the_truth_peak(truth):
    labs = lab_series(truth)
    peak = labs.groupby(["local_id", "analyte"]).value.max()
    for r in truth.itertuples():
        assert peak[(r.local_id, "il6")] == r.peak_il6_pg_ml
        assert peak[(r.local_id, "ferritin")] == r.peak_ferritin_ng_ml


@pytest.mark.skipif(not TRUTH_CSV.exists(), reason="sites/twin/truth.csv not generated yet")
def test_committed_exports_match_the_truth_table(tmp_path):
    """The files under sites/<center>/export/ are what write_exports makes of truth.csv."""
    real = pd.read_csv(TRUTH_CSV, dtype={"local_id": str, "mrn": str, "phone": str})
    assert len(real) == 93
    tables = expected_tables(real)
    assert all(len(tables[t]) == 93 for t in ("patient", "infusion", "response", "outcome"))
    for path in write_exports(real, tmp_path):
        site = path.parts[-3]
        committed = SITES_DIR / site / "export" / FILES[site]
        assert committed.read_bytes() == path.read_bytes(), f"regenerate {committed}"


@pytest.mark.skipif(not TRUTH_CSV.exists(), reason="sites/twin/truth.csv not generated yet")
def test_readme_defect_table_matches_the_committed_exports():
    readme = (SITES_DIR / "README.md").read_text("utf-8")
    for d, where in defects.locate(SITES_DIR):
        row = f"| {d.site_id} | {d.file} | {', '.join(where)} | {d.local_id}"
        assert row in readme, f"sites/README.md defect table is stale for {d}"
        assert d.rule_id in readme.split(row, 1)[1].split("\n", 1)[0]


# --- Round trip: read each export back by its documented layout (sites/README.md) and
# --- compare with expected_tables. Independent of etl/: it pins the exports, not the ETL.

COMPARE = {
    "patient": ["sex", "age_years", "ph_positive", "disease_status", "n_relapses",
                "prior_lines", "bm_blasts_pct", "ecog"],
    "infusion": ["infusion_date", "dose_1e6_per_kg"],
    "toxicity": ["tox_type", "onset_date", "resolution_date", "grade_astct", "source_grade",
                 "max_temp_c", "hypotension", "n_vasopressors", "o2_device", "o2_flow_l_min",
                 "ice_score", "capd_score", "consciousness", "seizure", "motor_weakness",
                 "cerebral_edema"],
    "toxicity_treatment": ["agent", "start_date", "end_date", "cumulative_dose_mg"],
    "lab": ["analyte", "sample_date", "value", "source_unit"],
    "response": ["assessment_date", "response", "mrd_pct", "mrd_negative"],
    "outcome": ["relapse_date", "death_date", "last_contact_date"],
}
YES = {"yes": True, "no": False, "是": True, "否": False, "阳性": True, "阴性": False,
       "Y": True, "N": False}


def _norm(v):
    if v is None or v is pd.NA or v == "" or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | float | np.integer | np.floating):
        return round(float(v), 6)
    return v.isoformat() if isinstance(v, date) else str(v)


def _rows(df: pd.DataFrame, table: str, ids: set) -> list[tuple]:
    df = df[df.local_id.isin(ids)]
    return sorted((r[0], *(_norm(v) for v in r[1:]))
                  for r in df[["local_id", *COMPARE[table]]].itertuples(index=False))


def _read_a(path: Path) -> dict[str, pd.DataFrame]:
    a = pd.read_csv(path, dtype=str, keep_default_na=False)
    a = a.rename(columns={"patient_id": "local_id"})
    iso = lambda s: date.fromisoformat(s) if s else None  # noqa: E731
    num = lambda s: float(s) if s else None  # noqa: E731
    out = {"patient": pd.DataFrame({
        "local_id": a.local_id, "sex": a.sex.str[0], "age_years": a.age.map(num),
        "ph_positive": a.ph_positive.map(YES),
        "disease_status": a.disease_status.str.replace(" ", "_"),
        "n_relapses": a.n_prior_relapses.map(num), "prior_lines": a.prior_lines.map(num),
        "bm_blasts_pct": a.bm_blasts_pct.map(num), "ecog": a.ecog.map(num)}),
        "infusion": pd.DataFrame({"local_id": a.local_id,
                                  "infusion_date": a.infusion_date.map(iso),
                                  "dose_1e6_per_kg": a.dose_1e6_per_kg.map(num)})}
    tox, tr, lab = [], [], []
    for r in a.itertuples():
        for t in ("crs", "icans"):
            if int(getattr(r, f"{t}_grade")):
                tox.append({"local_id": r.local_id, "tox_type": t.upper(),
                            "onset_date": iso(getattr(r, f"{t}_onset_date")),
                            "resolution_date": iso(getattr(r, f"{t}_resolution_date")),
                            "grade_astct": int(getattr(r, f"{t}_grade")),
                            "source_grade": int(getattr(r, f"{t}_grade"))})
        if r.steroid_agent:
            tr.append({"local_id": r.local_id, "agent": r.steroid_agent.lower(),
                       "start_date": iso(r.steroid_start_date),
                       "end_date": iso(r.steroid_end_date),
                       "cumulative_dose_mg": num(r.steroid_total_mg)})
        if r.tocilizumab_start_date:
            tr.append({"local_id": r.local_id, "agent": "tocilizumab",
                       "start_date": iso(r.tocilizumab_start_date),
                       "end_date": iso(r.tocilizumab_end_date),
                       "cumulative_dose_mg": num(r.tocilizumab_total_mg)})
        for analyte, col, unit in (("il6", "il6", "pg/mL"), ("ferritin", "ferritin", "ng/mL"),
                                   ("car_copies", "car", "copies/ug gDNA")):
            value = [v for k, v in r._asdict().items() if k.startswith(f"{col}_peak_")
                     and not k.endswith("date")][0]
            if value:
                lab.append({"local_id": r.local_id, "analyte": analyte, "value": num(value),
                            "sample_date": iso(getattr(r, f"{col}_peak_date")),
                            "source_unit": unit})
    out |= {"toxicity": pd.DataFrame(tox), "toxicity_treatment": pd.DataFrame(tr),
            "lab": pd.DataFrame(lab),
            "response": pd.DataFrame({"local_id": a.local_id,
                                      "assessment_date": a.response_date.map(iso),
                                      "response": a.response_d30, "mrd_pct": a.mrd_pct.map(num),
                                      "mrd_negative": a.mrd_negative.map(YES)}),
            "outcome": pd.DataFrame({"local_id": a.local_id,
                                     **{c: a[c].map(iso) for c in COMPARE["outcome"]}})}
    return out


def _check_round_trip(read: dict[str, pd.DataFrame], truth: pd.DataFrame, site: str) -> None:
    expected = {k: v[v.site_id == site] for k, v in expected_tables(truth).items()}
    ids = set(truth.loc[truth.site_id == site, "local_id"])
    for table, df in read.items():
        assert _rows(df.reindex(columns=["local_id", *COMPARE[table]]), table, ids) == \
            _rows(expected[table], table, ids), f"{site} {table}"


def test_center_a_round_trips_to_the_expected_tables(root, truth):
    _check_round_trip(_read_a(_path(root, "center_a")), truth, "center_a")


def _age(birth: date, at: date) -> int:
    return at.year - birth.year - ((at.month, at.day) < (birth.month, birth.day))


def _read_b(path: Path) -> dict[str, pd.DataFrame]:
    book = CalamineWorkbook.from_path(str(path))
    sheets = {}
    for name in ("患者", "毒性", "检验"):
        cells = book.get_sheet_by_name(name).to_python(skip_empty_area=False)
        sheets[name] = pd.DataFrame(cells[2:], columns=cells[1]).rename(
            columns={"研究编号": "local_id"})
    p, t, lab = sheets["患者"], sheets["毒性"], sheets["检验"]
    p = p[p["回输日期"] != ""]  # the planted missing infusion date (not a valid patient)
    dt = lambda v: None if v == "" else _excel_date(v)  # noqa: E731
    num = lambda v: None if v == "" else float(v)  # noqa: E731
    inf = {r.local_id: dt(r["回输日期"]) for _, r in p.iterrows()}
    tr = []
    for _, r in p.iterrows():
        if r["激素种类"]:
            tr.append((r.local_id, {"地塞米松": "dexamethasone", "甲泼尼龙": "methylprednisolone"}[
                r["激素种类"]], r["激素开始日期"], r["激素结束日期"], r["激素累计剂量(mg)"]))
        if r["托珠单抗开始日期"] != "":
            tr.append((r.local_id, "tocilizumab", r["托珠单抗开始日期"], r["托珠单抗结束日期"],
                       r["托珠单抗累计剂量(mg)"]))
    return {
        "patient": pd.DataFrame({
            "local_id": p.local_id, "sex": p["性别"].map({"男": "M", "女": "F"}),
            "age_years": [_age(dt(b), inf[i]) for i, b in zip(p.local_id, p["出生日期"],
                                                                 strict=True)],
            "ph_positive": p["Ph染色体"].map(YES),
            "disease_status": p["疾病状态"].map({"原发难治": "primary_refractory",
                                             "复发": "relapsed"}),
            "n_relapses": p["既往复发次数"], "prior_lines": p["既往治疗线数"],
            "bm_blasts_pct": p["骨髓原始细胞(%)"], "ecog": p["ECOG评分"]}),
        "infusion": pd.DataFrame({"local_id": p.local_id, "infusion_date": p["回输日期"].map(dt),
                                  "dose_1e6_per_kg": p["回输剂量(×10^6/kg)"]}),
        "toxicity": pd.DataFrame({
            "local_id": t.local_id, "tox_type": t["毒性类型"], "onset_date": t["发生日期"].map(dt),
            "resolution_date": t["缓解日期"].map(dt), "grade_astct": t["分级(ASTCT 2019)"],
            "source_grade": t["分级(ASTCT 2019)"]}),
        "toxicity_treatment": pd.DataFrame(
            [(i, a, dt(s), dt(e), num(mg)) for i, a, s, e, mg in tr],
            columns=["local_id", *COMPARE["toxicity_treatment"]]),
        "lab": pd.DataFrame({
            "local_id": lab.local_id, "analyte": lab["检验项目"].map(
                {"IL-6": "il6", "铁蛋白": "ferritin", "CAR拷贝数": "car_copies"}),
            "sample_date": lab["采样日期"].map(dt), "value": lab["结果"],
            "source_unit": lab["单位"]}),
        "response": pd.DataFrame({
            "local_id": p.local_id, "assessment_date": p["疗效评估日期"].map(dt),
            "response": p["疗效"].map({"完全缓解": "CR", "部分缓解": "PR", "未缓解": "NR",
                                     "疾病进展": "PD"}),
            "mrd_pct": p["MRD(%)"].map(num), "mrd_negative": p["MRD阴性"].map(YES)}),
        "outcome": pd.DataFrame({"local_id": p.local_id, "relapse_date": p["复发日期"].map(dt),
                                 "death_date": p["死亡日期"].map(dt),
                                 "last_contact_date": p["末次随访日期"].map(dt)}),
    }


def dmy(s: str) -> date | str | None:
    """dd/mm/yyyy -> date; an unparseable text stays text (a planted defect)."""
    try:
        return datetime.strptime(s, "%d/%m/%Y").date() if s else None
    except ValueError:
        return s


def _read_c(path: Path) -> dict[str, pd.DataFrame]:
    rows = _center_c(path.parents[2])
    c = pd.DataFrame(rows[1:], columns=rows[0]).rename(columns={"patient_no": "local_id"})
    num = lambda s: float(s.replace(",", ".")) if s else None  # noqa: E731
    ev = {e: c[c.event == e] for e in set(c.event)}
    reg, resp = ev["登记"], ev["疗效评估"]
    tox = c[c.event.isin(["CRS", "ICANS"])]
    tr, lab = ev["用药"], ev["检验"]
    outcome = pd.DataFrame({"local_id": reg.local_id})
    for e, col in (("复发", "relapse_date"), ("死亡", "death_date"),
                   ("末次随访", "last_contact_date")):
        outcome = outcome.merge(ev[e][["local_id", "event_date"]].rename(
            columns={"event_date": col}), how="left").fillna("")
        outcome[col] = outcome[col].map(dmy)
    return {
        "patient": pd.DataFrame({
            "local_id": reg.local_id, "sex": reg.sex.map({"1": "M", "2": "F"}),
            "age_years": reg.age.map(num), "ph_positive": reg.ph.map(YES),
            "disease_status": reg.disease.map({"PRIM-REF": "primary_refractory",
                                               "REL": "relapsed"}),
            "n_relapses": reg.relapses.map(num), "prior_lines": reg.lines.map(num),
            "bm_blasts_pct": reg.blasts_pct.map(num), "ecog": reg.ecog.map(num)}),
        "infusion": pd.DataFrame({"local_id": ev["回输"].local_id,
                                  "infusion_date": ev["回输"].event_date.map(dmy),
                                  "dose_1e6_per_kg": ev["回输"].value.map(num)}),
        "toxicity": pd.DataFrame({
            "local_id": tox.local_id, "tox_type": tox.event, "onset_date": tox.event_date.map(dmy),
            "resolution_date": tox.end_date.map(dmy), "grade_astct": tox.grade.map(num),
            "source_grade": tox.grade.map(num)}),
        "toxicity_treatment": pd.DataFrame({
            "local_id": tr.local_id, "agent": tr["item"].map(
                {"地塞米松": "dexamethasone", "甲泼尼龙": "methylprednisolone",
                 "托珠单抗": "tocilizumab"}),
            "start_date": tr.event_date.map(dmy), "end_date": tr.end_date.map(dmy),
            "cumulative_dose_mg": tr.value.map(num)}),
        "lab": pd.DataFrame({
            "local_id": lab.local_id,
            "analyte": lab["item"].map({"IL-6": "il6", "铁蛋白": "ferritin",
                                        "CAR拷贝": "car_copies"}),
            "sample_date": lab.event_date.map(dmy), "value": lab.value.map(num),
            "source_unit": lab.unit})[lab.value.map(num) >= 0],
        "response": pd.DataFrame({
            "local_id": resp.local_id, "assessment_date": resp.event_date.map(dmy),
            "response": resp.result, "mrd_pct": resp.value.map(num),
            "mrd_negative": resp["item"].map({"MRD阴性": True, "MRD阳性": False})}),
        "outcome": outcome,
    }


def test_center_b_round_trips_to_the_expected_tables(root, truth):
    _check_round_trip(_read_b(_path(root, "center_b")), truth, "center_b")


def test_center_c_round_trips_to_the_expected_tables(root, truth):
    _check_round_trip(_read_c(_path(root, "center_c")), truth, "center_c")


def _read_d(path: Path) -> dict[str, pd.DataFrame]:
    d, meta = pyreadstat.read_sav(str(path))
    d = d.rename(columns={"pid": "local_id"})
    lab_of = meta.variable_value_labels
    on = lambda i, day: None if np.isnan(day) else i + timedelta(days=int(day))  # noqa: E731
    code = {"o2dev": {"no oxygen": "none", "blow-by": "blow_by",
                      "low-flow nasal cannula (<=6 L/min)": "low_flow_nasal",
                      "high-flow nasal cannula (>6 L/min)": "high_flow_nasal",
                      "facemask": "facemask", "non-rebreather mask": "nonrebreather",
                      "Venturi mask": "venturi", "CPAP": "cpap", "BiPAP": "bipap",
                      "mechanical ventilation": "mechanical_ventilation"},
            "loc": {"awakens spontaneously": "awake", "awakens to voice": "voice",
                    "awakens only to tactile stimulus": "tactile",
                    "unarousable / stupor / coma": "unarousable"},
            "seiz": {"none": "none", "self-limited": "self_limited",
                     "prolonged / repetitive": "prolonged"},
            "edema": {"none": "none", "focal": "focal", "diffuse": "diffuse"}}
    lab_code = lambda var, v: None if np.isnan(v) else code[var].get(  # noqa: E731
        lab_of[var].get(v), f"?{v}")
    yn = lambda v: None if np.isnan(v) else bool(v)  # noqa: E731
    tox, tr, lab, truth_by_id = [], [], [], {}
    for r in d.itertuples():
        i = r.infdate
        truth_by_id[r.local_id] = r
        if not np.isnan(r.crs_on):
            tox.append({"local_id": r.local_id, "tox_type": "CRS", "onset_date": on(i, r.crs_on),
                        "resolution_date": on(i, r.crs_res), "source_grade": r.crs_lee,
                        "max_temp_c": r.tmax, "hypotension": yn(r.hypot),
                        "n_vasopressors": r.vaso, "o2_device": lab_code("o2dev", r.o2dev),
                        "o2_flow_l_min": r.o2flow})
        if not np.isnan(r.neu_on):
            tox.append({"local_id": r.local_id, "tox_type": "ICANS",
                        "onset_date": on(i, r.neu_on), "resolution_date": on(i, r.neu_res),
                        "source_grade": r.neu_ctc, "ice_score": r.ice, "capd_score": r.capd,
                        "consciousness": lab_code("loc", r.loc),
                        "seizure": lab_code("seiz", r.seiz), "motor_weakness": yn(r.motor),
                        "cerebral_edema": lab_code("edema", r.edema)})
        if r.ster_ag:
            tr.append((r.local_id, lab_of["ster_ag"][r.ster_ag], on(i, r.ster_on),
                       on(i, r.ster_off), r.ster_mg))
        if r.toci:
            tr.append((r.local_id, "tocilizumab", on(i, r.toci_on), on(i, r.toci_off), r.toci_mg))
        for analyte, var, day, factor, unit in (
                ("il6", "il6_ng", "il6_day", 1000.0, "ng/mL"),
                ("ferritin", "ferr", "ferr_day", 1.0, "ng/mL"),
                ("car_copies", "carcp", "car_day", 1.0, "copies/ug gDNA")):
            v = getattr(r, var)
            if not np.isnan(v):
                lab.append((r.local_id, analyte, on(i, getattr(r, day)), v * factor, unit))
    age = [_age(b, i) for b, i in zip(d.dob, d.infdate, strict=True)]
    tox = pd.DataFrame(tox)
    # grade_astct is regraded by the ETL from the components; here: taken from the truth side
    return {
        "patient": pd.DataFrame({
            "local_id": d.local_id, "sex": d.sex.map({1.0: "M", 2.0: "F"}), "age_years": age,
            "ph_positive": d.phpos.map(yn),
            "disease_status": d.dstatus.map({1.0: "primary_refractory", 2.0: "relapsed"}),
            "n_relapses": d.nrel, "prior_lines": d.prlines, "bm_blasts_pct": d.blasts,
            "ecog": d.ecog}),
        "infusion": pd.DataFrame({"local_id": d.local_id, "infusion_date": d.infdate,
                                  "dose_1e6_per_kg": (d.cells_e8 * 100 / d.weight).round(6)}),
        "toxicity": tox,
        "toxicity_treatment": pd.DataFrame(tr, columns=["local_id",
                                                        *COMPARE["toxicity_treatment"]]),
        "lab": pd.DataFrame(lab, columns=["local_id", "analyte", "sample_date", "value",
                                          "source_unit"]),
        "response": pd.DataFrame({
            "local_id": d.local_id, "assessment_date": [on(i, x) for i, x in
                                                        zip(d.infdate, d.resp_day, strict=False)],
            "response": d.resp.map(lab_of["resp"]), "mrd_pct": d.mrd,
            "mrd_negative": d.mrdneg.map(yn)}),
        "outcome": pd.DataFrame({"local_id": d.local_id, **{
            col: [on(i, x) for i, x in zip(d.infdate, d[var], strict=False)]
            for col, var in (("relapse_date", "rel_day"), ("death_date", "death_day"),
                             ("last_contact_date", "last_day"))}}),
    }


def _read_d_with_astct(path: Path, truth: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """center_d sends no ASTCT grade (the ETL regrades); fill the expected one to compare."""
    read = _read_d(path)
    expected = expected_tables(truth)["toxicity"]
    grades = {(r.local_id, r.tox_type): r.grade_astct for r in expected.itertuples()}
    tox = read["toxicity"]
    tox["grade_astct"] = [grades.get(k) for k in zip(tox.local_id, tox.tox_type, strict=True)]
    return read


def test_center_d_round_trips_to_the_expected_tables(root, truth):
    _check_round_trip(_read_d_with_astct(_path(root, "center_d"), truth), truth, "center_d")


@pytest.mark.skipif(not TRUTH_CSV.exists(), reason="sites/twin/truth.csv not generated yet")
@pytest.mark.parametrize("site", list(FILES))
def test_committed_export_round_trips_against_truth_csv(site):
    real = normalize_truth(pd.read_csv(TRUTH_CSV, dtype={"local_id": str, "mrn": str,
                                                          "phone": str}))
    path = SITES_DIR / site / "export" / FILES[site]
    read = {"center_a": _read_a, "center_b": _read_b, "center_c": _read_c,
            "center_d": lambda p: _read_d_with_astct(p, real)}[site](path)
    _check_round_trip(read, real, site)
