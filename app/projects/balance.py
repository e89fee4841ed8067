"""Annexe 5 C and D balance payment (the "solde"): targets met, expenses declared, amount due.

A project's status, in the order it is decided:

- `balance_paid`: the ARS recorded the balance payment; nothing is left to follow.
- `no_data`: no establishment of the project has a measurement yet (or it has none).
- `in_progress`: some establishment has a measurement, but at least one establishment has none
  or misses at least one target on its latest measurement.
- `targets_met`: the latest measurement of every establishment meets all five targets
  (annexe 2), but the expense statement ("état récapitulatif des dépenses") is not recorded.
- `eligible`: targets met and the expense statement recorded: the project qualifies for the
  balance (`qualifies_for_balance` is then true; it is also true under `balance_paid` when the
  same two conditions hold).

Rates are exact ratios (`Fraction(7, 10)` or `Decimal("0.7")` is 70 %), compared with the
target without any rounding, so 69.99 % misses 70 %; a rate whose denominator is zero is None
and misses its target. Values shown to users are percentages rounded half-up to one decimal;
`gap` is what is missing in percentage points, rounded up to one decimal so that a miss never
shows as 0.0.

`balance_due` = min(total aid, declared expenses) − advance paid, rounded to the cent; negative
means an overpayment to recover; None until the expense statement is recorded. `overdue` is the
indicative delay of annexe 5 D (9 months for an upgrade, 18 for an acquisition or a
generalisation, from the project start): true when that delay has passed and targets are still
unmet; never for national projects ("ces délais indicatifs ne concernent pas les projets de
portée nationale"), nor before the start is recorded, nor once the balance is paid.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from app.campaigns import Campaign, FundingCase
from app.indicators import rules as indicator_rules
from app.indicators.rules import Ratio as ExactRatio
from app.projects.funding import to_cents
from app.projects.vocabulary import BalanceStatus, Guichet

Ratio = ExactRatio | Fraction | Decimal | int

__all__ = [
    "BalanceStatus",
    "Compliance",
    "EstablishmentCompliance",
    "LatestMeasurement",
    "Period",
    "ProjectProgress",
    "Ratio",
    "Shortfall",
    "add_months",
    "balance_due",
    "compliance",
    "display_percent",
    "is_overdue",
    "meets_target",
    "overdue_from",
    "shortfalls",
]


@dataclass(frozen=True)
class Period:
    """A collection window, as stored with the measurement."""

    start: date
    end: date


@dataclass(frozen=True)
class LatestMeasurement:
    """The latest measurement of an establishment: its window and its five rates as ratios."""

    period_start: date
    period_end: date
    rates: Mapping[str, Ratio | None]


@dataclass(frozen=True)
class ProjectProgress:
    """What the ARS recorded about a project that the balance depends on.

    `advance_paid` is the sum of the advance payments; `declared_expenses` the amount of the
    expense statement (None while not recorded).
    """

    funding_case: FundingCase
    guichet: Guichet
    total_aid: Decimal
    started_on: date | None = None
    advance_paid: Decimal | None = None
    declared_expenses: Decimal | None = None
    balance_decided_on: date | None = None
    balance_paid_on: date | None = None


@dataclass(frozen=True)
class Shortfall:
    """One target missed: displayed value and gap in percent, None when not computable."""

    indicator: str
    value: Decimal | None
    target: Decimal
    gap: Decimal | None


@dataclass(frozen=True)
class EstablishmentCompliance:
    finess: str
    latest_period: Period | None
    meets_targets: bool
    shortfalls: tuple[Shortfall, ...]


@dataclass(frozen=True)
class Compliance:
    status: BalanceStatus
    qualifies_for_balance: bool
    balance_due: Decimal | None
    overdue: bool
    establishments: tuple[EstablishmentCompliance, ...]
    # the first day `overdue` holds for these facts (None: on no day), for what is kept
    overdue_from: date | None = None

    @property
    def blocking(self) -> tuple[EstablishmentCompliance, ...]:
        """Establishments that keep the project from the balance (no data or a target missed)."""
        return tuple(item for item in self.establishments if not item.meets_targets)


def display_percent(ratio: Ratio | None) -> Decimal | None:
    """The ratio as a percentage rounded half-up to one decimal (69.95 % shows as 70.0)."""
    return None if ratio is None else indicator_rules.display(ExactRatio.of(ratio))


def meets_target(ratio: Ratio | None, target: Decimal) -> bool:
    """Exact comparison of the ratio with a target in percent (annexe 2 rule, one place)."""
    return ratio is not None and indicator_rules.meets(ExactRatio.of(ratio), target)


def shortfalls(
    rates: Mapping[str, Ratio | None], targets: Mapping[str, Decimal]
) -> tuple[Shortfall, ...]:
    """The targets a measurement misses, in the campaign's indicator order."""
    missed = []
    for indicator, target in targets.items():
        ratio = rates.get(indicator)
        # Exact ratios straight from the counts take the short path: compliance of a whole
        # country checks some 200 000 of them.
        if type(ratio) is ExactRatio:
            if indicator_rules.meets(ratio, target):
                continue
        elif meets_target(ratio, target):
            continue
        gap = None
        if ratio is not None:
            percent = ExactRatio.of(ratio).percent
            gap = Decimal(math.ceil((Fraction(target) - percent) * 10)).scaleb(-1)
        missed.append(Shortfall(indicator, display_percent(ratio), target, gap))
    return tuple(missed)


