"""Registered conversions: dates, numbers, booleans, units, derivations."""
from datetime import date, datetime

import pandas as pd
import pytest

from etl.compile import convert


@pytest.mark.parametrize("v, fmts, want", [
    ("2023-01-05", ["iso"], date(2023, 1, 5)),
    ("05/01/2023", ["dmy"], date(2023, 1, 5)),
    ("2023/01/05", ["ymd_slash"], date(2023, 1, 5)),
    ("01/05/2023", ["mdy"], date(2023, 1, 5)),
    ("44931", ["excel_serial"], date(2023, 1, 5)),
    (44931.0, ["excel_serial"], date(2023, 1, 5)),
    ("2023/01/05", ["excel_serial", "ymd_slash"], date(2023, 1, 5)),
    ("05.01.2023", ["%d.%m.%Y"], date(2023, 1, 5)),
    (datetime(2023, 1, 5, 13, 0), ["iso"], date(2023, 1, 5)),
    (pd.Timestamp("2023-01-05"), ["iso"], date(2023, 1, 5)),
    (date(2023, 1, 5), ["dmy"], date(2023, 1, 5)),
    (" 2023-01-05 ", ["iso"], date(2023, 1, 5)),
])
def test_parse_date(v, fmts, want):
    assert convert.parse_date(v, fmts) == want


@pytest.mark.parametrize("v, fmts", [
    ("2023-02-30", ["iso"]), ("44931.5", ["excel_serial"]), ("0", ["excel_serial"]),
    ("yesterday", ["iso", "dmy"]), (True, ["excel_serial"]), ("", ["iso"]),
])
def test_parse_date_rejects(v, fmts):
    with pytest.raises(ValueError, match=" or ".join(fmts)):
        convert.parse_date(v, fmts)


@pytest.mark.parametrize("v, dec, want", [
    ("12.5", ".", 12.5), ("12,5", ",", 12.5), ("1.234,5", ",", 1234.5), (" 3 ", ".", 3.0),
    (7, ".", 7.0), ("1\u00a0000", ".", 1000.0), ("-0.5", ".", -0.5),
])
def test_parse_number(v, dec, want):
    assert convert.parse_number(v, dec) == want


@pytest.mark.parametrize("v", ["abc", "nan", "inf", "1e400", True, "1,5"])
def test_parse_number_rejects(v):
    with pytest.raises(ValueError):
        convert.parse_number(v)


def test_parse_int():
    assert convert.parse_int("3") == 3 and convert.parse_int("3.0") == 3 and convert.parse_int("3,0", ",") == 3
    with pytest.raises(ValueError, match="whole number"):
        convert.parse_int("2.5")


def test_parse_int_rejects_huge_numbers():
    """Regression (huge integer crash): 1e30 parsed as an int, then overflowed Int64."""
    with pytest.raises(ValueError, match="plausible size"):
        convert.parse_int("1e30")
    assert convert.parse_int(str(2**53 - 1)) == 2**53 - 1


@pytest.mark.parametrize("v, want", [
    ("1", True), ("Yes", True), ("是", True), ("阳性", True), (1.0, True), ("1.0", True), (True, True),
    ("0", False), ("no", False), ("否", False), ("neg", False), ("0.0", False), (False, False),
])
def test_parse_bool(v, want):
    assert convert.parse_bool(v) is want


@pytest.mark.parametrize("v", ["maybe", "2", ""])
def test_parse_bool_rejects(v):
    with pytest.raises(ValueError, match="yes/no"):
        convert.parse_bool(v)


@pytest.mark.parametrize("v", [None, float("nan"), "", " ", "NA", "N/A", "null", "."])
def test_is_missing(v):
    assert convert.is_missing(v)


@pytest.mark.parametrize("v", [0, "0", "x", False, "none"])
def test_is_not_missing(v):
    assert not convert.is_missing(v)


def test_units():
    assert convert.convert_unit(1.5, "ng/mL", "pg/mL") == 1500.0
    assert convert.convert_unit(2, "g", "mg") == 2000.0
    assert convert.convert_unit(5, "10^5 cells/kg", "10^6 cells/kg") == 0.5
    with pytest.raises(ValueError, match=r"convertible to pg/mL \(got 'mmol/L'\)"):
        convert.convert_unit(1, "mmol/L", "pg/mL")


def test_per_kg():
    assert convert.per_kg(1.5, 50, "10^8 cells") == 3.0
    assert convert.per_kg(2e8, 100, "cells") == 2.0
    with pytest.raises(ValueError, match="positive body weight"):
        convert.per_kg(1, 0, "10^8 cells")
    with pytest.raises(ValueError, match="cell-count unit"):
        convert.per_kg(1, 50, "mL")


def test_age_at():
    assert convert.age_at(date(1980, 6, 15), date(2023, 6, 14)) == 42
    assert convert.age_at(date(1980, 6, 15), date(2023, 6, 15)) == 43
    assert convert.age_at(date(2000, 2, 29), date(2023, 2, 28)) == 22


def test_storable_date_and_add_days():
    assert convert.storable_date(date(2023, 1, 1)) == date(2023, 1, 1)
    for d in (date(9999, 12, 31), date(1, 1, 1)):
        with pytest.raises(ValueError, match="a date between"):
            convert.storable_date(d)
    assert convert.add_days(date(2023, 1, 1), 30) == date(2023, 1, 31)
    with pytest.raises(ValueError):
        convert.add_days(date(9999, 12, 31), 1)


def test_date_bounds_are_the_days_pandas_can_hold():
    """DATE_MIN/DATE_MAX are written out (no pandas import to read a mapping); they are the
    first and last whole days of pandas' Timestamp range."""
    from datetime import timedelta

    assert convert.DATE_MIN == (pd.Timestamp.min + timedelta(days=1)).date()
    assert convert.DATE_MAX == pd.Timestamp.max.date()
    assert pd.Timestamp(convert.DATE_MIN) >= pd.Timestamp.min
    assert pd.Timestamp(convert.DATE_MAX) <= pd.Timestamp.max
