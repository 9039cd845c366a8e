"""Registered, named conversions a mapping file may ask for. Config never holds code.

- date formats: `iso`, `dmy`, `ymd_slash`, `excel_serial`, or any strftime pattern;
- numbers with a decimal point or comma; integers; booleans;
- unit conversions between named units (`UNITS`), to the column's canonical unit;
- derivations (`DERIVATIONS`): small named functions over source columns.

Each parser returns a value or raises `ValueError` with what was expected; the mapper
turns that into a quarantine finding for the row.
"""
from __future__ import annotations

import math
from datetime import date, datetime, timedelta

DATE_FORMATS = {"iso": "%Y-%m-%d", "dmy": "%d/%m/%Y", "ymd_slash": "%Y/%m/%d", "mdy": "%m/%d/%Y"}
EXCEL_EPOCH = date(1899, 12, 30)
TRUE = {"1", "true", "t", "yes", "y", "是", "阳性", "positive", "pos", "+"}
FALSE = {"0", "false", "f", "no", "n", "否", "阴性", "negative", "neg", "-"}

# factor to multiply a value in the first unit to get the second
UNITS: dict[tuple[str, str], float] = {
    ("pg/mL", "pg/mL"): 1.0,
    ("ng/mL", "pg/mL"): 1000.0,
    ("ng/L", "pg/mL"): 1.0,
    ("ng/mL", "ng/mL"): 1.0,
    ("ug/L", "ng/mL"): 1.0,
    ("µg/L", "ng/mL"): 1.0,
    ("copies/ug gDNA", "copies/ug gDNA"): 1.0,
    ("10^6 cells/kg", "10^6 cells/kg"): 1.0,
    ("10^5 cells/kg", "10^6 cells/kg"): 0.1,
    ("%", "%"): 1.0,
    ("mg", "mg"): 1.0,
    ("g", "mg"): 1000.0,
    ("degC", "degC"): 1.0,
    ("L/min", "L/min"): 1.0,
    ("years", "years"): 1.0,
}
# total-cell units, for per-kg doses: cells in units of 10^6
CELL_COUNT_1E6 = {"10^6 cells": 1.0, "10^7 cells": 10.0, "10^8 cells": 100.0, "cells": 1e-6}


def norm_text(v: object) -> str:
    """A source cell as text for matching codes and ids: stripped, and `2.0` read as `2`
    (Excel and SPSS hand whole numbers over as floats)."""
    s = str(v).strip()
    return s[:-2] if s.endswith(".0") and s[:-2].lstrip("-").isdigit() else s


# What a failed conversion says was expected (the DuckDB path renders the same texts).
EXPECT_NUMBER, EXPECT_FINITE = "a number", "a finite number"
EXPECT_WHOLE, EXPECT_PLAUSIBLE_INT = "a whole number", "a whole number of a plausible size"
EXPECT_BOOL = "yes/no (1/0, true/false)"
# `6.543` in a decimal-comma file: 6,543 with a stray point, or 6543 with a thousands point?
AMBIGUOUS_DECIMAL = r"^[+-]?[0-9]{1,3}\.[0-9]{3}$"
EXPECT_DECIMAL_COMMA = "write 6,543 (decimal comma) or 6543"
INT_LIMIT = 2**53                 # beyond exact floats; would overflow the Int64 column
EXCEL_SERIAL_MAX = 2958466        # 9999-12-31 as an Excel serial


def expect_unit(target_unit: str, source_unit: str) -> str:
    return f"a unit convertible to {target_unit} (got {source_unit!r})"


MISSING_MARKERS = ("", "NA", "N/A", "na", "NULL", "null", ".")   # text a cell holds when it holds nothing


def is_missing(v: object) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and v.strip() in MISSING_MARKERS


def parse_number(v: object, decimal: str = ".") -> float:
    if isinstance(v, bool):
        raise ValueError(EXPECT_NUMBER)
    if isinstance(v, int | float):
        return float(v)
    s = str(v).strip().replace("\u00a0", "").replace(" ", "")
    if decimal == ",":
        s = s.replace(".", "").replace(",", ".") if s.count(",") == 1 and "." in s else s.replace(",", ".")
    try:
        x = float(s)
    except ValueError:
        raise ValueError(EXPECT_NUMBER) from None
    if math.isnan(x) or math.isinf(x):
        raise ValueError(EXPECT_FINITE)
    return x


def parse_int(v: object, decimal: str = ".") -> int:
    x = parse_number(v, decimal)
    if x != int(x):
        raise ValueError(EXPECT_WHOLE)
    if abs(x) >= INT_LIMIT:
        raise ValueError(EXPECT_PLAUSIBLE_INT)
    return int(x)


def parse_bool(v: object) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s.endswith(".0"):
        s = s[:-2]
    if s in TRUE:
        return True
    if s in FALSE:
        return False
    raise ValueError(EXPECT_BOOL)


def parse_date(v: object, formats: list[str]) -> date:
    """Parse with the first matching format; native dates pass through."""
    if isinstance(v, datetime):   # pandas' Timestamp too
        return v.date()
    if isinstance(v, date):
        return v
    s = str(v).strip()
    for fmt in formats:
        if fmt == "excel_serial":
            try:
                n = parse_number(v)
            except ValueError:
                continue
            if 1 <= n < EXCEL_SERIAL_MAX and n == int(n):
                return EXCEL_EPOCH + timedelta(days=int(n))
            continue
        pattern = DATE_FORMATS.get(fmt, fmt)
        if "%" not in pattern:
            raise KeyError(f"unknown date format {fmt!r} (known: {', '.join(DATE_FORMATS)}, excel_serial)")
        try:
            return datetime.strptime(s, pattern).date()
        except ValueError:
            continue
    raise ValueError(" or ".join(formats))


# dates a table column can hold: pandas' datetime64[ns], whole days within Timestamp.min ..
# Timestamp.max (tests/unit/test_convert.py checks them against pandas; written out here so
# that reading a mapping does not import pandas)
DATE_MIN, DATE_MAX = date(1677, 9, 22), date(2262, 4, 11)


def storable_date(d: date) -> date:
    """The date itself, or ValueError when it is outside what a date column can hold
    (e.g. the 9999-12-31 'no date' sentinel of some exports)."""
    if not DATE_MIN <= d <= DATE_MAX:
        raise ValueError(f"a date between {DATE_MIN} and {DATE_MAX}")
    return d


def add_days(d: date, days: int) -> date:
    """`d` plus a day count; ValueError (not OverflowError) when the result is no date."""
    try:
        return d + timedelta(days=days)
    except OverflowError:
        raise ValueError("a day count that gives a valid date") from None


def convert_unit(x: float, source_unit: str, target_unit: str) -> float:
    try:
        return x * UNITS[(source_unit, target_unit)]
    except KeyError:
        raise ValueError(expect_unit(target_unit, source_unit)) from None


def per_kg(total: float, weight_kg: float, unit: str) -> float:
    """Per-kg dose in 10^6 cells/kg from a total cell count in `unit` and a weight."""
    if unit not in CELL_COUNT_1E6:
        raise ValueError(f"a cell-count unit ({', '.join(CELL_COUNT_1E6)})")
    if weight_kg <= 0:
        raise ValueError("a positive body weight")
    return round(total * CELL_COUNT_1E6[unit] / weight_kg, 6)


def age_at(birth: date, at: date) -> int:
    """Completed years between two dates."""
    return at.year - birth.year - ((at.month, at.day) < (birth.month, birth.day))
