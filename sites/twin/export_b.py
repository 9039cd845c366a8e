"""center_b export: an xlsx workbook with Chinese headers, three sheets, mixed dates.

Sheets 患者 (one row per patient, treatments and outcomes as columns), 毒性 (one row
per CRS/ICANS episode, ASTCT 2019) and 检验 (long labs, several samples per patient).
Row 1 of every sheet is a merged title, row 2 the header. A date cell is either an
Excel serial number (plain number, days since 1899-12-30) or 'yyyy/mm/dd' text.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import xlsxwriter

from sites.twin.tables import SOURCE_UNIT, courses_by_patient, day_to_date, lab_series

TITLE = "CAR-T 临床数据导出 2023-03"
CREATED = datetime(2023, 3, 1, 8, 0, 0)
SEX = {"M": "男", "F": "女"}
STATUS = {"primary_refractory": "原发难治", "relapsed": "复发"}
RESPONSE = {"CR": "完全缓解", "PR": "部分缓解", "NR": "未缓解", "PD": "疾病进展"}
AGENT = {"dexamethasone": "地塞米松", "methylprednisolone": "甲泼尼龙"}
ANALYTE = {a: (name, SOURCE_UNIT["center_b"][a]) for a, name in
           (("il6", "IL-6"), ("ferritin", "铁蛋白"), ("car_copies", "CAR拷贝数"))}
YES_NO = {True: "是", False: "否"}
EPOCH = date(1899, 12, 30)


class DateCell:
    """A date to be written either as an Excel serial number or as yyyy/mm/dd text."""

    def __init__(self, d: date | None, rng: np.random.Generator):
        self.d, self.serial = d, bool(rng.random() < 0.5)

    def value(self):
        if self.d is None:
            return None
        return (self.d - EPOCH).days if self.serial else self.d.strftime("%Y/%m/%d")


def _n(v):
    return None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else v


def patient_row(r, courses: dict, rng) -> dict:
    def on(day):
        return DateCell(day_to_date(r.infusion_date, day), rng)

    st, toci = courses.get((r.local_id, "steroid")), courses.get((r.local_id, "tocilizumab"))
    infusion = None if r.defect == "missing_infusion_date" else r.infusion_date
    return {
        "研究编号": r.local_id, "姓名": r.full_name, "住院号": r.mrn, "性别": SEX[r.sex],
        "出生日期": DateCell(r.birth_date, rng), "联系电话": r.phone,
        "Ph染色体": "阳性" if r.ph_positive else "阴性", "疾病状态": STATUS[r.disease_status],
        "既往复发次数": int(r.n_relapses), "既往治疗线数": int(r.prior_lines),
        "骨髓原始细胞(%)": float(r.bm_blasts_pct), "ECOG评分": _n(r.ecog),
        "体重(kg)": float(r.weight_kg), "回输日期": DateCell(infusion, rng),
        "回输剂量(×10^6/kg)": float(r.dose_1e6_per_kg),
        "激素种类": AGENT[st.agent] if st is not None else None,
        "激素开始日期": on(st.start_day if st is not None else None),
        "激素结束日期": on(st.end_day if st is not None else None),
        "激素累计剂量(mg)": st.cumulative_dose_mg if st is not None else None,
        "托珠单抗开始日期": on(toci.start_day if toci is not None else None),
        "托珠单抗结束日期": on(toci.end_day if toci is not None else None),
        "托珠单抗累计剂量(mg)": toci.cumulative_dose_mg if toci is not None else None,
        "疗效评估日期": on(r.response_day), "疗效": RESPONSE[r.response],
        "MRD(%)": _n(r.mrd_pct),
        "MRD阴性": None if r.mrd_negative is None else YES_NO[bool(r.mrd_negative)],
        "复发日期": on(r.relapse_day), "死亡日期": on(r.death_day),
        "末次随访日期": on(r.last_contact_day),
    }


def toxicity_rows(r, rng) -> list[dict]:
    out = []
    for tox, pre in (("CRS", "crs"), ("ICANS", "icans")):
        grade = _n(getattr(r, f"{pre}_grade"))
        if grade is None or int(grade) == 0:
            continue
        out.append({"研究编号": r.local_id, "姓名": r.full_name, "毒性类型": tox,
                    "分级(ASTCT 2019)": int(grade),
                    "发生日期": DateCell(day_to_date(r.infusion_date,
                                                 getattr(r, f"{pre}_onset_day")), rng),
                    "缓解日期": DateCell(day_to_date(r.infusion_date,
                                                 getattr(r, f"{pre}_resolution_day")), rng)})
    return out


def lab_rows(rows: pd.DataFrame, rng) -> list[dict]:
    inf = dict(zip(rows.local_id, rows.infusion_date, strict=False))
    labs = lab_series(rows).drop_duplicates(["local_id", "analyte", "day"])
    order = {lid: i for i, lid in enumerate(dict.fromkeys(rows.local_id))}
    labs = labs.assign(o=labs.local_id.map(order)).sort_values(["o", "day", "analyte"])
    return [{"研究编号": s.local_id, "检验项目": ANALYTE[s.analyte][0], "结果": float(s.value),
             "单位": ANALYTE[s.analyte][1],
             "采样日期": DateCell(day_to_date(inf[s.local_id], s.day), rng)}
            for s in labs.itertuples()]


def _sheet(wb, name: str, records: list[dict], title_fmt, header_fmt) -> None:
    ws = wb.add_worksheet(name)
    headers = list(records[0].keys())
    ws.merge_range(0, 0, 0, len(headers) - 1, TITLE, title_fmt)
    ws.write_row(1, 0, headers, header_fmt)
    for i, rec in enumerate(records, start=2):
        for j, v in enumerate(rec.values()):
            v = v.value() if isinstance(v, DateCell) else v
            if v is None:
                continue
            if isinstance(v, str):
                ws.write_string(i, j, v)
            else:
                ws.write_number(i, j, v)


def write(rows: pd.DataFrame, path: Path, rng: np.random.Generator) -> None:
    """Write center_b's workbook; rng chooses serial-number versus text for each date."""
    courses = courses_by_patient(rows)
    patients = [patient_row(r, courses, rng) for r in rows.itertuples()
                if r.defect != "orphan_toxicity"]
    tox = [t for r in rows.itertuples() for t in toxicity_rows(r, rng)]
    labs = lab_rows(rows[rows.defect != "orphan_toxicity"], rng)
    wb = xlsxwriter.Workbook(str(path))
    wb.set_properties({"title": TITLE, "author": "HIS export", "created": CREATED})
    title_fmt = wb.add_format({"bold": True, "align": "center"})
    header_fmt = wb.add_format({"bold": True})
    for name, records in (("患者", patients), ("毒性", tox), ("检验", labs)):
        _sheet(wb, name, records, title_fmt, header_fmt)
    wb.close()
