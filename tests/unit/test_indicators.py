"""Annexe 2 formulas: exact comparison with the target, display rounding, zero denominators."""

from decimal import Decimal

import pytest

from app.campaigns import current_campaign
from app.indicators.rules import Ratio, compute, display, meets, meets_targets, rate

TARGETS = current_campaign().targets
BASE = {
    "accompanied_persons": 100,
    "eligible_persons": 80,
    "mssante_messages_sent": 56,
    "dmp_fed_persons": 56,
    "active_files": 90,
    "active_files_with_care_project": 81,
    "active_files_with_agenda_event": 81,
}


def by_code(counts):
    return {i.code: i for i in compute(counts, TARGETS)}


def test_targets_come_from_annexe_2():
    assert dict(TARGETS) == {
        "mssante_rate": Decimal(70),
        "dmp_rate": Decimal(70),
        "active_files_rate": Decimal(90),
        "care_project_rate": Decimal(90),
        "agenda_rate": Decimal(90),
    }


def test_exactly_on_every_target_meets_them():
    indicators = by_code(BASE)
    assert indicators["mssante_rate"].value == Decimal("70.0")  # 56 / 80
    assert indicators["dmp_rate"].value == Decimal("70.0")
    assert indicators["active_files_rate"].value == Decimal("90.0")  # 90 / 100
    assert indicators["care_project_rate"].value == Decimal("90.0")  # 81 / 90
    assert indicators["agenda_rate"].value == Decimal("90.0")
    assert meets_targets(list(indicators.values()))


def test_69_99_percent_misses_70_even_though_it_displays_70_0():
    # 6999 messages for 10000 eligible persons: 69.99 %
    counts = {**BASE, "eligible_persons": 10_000, "accompanied_persons": 10_000}
    counts |= {"mssante_messages_sent": 6_999, "dmp_fed_persons": 7_000}
    counts |= {"active_files": 9_000, "active_files_with_care_project": 8_100}
    counts |= {"active_files_with_agenda_event": 8_100}
    indicators = by_code(counts)
    assert indicators["mssante_rate"].value == Decimal("70.0")
    assert indicators["mssante_rate"].met is False
    assert indicators["dmp_rate"].met is True
    assert not meets_targets(list(indicators.values()))


def test_89_95_percent_misses_90():
    assert not meets(Ratio(8995, 10_000), Decimal(90))
    assert display(Ratio(8995, 10_000)) == Decimal("90.0")  # half-up
    assert meets(Ratio(9, 10), Decimal(90))


def test_display_is_exact_where_decimal_division_would_round_twice():
    # 2 / 3 000 = 0.0666...%: a 0.05 boundary never appears by accident
    assert display(Ratio(2, 3_000)) == Decimal("0.1")
    assert display(Ratio(1, 2_000)) == Decimal("0.1")  # exactly 0.05 %: half-up
    assert display(Ratio(999_999, 2_000_000_000)) == Decimal("0.0")  # 0.04999995 %


@pytest.mark.parametrize(
    ("numerator", "denominator", "shown"),
    [(1, 3, "33.3"), (2, 3, "66.7"), (1, 8, "12.5"), (1, 16, "6.3"), (1, 40, "2.5"), (0, 7, "0.0")],
)
def test_display_rounds_half_up_to_one_decimal(numerator, denominator, shown):
    assert display(rate(numerator, denominator)) == Decimal(shown)


def test_zero_denominator_is_null_and_misses_the_target():
    counts = {**BASE, "active_files": 0, "active_files_with_care_project": 0}
    counts["active_files_with_agenda_event"] = 0
    indicators = by_code(counts)
    assert indicators["care_project_rate"].value is None
    assert indicators["care_project_rate"].met is False
    assert indicators["agenda_rate"].value is None
    assert indicators["active_files_rate"].value == Decimal("0.0")
    assert not meets_targets(list(indicators.values()))
    nobody = by_code({**BASE, "eligible_persons": 0, "dmp_fed_persons": 0})
    assert nobody["mssante_rate"].value is None and nobody["dmp_rate"].value is None


def test_mssante_rate_may_exceed_100_percent():
    indicators = by_code({**BASE, "mssante_messages_sent": 250})
    assert indicators["mssante_rate"].value == Decimal("312.5")
    assert indicators["mssante_rate"].met is True


def test_optional_counts_have_no_target():
    indicators = by_code({**BASE, "eprescriptions_imported": 12})
    assert indicators["eprescription_count"].target is None
    assert indicators["eprescription_count"].met is None
    assert indicators["eparcours_count"].ratio is None
