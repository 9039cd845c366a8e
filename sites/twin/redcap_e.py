"""center_e: a small SYNTHETIC REDCap export for the onboarding walkthrough (docs/onboarding.md).

Not part of the 93-patient twin (center_e is not in carpool.yml): ten made-up records,
drawn with a fixed seed, written the way REDCap writes a "raw" CSV export with its data
dictionary:

- `export/cart_redcap_raw.csv`: one base row per record (forms enrollment, treatment,
  followup; `redcap_repeat_instrument` empty) plus one row per instance of the repeating
  instruments `toxicity_episode` and `lab_result`; radio/dropdown fields hold the raw
  codes, the checkbox `tx_given` becomes `tx_given___1..3` (0/1), dates are `YYYY-MM-DD`,
  and every form has its `<form>_complete` status column;
- `export/cart_redcap_dictionary.csv`: the REDCap data dictionary (field labels, choices,
  identifier flags).

Planted defects (so `carpool validate --site center_e` has something to show):
- E-009: the CAR-T infusion date is empty (REQUIRED_MISSING, the patient is quarantined);
- E-010: a toxicity episode with onset `2021-02-30` (DATE_UNPARSEABLE, patient quarantined).

Run: `.venv/bin/python -m sites.twin.redcap_e` (rewrites sites/center_e/export/ byte-identically).
"""
from __future__ import annotations

import csv
import random
from datetime import date, timedelta
from pathlib import Path

SEED = 20230301
N_RECORDS = 10
EXPORT_DIR = Path(__file__).resolve().parents[1] / "center_e" / "export"
DATA_FILE, DICT_FILE = "cart_redcap_raw.csv", "cart_redcap_dictionary.csv"

_YN = "1, Yes | 0, No"
# (field, form, type, label, choices, validation, identifier)
FIELDS = [
    ("record_id", "enrollment", "text", "Record ID", "", "", ""),
    ("pt_name", "enrollment", "text", "Patient name", "", "", "y"),
    ("mrn", "enrollment", "text", "Medical record number", "", "", "y"),
    ("dob", "enrollment", "text", "Date of birth", "", "date_ymd", "y"),
    ("phone", "enrollment", "text", "Contact phone", "", "phone", "y"),
    ("sex", "enrollment", "radio", "Sex", "1, Male | 2, Female", "", ""),
    ("ph_status", "enrollment", "yesno", "Philadelphia chromosome positive", "", "", ""),
    ("dis_status", "enrollment", "radio", "Disease status at CAR-T",
     "1, Primary refractory | 2, Relapsed", "", ""),
    ("n_relapse", "enrollment", "text", "Number of prior relapses", "", "integer", ""),
    ("prior_lines", "enrollment", "text", "Number of prior therapy lines", "", "integer", ""),
    ("bm_blasts", "enrollment", "text", "Bone marrow blasts (%)", "", "number", ""),
    ("ecog", "enrollment", "radio", "ECOG performance status", "0, 0 | 1, 1 | 2, 2 | 3, 3 | 4, 4", "", ""),
    ("weight_kg", "enrollment", "text", "Body weight (kg)", "", "number", ""),
    ("cart_date", "treatment", "text", "CAR-T infusion date", "", "date_ymd", ""),
    ("cart_dose", "treatment", "text", "CAR-T dose (x10^6 cells/kg)", "", "number", ""),
    ("tx_given", "treatment", "checkbox", "Treatment given for CRS/ICANS",
     "1, Tocilizumab | 2, Dexamethasone | 3, Methylprednisolone", "", ""),
    ("toci_start", "treatment", "text", "Tocilizumab start date", "", "date_ymd", ""),
    ("toci_end", "treatment", "text", "Tocilizumab last dose date", "", "date_ymd", ""),
    ("toci_mg", "treatment", "text", "Tocilizumab cumulative dose (mg)", "", "number", ""),
    ("dex_start", "treatment", "text", "Dexamethasone start date", "", "date_ymd", ""),
    ("dex_end", "treatment", "text", "Dexamethasone last dose date", "", "date_ymd", ""),
    ("dex_mg", "treatment", "text", "Dexamethasone cumulative dose (mg)", "", "number", ""),
    ("mp_start", "treatment", "text", "Methylprednisolone start date", "", "date_ymd", ""),
    ("mp_end", "treatment", "text", "Methylprednisolone last dose date", "", "date_ymd", ""),
    ("mp_mg", "treatment", "text", "Methylprednisolone cumulative dose (mg)", "", "number", ""),
    ("resp_d30", "followup", "radio", "Response at day 30", "1, CR | 2, PR | 3, NR | 4, PD", "", ""),
    ("resp_date", "followup", "text", "Response assessment date", "", "date_ymd", ""),
    ("mrd_pct", "followup", "text", "MRD by flow (%)", "", "number", ""),
    ("relapse_date", "followup", "text", "Relapse date", "", "date_ymd", ""),
    ("death_date", "followup", "text", "Date of death", "", "date_ymd", ""),
    ("last_fu_date", "followup", "text", "Date of last follow-up", "", "date_ymd", ""),
    ("tox_type", "toxicity_episode", "radio", "Toxicity type", "1, CRS | 2, ICANS", "", ""),
    ("tox_grade", "toxicity_episode", "radio", "ASTCT 2019 grade", "1, 1 | 2, 2 | 3, 3 | 4, 4 | 5, 5", "", ""),
    ("tox_onset", "toxicity_episode", "text", "Onset date", "", "date_ymd", ""),
    ("tox_resolved", "toxicity_episode", "text", "Resolution date", "", "date_ymd", ""),
    ("lab_test", "lab_result", "dropdown", "Lab test", "1, IL-6 | 2, Ferritin", "", ""),
    ("lab_date", "lab_result", "text", "Sample date", "", "date_ymd", ""),
    ("lab_value", "lab_result", "text", "Result", "", "number", ""),
    ("lab_unit", "lab_result", "text", "Unit", "", "", ""),
]
FORMS = ["enrollment", "treatment", "followup", "toxicity_episode", "lab_result"]
REPEATING = {"toxicity_episode", "lab_result"}
DICT_HEADER = ["Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
               "Choices, Calculations, OR Slider Labels", "Field Note",
               "Text Validation Type OR Show Slider Number", "Text Validation Min",
               "Text Validation Max", "Identifier?", "Branching Logic (Show field only if...)",
               "Required Field?", "Custom Alignment", "Question Number (surveys only)",
               "Matrix Group Name", "Matrix Ranking?", "Field Annotation"]
