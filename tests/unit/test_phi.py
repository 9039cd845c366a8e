"""Issue 15 item 3: no identifier in the quarantine (etl.validate.phi)."""
from __future__ import annotations

import pandas as pd

from etl.validate.phi import MASK, IdentifierMatcher, mask_quarantine
from etl.validate.pseudonymize import study_id


def q(*rows) -> pd.DataFrame:
    return pd.DataFrame([{"site_id": "x", "source_file": "f.csv", "source_row": i + 2, "target_table": "patient",
                          "rule_id": rule, "severity": "error", "column_name": col, "value": value, "message": msg}
                         for i, (rule, col, value, msg) in enumerate(rows)])


def test_a_value_containing_an_identifier_is_masked_whole():
    """The issue's examples: `Male 170-0000-5666` and `CR Gao Hongjun` kept the identifier."""
    out = mask_quarantine(q(("UNKNOWN_CODE", "sex", "Male 170-0000-5666", "sex = 'Male 170-0000-5666' ..."),
                            ("UNKNOWN_CODE", "response", "CR Gao Hongjun", "response = 'CR Gao Hongjun' ..."),
                            ("UNKNOWN_CODE", "response", "cr gao hongjun", "x")),
                          {"170-0000-5666", "Gao Hongjun"})
    assert list(out["value"]) == [MASK, MASK, MASK]
    assert "5666" not in out.to_csv() and "Hongjun" not in out.to_csv()


def test_short_identifiers_are_masked_as_whole_tokens_only():
    m = IdentifierMatcher({"Bo", "K7"})
    assert m.found_in("CR Bo") and m.found_in("K7") and m.found_in("(bo)")
    assert not m.found_in("Bottle") and not m.found_in("K77")
    out = mask_quarantine(q(("UNKNOWN_CODE", "response", "CR Bo", "response = 'CR Bo' is not a code")), {"Bo"})
    assert out.iloc[0]["value"] == MASK and "Bo" not in out.iloc[0]["message"]


def test_short_cjk_names_are_matched_without_word_boundaries():
    m = IdentifierMatcher({"赵勇秀"})
    assert m.found_in("CR赵勇秀") and m.mask("CR赵勇秀") == "CR***"


def test_numbers_are_matched_by_their_digits_whatever_the_separators():
    m = IdentifierMatcher({"170-0000-5666", "MRN7229985"})
    assert m.found_in("+86 17000005666") and m.found_in("tel 170 0000 5666")
    assert m.found_in("7229985")
    assert "5666" not in m.mask("call 170.0000.5666 now")


def test_other_values_and_messages_are_left_alone():
    out = mask_quarantine(q(("OUT_OF_RANGE", "age_years", "120", "age_years = 120 outside 0..100")), {"Zhao Yi"})
    assert out.iloc[0]["value"] == "120" and out.iloc[0]["message"] == "age_years = 120 outside 0..100"


def test_a_local_id_becomes_its_keyed_study_id():
    """ORPHAN_ROW wrote the center's own patient id into the warehouse."""
    key = b"k" * 32
    raw = q(("ORPHAN_ROW", "local_id", "A0099", "no patient row at this site for this row's patient "
             "(its id shown as the keyed study id 'A0099')"))
    out = mask_quarantine(raw, set(), lambda v: study_id(key, "x", v))
    assert out.iloc[0]["value"] == study_id(key, "x", "A0099")
    assert "A0099" not in out.to_csv()


def test_the_records_local_id_column_becomes_the_study_id():
    """Issue 14: quarantine rows name the patient by study id (linkable to the clinical
    tables), never by the center's own id; a record naming no patient gets NULL."""
    key = b"k" * 32
    raw = q(("OUT_OF_RANGE", "age_years", "120", "age_years = 120 outside 0..100"),
            ("UNMAPPED_ROW", "", "", "no table mapping uses it"))
    raw.insert(1, "local_id", ["A0007", None])
    out = mask_quarantine(raw, set(), lambda v: study_id(key, "x", v))
    assert list(out.columns[:2]) == ["site_id", "study_id"] and "local_id" not in out.columns
    assert out["study_id"].tolist() == [study_id(key, "x", "A0007"), None]
    assert "A0007" not in out.to_csv()


def test_masking_many_numbers_compiles_no_pattern_per_message(monkeypatch):
    """Regression: with a site's thousands of birth dates and phones, every quarantine
    message compiled one regex per number (re's cache holds 512): a 30k-patient refresh
    spent most of its time in re.compile. Only numbers whose digits occur are tried."""
    import re

    ids = {f"19{i % 100:02d}-01-{i % 28 + 1:02d}" for i in range(3000)} | {f"+41 79 {i:07d}" for i in range(3000)}
    m = IdentifierMatcher(ids)
    calls = []
    for name in ("compile", "sub", "search"):
        real = getattr(re, name)
        monkeypatch.setattr(re, name, lambda *a, _real=real, **k: calls.append(a) or _real(*a, **k))
    texts = [f"value -{i}.5 outside 0..100000" for i in range(5)]
    assert [m.mask(t) for t in texts] == texts
    assert len(calls) <= 1
    assert m.mask("call +41 79 0000042 now") == "call *** now"


def test_an_oversized_value_is_shown_by_its_start_under_any_rule():
    """A 40,000-character cell that fails another rule first (here a code list) must not
    flow whole into the quarantine value or message."""
    big = "x" * 40_000
    out = mask_quarantine(q(("UNKNOWN_CODE", "sex", big, f"sex = {big!r} is not in code list sex")), set())
    assert len(out.iloc[0]["value"]) < 100 and len(out.iloc[0]["message"]) < 200
    assert out.iloc[0]["value"].startswith("xxxx")


def test_identifier_values_are_looked_at_once_per_value_and_type():
    """etl.site._per_value calls its function once per distinct value, and 1, 1.0 and True
    (one dict key in Python) stay three values: their texts differ."""
    import pandas as pd

    from etl.site import _per_value

    calls = []
    cells = pd.Series(["A1", "A1", 1, 1.0, True, "A1", None, None], index=range(10, 18))
    out = _per_value(cells, lambda v: calls.append(v) or str(v))
    assert out.tolist() == ["A1", "A1", "1", "1.0", "True", "A1", "None", "None"]
    assert list(out.index) == list(range(10, 18))
    assert calls == ["A1", 1, 1.0, True, None]
