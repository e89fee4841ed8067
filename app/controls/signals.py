"""Signals on declared figures (instruction 2023/13, annexe 4 C: controls chosen from each
ARS's risk analysis): pure rules over what one establishment, or the establishments of one
vendor or EJ, declared month after month.

A signal says why an establishment deserves a look, with the figures behind it. It never
blocks a payment nor refuses an extract: the ARS decides whom to control. Thresholds are
campaign data (`app.controls.thresholds`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from app.clock import Month
from app.indicators.rules import RATES, display, meets, rate

if TYPE_CHECKING:
    from app.controls.thresholds import Thresholds

Counts = Mapping[str, int | None]


class SignalCode(StrEnum):
    """The kinds of signal, each a pattern that annexe 4 C controls should look at."""

    # Rates exactly at, or just above, their target month after month.
    AT_TARGET_PLATEAU = "at_target_plateau"
    # Targets reached all at once just before the expense statement or the balance decision,
    # after a long shortfall.
    LATE_JUMP = "late_jump"
    # The same counts declared month after month.
    REPEATED_COUNTS = "repeated_counts"
    # The same counts as another establishment of the same vendor or EJ.
    SHARED_COUNTS = "shared_counts"
    # MSSanté messages far above the persons who may receive a care project.
    MSSANTE_FAR_ABOVE = "mssante_far_above"
    # Every accompanied person has an active file (file active), every period.
    ACTIVE_FILES_EQUAL_ACCOMPANIED = "active_files_equal_accompanied"
    # A revision, long after the period, that turns a failing rate into a passing one.
    LATE_PASSING_REVISION = "late_passing_revision"
    # Revisions of a period frozen by a balance decision (refused, and recorded).
    FROZEN_PERIOD_REVISION = "frozen_period_revision"


@dataclass(frozen=True, slots=True)
class Period:
    """The current revision of one declared period (a 3-month first window or a month)."""

    start: Month
    end: Month
    counts: Counts

    @property
    def months(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True, slots=True)
class Revision:
    """One accepted revision of a period; `counts` is None for a withdrawal."""

    start: Month
    end: Month
    revision: int
    received_on: date
    counts: Counts | None


@dataclass(frozen=True, slots=True)
class Milestone:
    """An expense statement or a balance decision of the establishment's project."""

    kind: str
    on: date


@dataclass(frozen=True, slots=True)
class FrozenAttempt:
    """A revision of a frozen period that ingestion refused (`period_locked`)."""

    start: Month
    end: Month
    attempted_on: date


@dataclass(frozen=True)
class Declared:
    """What one establishment declared, with what the rules need around it."""

    finess: str
    legal_entity: str | None = None
    vendor: str | None = None
    periods: Sequence[Period] = ()  # current revisions, withdrawn ones left out, by start
    revisions: Sequence[Revision] = ()  # periods revised at least once: every revision
    milestones: Sequence[Milestone] = ()
    frozen_attempts: Sequence[FrozenAttempt] = ()


@dataclass(frozen=True)
class Signal:
    finess: str
    code: SignalCode
    reason: str
    months: tuple[str, ...]
    figures: Mapping[str, Any] = field(default_factory=dict)


REQUIRED = (
    "accompanied_persons",
    "eligible_persons",
    "mssante_messages_sent",
    "dmp_fed_persons",
    "active_files",
    "active_files_with_care_project",
    "active_files_with_agenda_event",
)


def _percent(counts: Counts, code: str) -> Fraction | None:
    numerator, denominator = RATES[code]
    ratio = rate(counts.get(numerator), counts.get(denominator))
    return None if ratio is None else ratio.percent


def _shown(counts: Counts, code: str) -> Decimal | None:
    numerator, denominator = RATES[code]
    return display(rate(counts.get(numerator), counts.get(denominator)))


def _meets_all(counts: Counts, targets: Mapping[str, Decimal]) -> bool:
    return all(
        meets(rate(counts.get(num), counts.get(den)), targets[code])
        for code, (num, den) in RATES.items()
    )


def _runs(periods: Sequence[Period], keep) -> list[list[Period]]:
    """Runs of periods that follow each other month by month and all satisfy `keep`."""
    runs: list[list[Period]] = []
    current: list[Period] = []
    for period in periods:
        if not keep(period):
            if current:
                runs.append(current)
            current = []
        elif current and period.start == current[-1].end.plus(1):
            current.append(period)
        else:
            if current:
                runs.append(current)
            current = [period]
    if current:
        runs.append(current)
    return runs


