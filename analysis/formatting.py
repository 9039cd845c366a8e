"""Numbers as the paper prints them, shared by the report, the figures and the audit."""
from __future__ import annotations

import numpy as np


def format_p(p: float | None) -> str:
    """p as the paper prints it: 3 decimals, '<0.001' below that, 'NA' when undefined."""
    if p is None or not np.isfinite(p):
        return "NA"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def format_number(x: float | None, decimals: int = 2) -> str:
    """Thousands separated, no trailing zeros: 1,459.5 / 23.75 / 2; 'NA' when undefined."""
    if x is None or not np.isfinite(x):
        return "NA"
    return f"{x:,.{decimals}f}".rstrip("0").rstrip(".")
