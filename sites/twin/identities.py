"""Fake direct identifiers for the twin: names, MRNs, phone numbers, local ids.

Nothing here refers to a real person. Names are drawn from short lists of common
Chinese surnames and given-name syllables (pinyin; hanzi for center_b, whose
export is in Chinese). Phone numbers use the 170 0000 block, MRNs and local ids
follow a center-specific pattern so that the exports look like four different
hospitals.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

_SURNAMES = [("Wang", "王"), ("Li", "李"), ("Zhang", "张"), ("Liu", "刘"), ("Chen", "陈"),
             ("Yang", "杨"), ("Huang", "黄"), ("Zhao", "赵"), ("Wu", "吴"), ("Zhou", "周"),
             ("Xu", "徐"), ("Sun", "孙"), ("Ma", "马"), ("Zhu", "朱"), ("Hu", "胡"),
             ("Guo", "郭"), ("He", "何"), ("Lin", "林"), ("Luo", "罗"), ("Gao", "高")]
_GIVEN = [("Wei", "伟"), ("Fang", "芳"), ("Na", "娜"), ("Min", "敏"), ("Jing", "静"),
          ("Qiang", "强"), ("Lei", "磊"), ("Jun", "军"), ("Yang", "洋"), ("Yong", "勇"),
          ("Yan", "艳"), ("Jie", "杰"), ("Tao", "涛"), ("Ming", "明"), ("Chao", "超"),
          ("Xiu", "秀"), ("Hua", "华"), ("Hui", "慧"), ("Lan", "兰"), ("Ping", "平"),
          ("Gang", "刚"), ("Bo", "波"), ("Hong", "红"), ("Xin", "欣"), ("Yu", "宇")]


def _name(rng: np.random.Generator, site: str) -> str:
    sur = _SURNAMES[rng.integers(len(_SURNAMES))]
    parts = [_GIVEN[rng.integers(len(_GIVEN))] for _ in range(rng.integers(1, 3))]
    if site == "center_b":
        return sur[1] + "".join(p[1] for p in parts)
    given = "".join(p[0] for p in parts).capitalize()
    if site == "center_c":
        return f"{sur[0].upper()}, {given}"
    return f"{given} {sur[0]}" if site == "center_d" else f"{sur[0]} {given}"


def _local_ids(site: str, years: list[int]) -> list[str]:
    if site == "center_a":
        return [f"A{k:04d}" for k in range(1, len(years) + 1)]
    if site == "center_b":
        seen: dict[int, int] = {}
        out = []
        for y in years:
            seen[y] = seen.get(y, 0) + 1
            out.append(f"BJ-{y}-{seen[y]:03d}")
        return out
    if site == "center_c":
        return [f"C-{100 + k}" for k in range(1, len(years) + 1)]
    return [f"{40000 + 11 * k}" for k in range(1, len(years) + 1)]


def _mrn(rng: np.random.Generator, site: str) -> str:
    digits = "".join(str(d) for d in rng.integers(0, 10, size=7))
    return {"center_a": f"MRN{digits}", "center_b": f"ZY{digits}",
            "center_c": f"{digits[:3]}-{digits[3:]}", "center_d": f"9{digits}"}[site]


def _years_before(d: date, years: int) -> date:
    """The same calendar day `years` earlier (Feb 29 becomes Feb 28)."""
    try:
        return d.replace(year=d.year - years)
    except ValueError:
        return d.replace(year=d.year - years, day=28)


def identities(rng: np.random.Generator, site_id: pd.Series, infusion_date: pd.Series,
               age_years: pd.Series) -> pd.DataFrame:
    """Identifier columns; rows of a site are numbered in infusion order."""
    out = pd.DataFrame(index=site_id.index, columns=["local_id", "full_name", "mrn",
                                                     "birth_date", "phone"], dtype=object)
    for site in sorted(site_id.unique()):
        rows = infusion_date[site_id == site].sort_values(kind="stable").index
        years = [date.fromisoformat(d).year for d in infusion_date[rows]]
        out.loc[rows, "local_id"] = _local_ids(site, years)
    for i in site_id.index:
        site = site_id[i]
        inf = date.fromisoformat(infusion_date[i])
        # Born after the (age + 1)-th and on or before the age-th anniversary before infusion.
        latest = _years_before(inf, int(age_years[i]))
        earliest = _years_before(inf, int(age_years[i]) + 1) + timedelta(days=1)
        birth = earliest + timedelta(days=int(rng.integers(0, (latest - earliest).days + 1)))
        out.loc[i, "full_name"] = _name(rng, site)
        out.loc[i, "mrn"] = _mrn(rng, site)
        out.loc[i, "birth_date"] = birth.isoformat()
        out.loc[i, "phone"] = "170-0000-" + "".join(str(d) for d in rng.integers(0, 10, 4))
    return out
