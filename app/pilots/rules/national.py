"""The national and regional view of the pilots as a pure rule: places, quotas, domain
split, budget committed and paid (annexe 1 2), part C).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from app.campaigns import Pilots
from app.pilots.rules.payments import PilotStanding
from app.pilots.rules.selection import regional_quota
from app.pilots.vocabulary import (
    ApplicationStatus,
    Domain,
    PaymentStatus,
)


@dataclass(frozen=True)
class PilotLine:
    """A selected (or withdrawn) pilot, for the summary."""

    region: str
    domain: str
    amount: Decimal
    standing: PilotStanding


@dataclass
class RegionLine:
    region: str
    quota: int
    envelope: Decimal  # quota x flat sum (part C)
    applications: int = 0
    selected: int = 0
    committed: Decimal = Decimal(0)
    paid: Decimal = Decimal(0)
    late: int = 0

    @property
    def remaining(self) -> int:
        return self.quota - self.selected


@dataclass(frozen=True)
class DomainShare:
    domain: Domain
    pilots: int
    share: Decimal | None  # percent of the selected pilots, one decimal; None without pilots
    target: Decimal | None  # proposed percent


@dataclass(frozen=True)
class Summary:
    selected: int
    cap: int  # national cap, or the quotas of the regions shown
    applications: Mapping[str, int]  # per application status, and "total"
    domains: tuple[DomainShare, ...]
    regions: tuple[RegionLine, ...]
    budget: Decimal  # national budget, or the envelopes of the regions shown
    selected_amount: Decimal
    committed: Decimal
    paid: Decimal
    payments: Mapping[str, int]  # per payment status
    late: int

    @property
    def remaining(self) -> Decimal:
        return self.budget - self.committed


def _percent(part: int, whole: int) -> Decimal | None:
    if whole == 0:
        return None
    return (Decimal(part * 100) / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def summarise(
    lines: Iterable[PilotLine],
    applications: Mapping[str, Mapping[str, int]],
    pilots: Pilots,
    regions: Sequence[str] | None = None,
) -> Summary:
    """The national view (regions None) or that of some regions: pilots against the cap and
    quotas, the domain split against its targets, the budget committed and paid.

    `applications` maps each region to its number of applications per status.
    """
    wanted = list(regions) if regions is not None else list(pilots.regional_quotas)
    by_region = {
        code: RegionLine(
            code,
            regional_quota(code, pilots),
            regional_quota(code, pilots) * pilots.amount_per_pilot,
        )
        for code in wanted
    }
    statuses: Counter[str] = Counter()
    for code, line in by_region.items():
        for status, count in applications.get(code, {}).items():
            line.applications += count
            statuses[status] += count
    payments: Counter[str] = Counter()
    domains: Counter[str] = Counter()
    selected_amount = Decimal(0)
    for pilot in lines:
        found = by_region.get(pilot.region)
        if found is None:
            continue
        line = found
        payments[pilot.standing.status.value] += 1
        if pilot.standing.status is PaymentStatus.WITHDRAWN:
            continue
        line.selected += 1
        domains[pilot.domain] += 1
        selected_amount += pilot.amount
        if pilot.standing.committed:
            line.committed += pilot.amount
        if pilot.standing.paid_amount is not None:
            line.paid += pilot.standing.paid_amount
        if pilot.standing.late:
            line.late += 1
    selected = sum(line.selected for line in by_region.values())
    shares = tuple(
        DomainShare(
            domain,
            domains[domain.value],
            _percent(domains[domain.value], selected),
            None if (target := pilots.split_targets.get(domain.value)) is None else Decimal(target),
        )
        for domain in Domain
    )
    national = regions is None
    return Summary(
        selected=selected,
        cap=pilots.national_cap if national else sum(line.quota for line in by_region.values()),
        applications={
            **{status.value: statuses[status.value] for status in ApplicationStatus},
            "total": sum(statuses.values()),
        },
        domains=shares,
        regions=tuple(by_region.values()),
        budget=pilots.budget
        if national
        else sum((line.envelope for line in by_region.values()), Decimal(0)),
        selected_amount=selected_amount,
        committed=sum((line.committed for line in by_region.values()), Decimal(0)),
        paid=sum((line.paid for line in by_region.values()), Decimal(0)),
        payments={status.value: payments[status.value] for status in PaymentStatus},
        late=sum(line.late for line in by_region.values()),
    )
