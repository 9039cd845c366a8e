"""Write the twin's four center exports, planted defects included, from the truth table.

    python -m sites.twin.exports [--truth sites/twin/truth.csv] [--root sites] [--seed N]

Each center gets `<root>/<center>/export/<file>` in its own honest format (see
sites/README.md): center_a one-row-per-patient UTF-8 CSV, center_b a Chinese xlsx
workbook, center_c a GBK event-level CSV, center_d an SPSS .sav with value labels.
Clinical facts (lab series, treatment courses) come from sites.twin.tables and are
seeded there; `seed` only sets the presentation: where the extra (defect) records sit
among the valid ones and which center_b dates are serial numbers versus text.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from sites.twin import export_a, export_b, export_c, export_d
from sites.twin.cohort import load_truth
from sites.twin.defects import FILES, NEGATIVE_LAB_HOST, extra_patients
from sites.twin.tables import SEED, normalize_truth

SITES = ("center_a", "center_b", "center_c", "center_d")
WRITERS: dict[str, Callable[[pd.DataFrame, Path, np.random.Generator], None]] = {
    "center_a": export_a.write, "center_b": export_b.write,
    "center_c": export_c.write, "center_d": export_d.write,
}


def site_rows(truth: pd.DataFrame, site_id: str, seed: int = SEED) -> pd.DataFrame:
    """The site's valid patients with its extra (defect) records placed among them."""
    t = normalize_truth(truth)
    valid = t[t.site_id == site_id].reset_index(drop=True)
    valid["defect"] = None
    extras = extra_patients(truth, site_id)
    rng = np.random.default_rng([seed, SITES.index(site_id)])
    slots = np.sort(rng.choice(len(valid) + 1, size=len(extras), replace=True))
    parts, start = [], 0
    for i, slot in enumerate(slots):
        parts += [valid.iloc[start:slot], extras.iloc[[i]]]
        start = slot
    parts.append(valid.iloc[start:])
    return pd.concat(parts, ignore_index=True)


def write_exports(truth: pd.DataFrame, root: Path, seed: int = SEED) -> list[Path]:
    """Write all four exports under root/<center>/export/ and return their paths."""
    t = normalize_truth(truth)
    c_ids = set(t.loc[t.site_id == "center_c", "local_id"])
    if NEGATIVE_LAB_HOST not in c_ids:
        raise ValueError(f"defects.NEGATIVE_LAB_HOST {NEGATIVE_LAB_HOST!r} is not a center_c "
                         f"patient of this truth table; pick one of {sorted(c_ids)[:5]}")
    paths = []
    for site in SITES:
        out = Path(root) / site / "export" / FILES[site]
        out.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng([seed, 100 + SITES.index(site)])
        WRITERS[site](site_rows(t, site, seed), out, rng)
        paths.append(out)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--truth", type=Path, default=Path("sites/twin/truth.csv"))
    parser.add_argument("--root", type=Path, default=Path("sites"))
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    truth = load_truth(args.truth)
    for path in write_exports(truth, args.root, args.seed):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
