"""The month type: written YYYY-MM, ordered, hashed and subtracted by calendar position,
immutable."""

from __future__ import annotations

import pickle
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.clock import Month, months_inclusive

months = st.builds(Month, st.integers(1900, 2200), st.integers(1, 12))


def test_a_month_reads_and_writes_yyyy_mm():
    month = Month.parse("2025-03")
    assert (month.year, month.month, str(month)) == (2025, 3, "2025-03")
    assert month.first_day == date(2025, 3, 1)
    assert repr(month) == "Month(year=2025, month=3)"
    for bad in ("2025-13", "2025-3", "25-03", "2025-03-01", 202503):
        with pytest.raises(ValueError):
            Month.parse(bad)  # type: ignore[arg-type]


def test_month_arithmetic_crosses_years():
    assert Month(2024, 11).plus(3) == Month(2025, 2)
    assert Month(2025, 2).plus(-3) == Month(2024, 11)
    assert Month(2025, 2) - Month(2024, 11) == 3
    assert months_inclusive(Month(2025, 1), Month(2025, 3)) == 3


@given(months, months)
def test_order_equality_and_hash_follow_the_calendar(a, b):
    key_a, key_b = (a.year, a.month), (b.year, b.month)
    assert (a < b, a <= b, a > b, a >= b, a == b) == (
        key_a < key_b,
        key_a <= key_b,
        key_a > key_b,
        key_a >= key_b,
        key_a == key_b,
    )
    assert (hash(a) == hash(b)) or a != b
    assert a - b == (a.year - b.year) * 12 + a.month - b.month
    assert a.plus(b - a) == b
    assert len({a, b, Month(a.year, a.month)}) == (1 if a == b else 2)


def test_a_month_is_immutable_and_survives_pickling():
    month = Month(2025, 4)
    with pytest.raises(AttributeError):
        month.month = 5  # type: ignore[misc]
    assert month == Month(2025, 4) and month.first_day == date(2025, 4, 1)
    assert pickle.loads(pickle.dumps(month)) == month
    assert month != "2025-04" and month != (2025, 4)
    with pytest.raises(TypeError):
        _ = month < "2025-05"  # type: ignore[operator]
