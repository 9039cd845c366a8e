"""center_c export: a long, event-level CSV in GBK, semicolon-delimited, decimal commas.

One row per event (登记 registration, 回输 infusion, CRS, ICANS, 检验 lab result,
用药 treatment course, 疗效评估 response, 复发 relapse, 死亡 death, 末次随访 last
contact). Baseline attributes and identifiers are filled on the 登记 row only.
Dates are dd/mm/yyyy; grades are native ASTCT 2019. Lines end in CRLF.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from sites.twin.defects import BAD_DATE, NEGATIVE_LAB_HOST, NEGATIVE_LAB_VALUE
from sites.twin.tables import SOURCE_UNIT, day_to_date, lab_series, treatment_courses

COLUMNS = ["patient_no", "event", "event_date", "end_date", "item", "value", "unit", "grade",
           "result", "name", "mrn", "birth_date", "phone", "sex", "age", "ph", "disease",
           "relapses", "lines", "blasts_pct", "ecog", "weight_kg"]
SEX = {"M": "1", "F": "2"}
DISEASE = {"primary_refractory": "PRIM-REF", "relapsed": "REL"}
AGENT = {"dexamethasone": "地塞米松", "methylprednisolone": "甲泼尼龙", "tocilizumab": "托珠单抗"}
ANALYTE = {a: (name, SOURCE_UNIT["center_c"][a]) for a, name in
           (("il6", "IL-6"), ("ferritin", "铁蛋白"), ("car_copies", "CAR拷贝"))}
REGISTRATION_DAYS_BEFORE = 21


def num(v) -> str:
    """A number with a decimal comma and no exponent; '' for missing."""
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, int | np.integer):
        return str(int(v))
    return np.format_float_positional(float(v), trim="0").replace(".", ",")


def _date(d) -> str:
    return d.strftime("%d/%m/%Y") if d is not None else ""


def patient_events(r, labs: pd.DataFrame, courses: pd.DataFrame) -> list[dict]:
    """All event rows of one patient, registration first, then by day."""
    def on(day):
        return _date(day_to_date(r.infusion_date, day))

    reg = {"patient_no": r.local_id, "event": "登记",
           "event_date": on(-REGISTRATION_DAYS_BEFORE), "name": r.full_name, "mrn": r.mrn,
           "birth_date": _date(r.birth_date), "phone": r.phone, "sex": SEX[r.sex],
           "age": num(r.age_years), "ph": "Y" if r.ph_positive else "N",
           "disease": DISEASE[r.disease_status], "relapses": num(r.n_relapses),
           "lines": num(r.prior_lines), "blasts_pct": num(r.bm_blasts_pct),
           "ecog": num(r.ecog), "weight_kg": num(r.weight_kg)}
    ev = [(0, {"event": "回输", "event_date": on(0), "item": "CD19-41BB",
               "value": num(r.dose_1e6_per_kg), "unit": "10^6/kg"})]
    for tox, pre in (("CRS", "crs"), ("ICANS", "icans")):
        grade = getattr(r, f"{pre}_grade")
        if pd.notna(grade) and int(grade) > 0:
            onset = getattr(r, f"{pre}_onset_day")
            ev.append((onset, {"event": tox, "event_date": on(onset),
                               "end_date": on(getattr(r, f"{pre}_resolution_day")),
                               "grade": str(int(grade))}))
    for s in labs.itertuples():
        ev.append((s.day, {"event": "检验", "event_date": on(s.day), "item": ANALYTE[s.analyte][0],
                           "value": num(s.value), "unit": ANALYTE[s.analyte][1]}))
    for c in courses.itertuples():
        ev.append((c.start_day, {"event": "用药", "event_date": on(c.start_day),
                                 "end_date": on(c.end_day), "item": AGENT[c.agent],
                                 "value": num(c.cumulative_dose_mg), "unit": "mg"}))
    mrd = None if r.mrd_negative is None else ("MRD阴性" if r.mrd_negative else "MRD阳性")
    ev.append((r.response_day, {"event": "疗效评估", "event_date": on(r.response_day),
                                "item": mrd, "value": num(r.mrd_pct),
                                "unit": "%" if mrd else None, "result": r.response}))
    if pd.notna(r.relapse_day):
        text = BAD_DATE if r.defect == "unparseable_date" else on(r.relapse_day)
        ev.append((r.relapse_day, {"event": "复发", "event_date": text}))
    if pd.notna(r.death_day):
        ev.append((r.death_day, {"event": "死亡", "event_date": on(r.death_day)}))
    last = r.last_contact_day
    ev.append((last + 0.5, {"event": "末次随访", "event_date": on(last)}))  # after same-day death
    ev.sort(key=lambda x: x[0])  # stable: same-day events keep the order above
    return [reg] + [{"patient_no": r.local_id} | e for _, e in ev]


def negative_lab(rows: pd.DataFrame, labs: pd.DataFrame) -> pd.DataFrame:
    """The planted negative IL-6 sample on the host, on a day without another IL-6 sample."""
    taken = set(labs[(labs.local_id == NEGATIVE_LAB_HOST) & (labs.analyte == "il6")].day)
    day = next(d for d in range(1, 400) if d not in taken)
    extra = pd.DataFrame([{"site_id": "center_c", "local_id": NEGATIVE_LAB_HOST,
                           "analyte": "il6", "day": day, "value": NEGATIVE_LAB_VALUE,
                           "is_peak": False}])
    return pd.concat([labs, extra], ignore_index=True)


def write(rows: pd.DataFrame, path: Path, rng: np.random.Generator) -> None:
    """Write center_c's event CSV (rng unused: the row order comes from site_rows)."""
    labs = negative_lab(rows, lab_series(rows))
    courses = treatment_courses(rows)
    with open(path, "w", encoding="gbk", newline="") as fh:
        w = csv.DictWriter(fh, COLUMNS, delimiter=";", lineterminator="\r\n", restval="")
        w.writeheader()
        for r in rows.itertuples():
            for e in patient_events(r, labs[labs.local_id == r.local_id],
                                    courses[courses.local_id == r.local_id]):
                w.writerow({k: ("" if v is None else v) for k, v in e.items()})
