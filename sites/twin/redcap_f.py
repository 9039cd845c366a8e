"""center_f: a harder SYNTHETIC REDCap export for the site-extension part of docs/onboarding.md.

center_e's draw (`sites.twin.redcap_e.records`, another seed, ids `F-001..`, no planted
defects), made as the issue-13 center was:

- a per-row grading scale: the dropdown `tox_scale` (ASTCT 2019 / Lee 2014 / Penn /
  CTCAE v4.03) says which scale each episode's `tox_grade` is on;
- a local agent: the checkbox `tx_given` has a fourth option, Anakinra, which is not in the
  common drug list (`tx_given___4`, with `ana_start`, `ana_end`, `ana_mg`);
- an unknown date: one episode's onset is REDCap's missing-data code `UNK`;
- a late ICANS: one ICANS episode starts 45 days after infusion (inside the catalog's
  90-day onset window, outside the 30 days center_f sets for itself).

Not in carpool.yml. Run: `.venv/bin/python -m sites.twin.redcap_f` (rewrites
sites/center_f/export/ byte-identically).
"""
from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

from sites.twin import redcap_e as e

SEED = 20230302
EXPORT_DIR = Path(__file__).resolve().parents[1] / "center_f" / "export"
SCALES = "1, ASTCT 2019 | 2, Lee 2014 | 3, Penn | 4, CTCAE v4.03"
LATE_ICANS_DAYS = 45


def fields() -> list[tuple]:
    out = []
    for f in e.FIELDS:
        name = f[0]
        if name == "tx_given":
            f = (*f[:4], f[4] + " | 4, Anakinra", *f[5:])
        if name == "tox_grade":
            f = (name, f[1], "text", "Grade (on the episode's scale, tox_scale)", "", "integer", "")
        out.append(f)
        if name == "mp_mg":
            out += [("ana_start", "treatment", "text", "Anakinra start date", "", "date_ymd", ""),
                    ("ana_end", "treatment", "text", "Anakinra last dose date", "", "date_ymd", ""),
                    ("ana_mg", "treatment", "text", "Anakinra cumulative dose (mg)", "", "number", "")]
        if name == "tox_type":
            out.append(("tox_scale", "toxicity_episode", "dropdown", "Grading scale", SCALES, "", ""))
    return out


def columns() -> list[str]:
    out = ["record_id", "redcap_repeat_instrument", "redcap_repeat_instance"]
    for form in e.FORMS:
        for name, f, ftype, _label, choices, *_ in fields():
            if f != form or name == "record_id":
                continue
            out += [f"{name}___{k}" for k in range(1, choices.count("|") + 2)] if ftype == "checkbox" else [name]
        out.append(f"{form}_complete")
    return out


def records(seed: int = SEED) -> list[dict]:
    rows = e.records(seed, id_prefix="F", plant=False)
    infusion = {r["record_id"]: date.fromisoformat(r["cart_date"]) for r in rows if not r["redcap_repeat_instrument"]}
    episodes = [r for r in rows if r["redcap_repeat_instrument"] == "toxicity_episode"]
    for k, r in enumerate(episodes):          # CRS on ASTCT/Lee/Penn, ICANS on ASTCT/CTCAE, in turn
        r["tox_scale"] = ("1", "2", "3")[k % 3] if r["tox_type"] == "1" else ("1", "4")[k % 2]
    icans = [r for r in episodes if r["tox_type"] == "2"]
    late = icans[0]
    onset = infusion[late["record_id"]] + timedelta(days=LATE_ICANS_DAYS)
    late.update(tox_onset=onset.isoformat(), tox_resolved=(onset + timedelta(days=4)).isoformat())
    unknown = next(r for r in episodes if r is not late and r["tox_type"] == "1")
    unknown["tox_onset"] = "UNK"              # REDCap missing-data code: the onset is not known
    base = [r for r in rows if not r["redcap_repeat_instrument"]]
    for r in base:
        r["tx_given___4"] = "0"
    for r in base[2:4]:                       # two patients got anakinra for steroid-refractory ICANS/CRS
        start = infusion[r["record_id"]] + timedelta(days=6)
        r.update(tx_given___4="1", ana_start=start.isoformat(), ana_end=(start + timedelta(days=4)).isoformat(),
                 ana_mg="500")
    return rows


def write(out_dir: Path = EXPORT_DIR, seed: int = SEED) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    data = out_dir / e.DATA_FILE
    with data.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns(), lineterminator="\n", restval="")
        w.writeheader()
        w.writerows(records(seed))
    return [data, e.write_dictionary(out_dir / e.DICT_FILE, fields())]


if __name__ == "__main__":
    for p in write():
        print(p)