def add_months(day: date, months: int) -> date:
    """Same day `months` later, on the month's last day when it is shorter."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def balance_due(progress: ProjectProgress) -> Decimal | None:
    """min(total aid, declared expenses) − advance paid; negative is an overpayment."""
    if progress.declared_expenses is None:
        return None
    advance = progress.advance_paid or Decimal(0)
    return to_cents(min(progress.total_aid, progress.declared_expenses) - advance)


def is_overdue(
    progress: ProjectProgress, targets_met: bool, *, campaign: Campaign, today: date
) -> bool:
    """Annexe 5 D indicative delay passed with targets unmet (never for national projects)."""
    first_day = overdue_from(progress, targets_met, campaign=campaign)
    return first_day is not None and today >= first_day


def overdue_from(
    progress: ProjectProgress, targets_met: bool, *, campaign: Campaign
) -> date | None:
    """The first day on which a project is overdue (`is_overdue`): the day after the annexe 5
    D delay ends, counted from the project's start; None when it is overdue on no day (targets
    met, a national project, not started, or its balance paid). Kept with a project's
    standing, so that the flag follows the calendar without a write."""
    if (
        targets_met
        or progress.guichet == Guichet.NATIONAL
        or progress.started_on is None
        or progress.balance_paid_on is not None
    ):
        return None
    months = campaign.indicative_duration_months[FundingCase(progress.funding_case)]
    return add_months(progress.started_on, months) + timedelta(days=1)


def compliance(
    latest: Mapping[str, LatestMeasurement | None],
    progress: ProjectProgress,
    *,
    campaign: Campaign,
    today: date,
) -> Compliance:
    """Where a project stands for its balance; `latest` maps every FINESS ET to its measurement."""
    establishments = []
    for finess, measurement in latest.items():
        if measurement is None:
            establishments.append(EstablishmentCompliance(finess, None, False, ()))
            continue
        missed = shortfalls(measurement.rates, campaign.targets)
        establishments.append(
            EstablishmentCompliance(
                finess,
                Period(measurement.period_start, measurement.period_end),
                not missed,
                missed,
            )
        )

    measured = any(item.latest_period is not None for item in establishments)
    targets_met = bool(establishments) and all(item.meets_targets for item in establishments)
    qualifies = targets_met and progress.declared_expenses is not None
    if progress.balance_paid_on is not None:
        status = BalanceStatus.BALANCE_PAID
    elif not measured:
        status = BalanceStatus.NO_DATA
    elif qualifies:
        status = BalanceStatus.ELIGIBLE
    elif targets_met:
        status = BalanceStatus.TARGETS_MET
    else:
        status = BalanceStatus.IN_PROGRESS
    first_overdue_day = overdue_from(progress, targets_met, campaign=campaign)
    return Compliance(
        status=status,
        qualifies_for_balance=qualifies,
        balance_due=balance_due(progress),
        overdue=first_overdue_day is not None and today >= first_overdue_day,
        establishments=tuple(establishments),
        overdue_from=first_overdue_day,
    )