_SURNAMES = ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou"]
_GIVEN = ["Wei", "Fang", "Min", "Jing", "Qiang", "Lei", "Jun", "Tao", "Hua", "Lan"]


def columns() -> list[str]:
    """Raw-export column order: REDCap puts the repeat columns after record_id."""
    out = ["record_id", "redcap_repeat_instrument", "redcap_repeat_instance"]
    for form in FORMS:
        for name, f, ftype, *_ in FIELDS:
            if f != form or name == "record_id":
                continue
            if ftype == "checkbox":
                out += [f"{name}___{k}" for k in (1, 2, 3)]
            else:
                out.append(name)
        out.append(f"{form}_complete")
    return out


def _d(x: date | None) -> str:
    return x.isoformat() if x else ""


def records(seed: int = SEED, id_prefix: str = "E", plant: bool = True) -> list[dict]:
    """All export rows (base rows and repeat instances), as REDCap writes them. `id_prefix`
    and `plant` (the planted defects) let center_f (`sites.twin.redcap_f`) reuse the draw."""
    rng = random.Random(seed)
    rows = []
    for i in range(1, N_RECORDS + 1):
        rid = f"{id_prefix}-{i:03d}"
        inf = date(2020, 3, 2) + timedelta(days=rng.randrange(0, 700))
        born = inf - timedelta(days=rng.randrange(18 * 365, 70 * 365))
        crs = rng.choice([0, 1, 1, 2, 2, 3])
        icans = rng.choice([0, 0, 1, 3]) if crs else 0
        cr = rng.random() < 0.75
        base = {"record_id": rid, "redcap_repeat_instrument": "", "redcap_repeat_instance": "",
                "pt_name": f"{rng.choice(_SURNAMES)} {rng.choice(_GIVEN)}",
                "mrn": f"E{rng.randrange(10**6, 10**7)}", "dob": _d(born),
                "phone": f"170-0000-{rng.randrange(10**4):04d}",
                "sex": str(rng.choice([1, 2])), "ph_status": str(int(rng.random() < 0.2)),
                "ecog": str(rng.choice([0, 1, 1])), "weight_kg": f"{rng.uniform(45, 90):.1f}",
                "bm_blasts": f"{rng.uniform(5, 90):.1f}", "prior_lines": str(rng.randrange(2, 6)),
                "cart_date": _d(inf), "cart_dose": f"{rng.choice([0.5, 1.0, 2.0, 5.0])}"}
        refractory = rng.random() < 0.3
        base.update(dis_status="1" if refractory else "2", n_relapse="0" if refractory else str(rng.randrange(1, 3)))
        tx = {1: crs >= 2, 2: icans >= 1 or crs >= 3, 3: crs >= 3 and rng.random() < 0.5}
        for k, given in tx.items():
            base[f"tx_given___{k}"] = str(int(given))
        for k, prefix, mg in ((1, "toci", 8 * 60), (2, "dex", 40), (3, "mp", 1000)):
            if tx[k]:
                start = inf + timedelta(days=rng.randrange(2, 6))
                base[f"{prefix}_start"] = _d(start)
                base[f"{prefix}_end"] = _d(start + timedelta(days=rng.randrange(0, 4)))
                base[f"{prefix}_mg"] = str(mg * rng.randrange(1, 4))
        resp = inf + timedelta(days=28 + rng.randrange(0, 5))
        base.update(resp_d30="1" if cr else rng.choice(["3", "4"]), resp_date=_d(resp),
                    mrd_pct=f"{rng.choice([0.0, 0.001, 0.005, 0.2]):g}" if cr else "")
        last = inf + timedelta(days=rng.randrange(150, 900))
        if cr and rng.random() < 0.3:
            base["relapse_date"] = _d(resp + timedelta(days=rng.randrange(60, 120)))
        if rng.random() < 0.25:
            base["death_date"] = _d(last)
        base["last_fu_date"] = _d(last)
        for form in ("enrollment", "treatment", "followup"):
            base[f"{form}_complete"] = "2"
        rows.append(base)
        instance = 0
        for kind, grade in (("1", crs), ("2", icans)):
            if grade:
                instance += 1
                onset = inf + timedelta(days=rng.randrange(1, 7))
                rows.append({"record_id": rid, "redcap_repeat_instrument": "toxicity_episode",
                             "redcap_repeat_instance": str(instance), "tox_type": kind,
                             "tox_grade": str(grade), "tox_onset": _d(onset),
                             "tox_resolved": _d(onset + timedelta(days=rng.randrange(2, 9))),
                             "toxicity_episode_complete": "2"})
        instance = 0
        for test, unit, scale in (("1", "pg/mL", 300.0), ("2", "ng/mL", 2000.0)):
            for day in (0, 7):
                instance += 1
                rows.append({"record_id": rid, "redcap_repeat_instrument": "lab_result",
                             "redcap_repeat_instance": str(instance), "lab_test": test,
                             "lab_date": _d(inf + timedelta(days=day)),
                             "lab_value": f"{rng.uniform(0.1, 1.0) * scale:.1f}", "lab_unit": unit,
                             "lab_result_complete": "2"})
    if plant:
        _plant_defects(rows)
    return rows