def _length(run: Sequence[Period]) -> int:
    return sum(p.months for p in run)


def _months(periods: Iterable[Period]) -> tuple[str, ...]:
    return tuple(str(p.end) for p in periods)


def at_target_plateau(
    item: Declared, targets: Mapping[str, Decimal], th: Thresholds
) -> list[Signal]:
    """A rate within `plateau_margin_points` above its target (included) for
    `plateau_months` consecutive months or more."""
    found = []
    for code, (numerator, denominator) in RATES.items():
        # value = numerator x 100 / denominator, compared in integers: low <= value < high
        low = Fraction(targets[code])
        high = low + Fraction(th.plateau_margin_points)

        def near(
            period: Period,
            numerator: str = numerator,
            denominator: str = denominator,
            bounds: tuple[int, int, int, int] = (
                low.numerator,
                low.denominator,
                high.numerator,
                high.denominator,
            ),
        ) -> bool:
            num, den = period.counts.get(numerator), period.counts.get(denominator)
            if num is None or not den:
                return False
            low_num, low_den, high_num, high_den = bounds
            scaled = num * 100
            return scaled * low_den >= low_num * den and scaled * high_den < high_num * den

        longest = max(_runs(item.periods, near), key=_length, default=[])
        if _length(longest) >= th.plateau_months:
            found.append(
                Signal(
                    item.finess,
                    SignalCode.AT_TARGET_PLATEAU,
                    f"{code} sits between {targets[code]} % and "
                    f"{targets[code] + th.plateau_margin_points} % (its target and just above) "
                    f"for {_length(longest)} consecutive months",
                    _months(longest),
                    {
                        "indicator": code,
                        "target": targets[code],
                        "values": [_shown(p.counts, code) for p in longest],
                    },
                )
            )
    return found


def late_jump(item: Declared, targets: Mapping[str, Decimal], th: Thresholds) -> list[Signal]:
    """Targets first met in the `jump_window_months` months before an expense statement or a
    balance decision, after at least `jump_shortfall_months` months missing them, with one
    rate rising by `jump_min_points` points or more in a month."""
    if not item.milestones:
        return []
    found = []
    periods = list(item.periods)
    met = [_meets_all(p.counts, targets) for p in periods]
    for milestone in item.milestones:
        decided = Month.of(milestone.on)
        for k in range(1, len(periods)):
            period = periods[k]
            if (
                not met[k]
                or met[k - 1]
                or not (decided.plus(-th.jump_window_months) <= period.end < decided)
            ):
                continue
            shortfall = 0
            j = k - 1
            while (
                j >= 0
                and not met[j]
                and (j == k - 1 or periods[j].end.plus(1) == periods[j + 1].start)
            ):
                shortfall += periods[j].months
                j -= 1
            if periods[k - 1].end.plus(1) != period.start or shortfall < th.jump_shortfall_months:
                continue
            jumps = {}
            for code in RATES:
                before = _percent(periods[k - 1].counts, code)
                after = _percent(period.counts, code)
                if after is None:
                    continue
                rise = after - (before or 0)
                if rise >= Fraction(th.jump_min_points) and not meets(
                    rate(*(periods[k - 1].counts.get(f) for f in RATES[code])), targets[code]
                ):
                    jumps[code] = [_shown(periods[k - 1].counts, code), _shown(period.counts, code)]
            if not jumps:
                continue
            label = milestone.kind.replace("_", " ")
            found.append(
                Signal(
                    item.finess,
                    SignalCode.LATE_JUMP,
                    f"all targets met in {period.end}, after {shortfall} months missing them, "
                    f"in the {th.jump_window_months} months before the {label} "
                    f"of {milestone.on.isoformat()}",
                    (str(periods[k - 1].end), str(period.end)),
                    {
                        "milestone": milestone.kind,
                        "milestone_date": milestone.on,
                        "shortfall_months": shortfall,
                        "jumps": jumps,
                    },
                )
            )
            break
    return found


_REQUIRED_OF = itemgetter(*REQUIRED)


