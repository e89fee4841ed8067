"""Balance payment (annexe 5 C and D): status, shortfalls, amount due and indicative delay."""

from datetime import date, timedelta
from decimal import Decimal as D
from fractions import Fraction as F
from pathlib import Path

import pytest

from app.campaigns import FundingCase, load_campaign
from app.campaigns.loader import CAMPAIGNS_DIR
from app.projects.balance import (
    BalanceStatus,
    LatestMeasurement,
    Period,
    ProjectProgress,
    add_months,
    compliance,
    display_percent,
    is_overdue,
    meets_target,
    overdue_from,
    shortfalls,
)
from app.projects.funding import Guichet

CAMPAIGN = load_campaign(2023)
TODAY = date(2024, 1, 10)
ALL_MET = {
    "mssante_rate": F(7, 10),
    "dmp_rate": F(7, 10),
    "active_files_rate": F(9, 10),
    "care_project_rate": F(9, 10),
    "agenda_rate": F(9, 10),
}


def measured(**rates):
    return LatestMeasurement(date(2023, 10, 1), date(2023, 10, 31), {**ALL_MET, **rates})


def progress(**kw):
    values = {
        "funding_case": FundingCase.ACQUISITION,
        "guichet": Guichet.REGIONAL,
        "total_aid": D("210000.00"),
        "started_on": date(2023, 6, 1),
        "advance_paid": D("105000.00"),
    }
    values.update(kw)
    return ProjectProgress(**values)


def run(latest, *, campaign=CAMPAIGN, today=TODAY, **kw):
    return compliance(latest, progress(**kw), campaign=campaign, today=today)


def test_no_data_when_no_establishment_has_a_measurement():
    result = run({"750000001": None, "750000002": None})
    assert result.status == BalanceStatus.NO_DATA
    assert not result.qualifies_for_balance
    assert [x.finess for x in result.blocking] == ["750000001", "750000002"]
    assert run({}).status == "no_data"


def test_in_progress_when_one_establishment_has_no_measurement_yet():
    result = run({"750000001": measured(), "750000002": None}, declared_expenses=D(210000))
    assert result.status == BalanceStatus.IN_PROGRESS
    assert not result.qualifies_for_balance
    blocking = result.blocking
    assert [(x.finess, x.latest_period, x.shortfalls) for x in blocking] == [
        ("750000002", None, ())
    ]


def test_in_progress_when_a_target_is_missed():
    result = run({"750000001": measured(), "750000002": measured(agenda_rate=F(1, 2))})
    assert result.status == BalanceStatus.IN_PROGRESS
    [blocking] = result.blocking
    assert blocking.finess == "750000002"
    assert blocking.latest_period == Period(date(2023, 10, 1), date(2023, 10, 31))
    assert [(s.indicator, s.value, s.target, s.gap) for s in blocking.shortfalls] == [
        ("agenda_rate", D("50.0"), D(90), D("40.0"))
    ]


def test_targets_met_without_expense_statement_does_not_qualify_yet():
    result = run({"750000001": measured(), "750000002": measured()})
    assert result.status == BalanceStatus.TARGETS_MET
    assert not result.qualifies_for_balance
    assert result.balance_due is None
    assert all(x.meets_targets and x.shortfalls == () for x in result.establishments)


def test_eligible_when_targets_met_and_expense_statement_recorded():
    result = run({"750000001": measured()}, declared_expenses=D("250000.00"))
    assert result.status == BalanceStatus.ELIGIBLE
    assert result.qualifies_for_balance
    assert result.balance_due == D("105000.00")


def test_balance_paid_once_the_payment_is_recorded():
    result = run(
        {"750000001": measured()},
        declared_expenses=D("250000.00"),
        balance_decided_on=date(2024, 1, 2),
        balance_paid_on=date(2024, 1, 9),
    )
    assert result.status == BalanceStatus.BALANCE_PAID
    assert result.qualifies_for_balance
    assert not result.overdue


def test_a_rate_of_69_99_percent_misses_70_though_shown_as_70_0():
    result = run({"750000001": measured(mssante_rate=F(6999, 10000))}, declared_expenses=D(1))
    assert result.status == BalanceStatus.IN_PROGRESS
    [shortfall] = result.establishments[0].shortfalls
    assert (shortfall.indicator, shortfall.value, shortfall.target) == (
        "mssante_rate",
        D("70.0"),
        D(70),
    )
    assert shortfall.gap == D("0.1")  # a miss never shows a zero gap


def test_exactly_the_target_meets_it_as_fraction_or_decimal():
    assert meets_target(F(7, 10), D(70))
    assert meets_target(D("0.7"), D(70))
    assert meets_target(D("0.90"), D(90))
    assert not meets_target(D("0.6999999999"), D(70))
    assert meets_target(F(13, 10), D(70))  # MSSanté messages can outnumber persons


def test_a_rate_with_zero_denominator_misses_its_target():
    result = run({"750000001": measured(dmp_rate=None, care_project_rate=None)})
    assert result.status == BalanceStatus.IN_PROGRESS
    assert [(s.indicator, s.value, s.gap) for s in result.establishments[0].shortfalls] == [
        ("dmp_rate", None, None),
        ("care_project_rate", None, None),
    ]


def test_a_rate_missing_from_the_measurement_misses_its_target():
    rates = dict(ALL_MET)
    del rates["agenda_rate"]
    missed = shortfalls(rates, CAMPAIGN.targets)
    assert [s.indicator for s in missed] == ["agenda_rate"]


