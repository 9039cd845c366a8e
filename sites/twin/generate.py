"""`carpool twin`: draw the synthetic twin's truth table and write the four center exports.

With no arguments it rewrites the committed `sites/twin/truth.csv` and
`sites/<center>/export/*` from the committed, calibrated seed, and must reproduce them
exactly (a test checks). `--out DIR` writes `DIR/twin/truth.csv` and
`DIR/<center>/export/*` instead. These are SYNTHETIC patients, not real ones.
"""
from __future__ import annotations

from pathlib import Path

from sites.twin import cohort, exports

SITES_DIR = Path(__file__).resolve().parents[1]


def generate(root: Path | None = None, seed: int | None = None) -> list[Path]:
    root = Path(root) if root is not None else SITES_DIR
    truth_path = root / "twin" / "truth.csv"
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    cohort.write_truth(truth_path, seed if seed is not None else cohort.DEFAULT_SEED)
    written = exports.write_exports(cohort.load_truth(truth_path), root)
    return [truth_path, *written]