def _key(counts: Counts) -> tuple[int | None, ...]:
    """The seven required counts (every period declares them all)."""
    return _REQUIRED_OF(counts)


def _declares_someone(period: Period) -> bool:
    return bool(period.counts.get("accompanied_persons"))


def _comparable(period: Period, th: Thresholds) -> bool:
    """A month whose counts say something when they repeat: a small establishment's stable
    population gives the same counts quite naturally."""
    return period.months == 1 and (period.counts.get("accompanied_persons") or 0) >= (
        th.repeat_min_persons
    )


def repeated_counts(item: Declared, th: Thresholds) -> list[Signal]:
    """The same counts, every one of them, `repeat_months` months in a row or more, in an
    establishment accompanying at least `repeat_min_persons` persons."""
    monthly = [p for p in item.periods if _comparable(p, th)]
    best: list[Period] = []
    run: list[Period] = []
    for period in monthly:
        if (
            run
            and period.start == run[-1].end.plus(1)
            and _key(period.counts) == _key(run[-1].counts)
        ):
            run.append(period)
        else:
            run = [period]
        if len(run) > len(best):
            best = list(run)
    if len(best) < th.repeat_months:
        return []
    return [
        Signal(
            item.finess,
            SignalCode.REPEATED_COUNTS,
            f"the same counts declared {len(best)} months in a row",
            _months(best),
            {"counts": dict(zip(REQUIRED, _key(best[0].counts), strict=True))},
        )
    ]