@pytest.mark.parametrize(
    ("ratio", "shown"),
    [
        (F(6995, 10000), D("70.0")),
        (F(6994, 10000), D("69.9")),
        (F(2, 3), D("66.7")),
        (F(1, 3), D("33.3")),
        (D("1.5"), D("150.0")),
        (0, D("0.0")),
        (None, None),
    ],
)
def test_values_are_shown_rounded_half_up_to_one_decimal(ratio, shown):
    assert display_percent(ratio) == shown


def test_a_float_rate_is_refused():
    with pytest.raises(TypeError):
        meets_target(0.7, D(70))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("declared", "advance", "due"),
    [
        (D("250000"), D("105000"), D("105000.00")),  # capped by the total aid
        (D("180000"), D("105000"), D("75000.00")),  # capped by declared expenses
        (D("90000"), D("105000"), D("-15000.00")),  # overpayment to recover
        (D("150000.005"), D("105000"), D("45000.01")),
        (D("250000"), None, D("210000.00")),  # no advance paid
    ],
)
def test_balance_due_is_min_of_aid_and_expenses_less_advance(declared, advance, due):
    result = run({"750000001": measured()}, declared_expenses=declared, advance_paid=advance)
    assert result.balance_due == due


@pytest.mark.parametrize(
    ("case", "started", "today", "overdue"),
    [
        (FundingCase.UPGRADE, date(2023, 3, 15), date(2023, 12, 15), False),
        (FundingCase.UPGRADE, date(2023, 3, 15), date(2023, 12, 16), True),
        (FundingCase.ACQUISITION, date(2023, 3, 15), date(2023, 12, 16), False),
        (FundingCase.ACQUISITION, date(2023, 3, 15), date(2024, 9, 15), False),
        (FundingCase.ACQUISITION, date(2023, 3, 15), date(2024, 9, 16), True),
        (FundingCase.GENERALISATION, date(2023, 3, 15), date(2024, 9, 16), True),
        (FundingCase.UPGRADE, date(2023, 5, 31), date(2024, 2, 29), False),
        (FundingCase.UPGRADE, date(2023, 5, 31), date(2024, 3, 1), True),
    ],
)
def test_overdue_after_9_months_for_upgrade_and_18_for_acquisition(case, started, today, overdue):
    latest = {"750000001": measured(dmp_rate=F(1, 10))}
    result = run(latest, funding_case=case, started_on=started, today=today)
    assert result.overdue is overdue


def test_never_overdue_when_targets_are_met_or_not_started():
    late = date(2026, 1, 1)
    assert not run({"750000001": measured()}, today=late).overdue
    assert not run({"750000001": None}, started_on=None, today=late).overdue
    assert run({"750000001": None}, today=late).overdue


def test_never_overdue_for_national_projects():
    result = run({"750000001": None}, guichet=Guichet.NATIONAL, today=date(2030, 1, 1))
    assert not result.overdue


def test_add_months_keeps_the_day_or_the_last_day_of_the_month():
    assert add_months(date(2023, 3, 15), 9) == date(2023, 12, 15)
    assert add_months(date(2023, 8, 31), 18) == date(2025, 2, 28)
    assert add_months(date(2023, 5, 31), 9) == date(2024, 2, 29)


def test_targets_come_from_the_campaign_file(tmp_path: Path):
    source = (CAMPAIGNS_DIR / "2023.toml").read_text(encoding="utf-8")
    variant = source.replace('dmp_rate = "70"', 'dmp_rate = "60"').replace(
        "upgrade = 9", "upgrade = 6"
    )
    path = tmp_path / "variant.toml"
    path.write_text(variant, encoding="utf-8")
    campaign = load_campaign(path)
    latest = {"750000001": measured(dmp_rate=F(65, 100))}
    assert run(latest).status == BalanceStatus.IN_PROGRESS
    assert run(latest, campaign=campaign).status == BalanceStatus.TARGETS_MET
    late = {"750000001": None}
    kwargs = {"funding_case": FundingCase.UPGRADE, "today": date(2023, 12, 2)}
    assert not run(late, **kwargs).overdue
    assert run(late, campaign=campaign, **kwargs).overdue


@pytest.mark.parametrize(
    ("facts", "targets_met", "first_day"),
    [
        # annexe 5 D: 18 months for an acquisition, 9 for an upgrade, from the start
        ({"started_on": date(2023, 7, 15)}, False, date(2025, 1, 16)),
        (
            {"started_on": date(2023, 5, 31), "funding_case": FundingCase.UPGRADE},
            False,
            date(2024, 3, 1),  # 29 February 2024 is the delay's last day
        ),
        ({"started_on": date(2023, 7, 15)}, True, None),
        ({"started_on": None}, False, None),
        ({"started_on": date(2023, 7, 15), "guichet": Guichet.NATIONAL}, False, None),
        ({"started_on": date(2023, 7, 15), "balance_paid_on": date(2024, 2, 1)}, False, None),
    ],
)
def test_overdue_from_is_the_first_day_is_overdue_holds(facts, targets_met, first_day):
    """The day kept with a project's standing agrees with the flag on every day around it."""
    facts_ = progress(**facts)
    found = overdue_from(facts_, targets_met, campaign=CAMPAIGN)
    assert found == first_day
    around = first_day or date(2025, 1, 16)
    for offset in range(-400, 400):
        day = around + timedelta(days=offset)
        expected = is_overdue(facts_, targets_met, campaign=CAMPAIGN, today=day)
        assert (found is not None and day >= found) == expected, day