def _plant_defects(rows: list[dict]) -> None:
    for r in rows:
        if r["record_id"] == "E-009" and not r["redcap_repeat_instrument"]:
            r["cart_date"] = ""                       # REQUIRED_MISSING (infusion_date)
    tox = [r for r in rows if r["record_id"] == "E-010" and r["redcap_repeat_instrument"] == "toxicity_episode"]
    if tox:
        tox[0]["tox_onset"] = "2021-02-30"            # DATE_UNPARSEABLE (onset_date)
    else:                                             # no episode drawn: add one with the bad date
        rows.append({"record_id": "E-010", "redcap_repeat_instrument": "toxicity_episode",
                     "redcap_repeat_instance": "1", "tox_type": "1", "tox_grade": "1",
                     "tox_onset": "2021-02-30", "tox_resolved": "", "toxicity_episode_complete": "2"})


def write(out_dir: Path = EXPORT_DIR, seed: int = SEED) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    cols = columns()
    data = out_dir / DATA_FILE
    with data.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, lineterminator="\n", restval="")
        w.writeheader()
        w.writerows(records(seed))
    return [data, write_dictionary(out_dir / DICT_FILE, FIELDS)]


def write_dictionary(path: Path, fields) -> Path:
    """A REDCap data dictionary CSV from (name, form, type, label, choices, validation, identifier) rows."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(DICT_HEADER)
        for name, form, ftype, label, choices, validation, ident in fields:
            w.writerow([name, form, "", ftype, label, choices, "", validation, "", "", ident,
                        "", "", "", "", "", "", ""])
    return path


if __name__ == "__main__":
    for p in write():
        print(p)