def shared_counts(items: Sequence[Declared], th: Thresholds) -> list[Signal]:
    """The same counts for the same month as another establishment of the same vendor or
    the same EJ, in `shared_counts_months` months or more."""
    groups: dict[tuple[str, str, int, tuple], list[Declared]] = defaultdict(list)
    for item in items:
        for period in item.periods:
            if not _comparable(period, th):
                continue
            key = _key(period.counts)
            if item.vendor:
                groups[("vendor", item.vendor, period.end.index, key)].append(item)
            if item.legal_entity:
                groups[("legal_entity", item.legal_entity, period.end.index, key)].append(item)
    matches: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    via: dict[str, set[str]] = defaultdict(set)
    for (kind, _, month, _), members in groups.items():
        if len(members) < 2:
            continue
        for member in members:
            others = {m.finess for m in members if m.finess != member.finess}
            matches[member.finess][month] |= others
            via[member.finess].add(kind)
    found = []
    for finess, months in sorted(matches.items()):
        if len(months) < th.shared_counts_months:
            continue
        peers = sorted(set().union(*months.values()))
        shared_by = " and ".join(sorted(via[finess])).replace("_", " ")
        found.append(
            Signal(
                finess,
                SignalCode.SHARED_COUNTS,
                f"the same counts as {', '.join(peers)} (same {shared_by}) in {len(months)} months",
                tuple(str(Month(i // 12, i % 12 + 1)) for i in sorted(months)),
                {"establishments": peers, "shared_by": sorted(via[finess])},
            )
        )
    return found


def mssante_far_above(item: Declared, th: Thresholds) -> list[Signal]:
    """More than `mssante_per_eligible_per_month` MSSanté messages per eligible person and
    month of the period."""
    limit = Fraction(th.mssante_per_eligible_per_month)
    hits = []
    for period in item.periods:
        messages = period.counts.get("mssante_messages_sent")
        eligible = period.counts.get("eligible_persons")
        if messages is None or not eligible:
            continue
        # messages / (eligible x months) > limit, in integers
        if messages * limit.denominator > limit.numerator * eligible * period.months:
            hits.append((period, Fraction(messages, eligible * period.months)))
    if not hits:
        return []
    worst_period, worst = max(hits, key=lambda hit: hit[1])
    shown = Decimal(round(float(worst), 1)).quantize(Decimal("0.1"))
    return [
        Signal(
            item.finess,
            SignalCode.MSSANTE_FAR_ABOVE,
            f"MSSanté messages above {th.mssante_per_eligible_per_month} per eligible person "
            f"and month in {len(hits)} period(s), up to {shown} in {worst_period.end}",
            _months(p for p, _ in hits),
            {
                "messages": worst_period.counts.get("mssante_messages_sent"),
                "eligible_persons": worst_period.counts.get("eligible_persons"),
                "per_eligible_per_month": shown,
            },
        )
    ]


def active_files_equal_accompanied(item: Declared, th: Thresholds) -> list[Signal]:
    """Active files equal to accompanied persons in every period declared, over at least
    `equal_files_periods` periods: every person's file updated every single month."""
    periods = [p for p in item.periods if _declares_someone(p)]
    if len(periods) < th.equal_files_periods or any(
        p.counts.get("active_files") != p.counts.get("accompanied_persons") for p in periods
    ):
        return []
    return [
        Signal(
            item.finess,
            SignalCode.ACTIVE_FILES_EQUAL_ACCOMPANIED,
            f"active files equal accompanied persons in every one of its {len(periods)} periods",
            _months(periods),
            {"periods": len(periods)},
        )
    ]


def _last_day(month: Month) -> date:
    return month.plus(1).first_day - timedelta(days=1)


def late_passing_revision(
    item: Declared, targets: Mapping[str, Decimal], th: Thresholds
) -> list[Signal]:
    """A revision received more than `late_revision_days` days after its period's end that
    turns a rate missing its target into one meeting it."""
    by_period: dict[int, list[Revision]] = defaultdict(list)
    for revision in item.revisions:
        by_period[revision.start.index].append(revision)
    hits = []
    for revisions in by_period.values():
        previous: Revision | None = None
        for revision in sorted(revisions, key=lambda r: r.revision):
            if revision.counts is None:
                continue
            days = (revision.received_on - _last_day(revision.end)).days
            if (
                previous is not None
                and previous.counts is not None
                and days > th.late_revision_days
            ):
                turned = {
                    code: [_shown(previous.counts, code), _shown(revision.counts, code)]
                    for code, (num, den) in RATES.items()
                    if not meets(
                        rate(previous.counts.get(num), previous.counts.get(den)), targets[code]
                    )
                    and meets(
                        rate(revision.counts.get(num), revision.counts.get(den)), targets[code]
                    )
                }
                if turned:
                    hits.append((revision, days, turned))
            previous = revision
    if not hits:
        return []
    return [
        Signal(
            item.finess,
            SignalCode.LATE_PASSING_REVISION,
            f"{len(hits)} revision(s) received long after the period turned a missed target into "
            f"a met one: "
            + "; ".join(
                f"{r.end} revised {days} days after the period ({', '.join(turned)})"
                for r, days, turned in hits
            ),
            tuple(str(r.end) for r, _, _ in hits),
            {
                "revisions": [
                    {
                        "period_start": str(r.start),
                        "period_end": str(r.end),
                        "revision": r.revision,
                        "received_on": r.received_on,
                        "days_after_period": days,
                        "indicators": turned,
                    }
                    for r, days, turned in hits
                ]
            },
        )
    ]


def frozen_period_revision(item: Declared) -> list[Signal]:
    """Attempts to revise a period frozen by a balance decision (ingestion refused them)."""
    if not item.frozen_attempts:
        return []
    attempts = sorted(item.frozen_attempts, key=lambda a: (a.attempted_on, a.start.index))
    return [
        Signal(
            item.finess,
            SignalCode.FROZEN_PERIOD_REVISION,
            f"{len(attempts)} attempt(s) to revise a period frozen by a balance decision, "
            f"the last on {attempts[-1].attempted_on.isoformat()}",
            tuple(sorted({str(a.end) for a in attempts})),
            {
                "attempts": [
                    {"period_start": str(a.start), "period_end": str(a.end), "on": a.attempted_on}
                    for a in attempts
                ]
            },
        )
    ]


def signals(
    items: Sequence[Declared], targets: Mapping[str, Decimal], th: Thresholds
) -> dict[str, list[Signal]]:
    """Every signal of these establishments, by FINESS (an establishment without any has an
    empty list). Cross-establishment rules compare the establishments given together."""
    found: dict[str, list[Signal]] = {item.finess: [] for item in items}
    for item in items:
        found[item.finess] += [
            *at_target_plateau(item, targets, th),
            *late_jump(item, targets, th),
            *repeated_counts(item, th),
            *mssante_far_above(item, th),
            *active_files_equal_accompanied(item, th),
            *late_passing_revision(item, targets, th),
            *frozen_period_revision(item),
        ]
    for signal in shared_counts(items, th):
        found[signal.finess].append(signal)
    return found
