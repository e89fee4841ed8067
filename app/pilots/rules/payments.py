"""The pilots' flat sum as pure rules: its evidence, in order, its deadlines and where each
pilot's payment stands.

Funding and evidence (parts B 4, B 5 and D)
- Each pilot gets the flat `amount_per_pilot` (21 000 €), paid "en une seule fois, une fois
  la période de pilote terminée" on the evidence: the convention signed and dated
  (`convention_signed`) and the ARS's receipt, attesting conformity, of the intermediate and
  final experience reports (`intermediate_report_received`, `final_report_received`). A
  payment (`paid`) is refused while a piece is missing (`missing_evidence`), before the pilot
  period ends (`before_pilot_end`) or for another amount than the flat sum
  (`not_flat_amount`). The optional bank details (RIB) are not followed.
- The steps come in order (convention, intermediate report, final report); the intermediate
  report cannot predate the pilot period (`before_pilot_start`).
- Deadlines: conventions "avant le 15 février 2024" (the day itself is late, as the ESMS
  Numérique campaign reads its "avant le 30 décembre"), intermediate report "au plus tard le
  14 juin 2024", final report "au plus tard le 15 novembre 2024" (both included). A step done
  after its deadline, or still missing once it has passed, is flagged `late`: a flag for the
  ARS, never a refusal.
- The aid is committed when the convention is signed ("les autorisations d'engagement seront
  notifiées au moment de la signature de la convention") and released if the pilot withdraws;
  each region's envelope is its quota times the flat sum (part C), within the national budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from app.campaigns import PilotsCalendar
from app.fields import FieldError
from app.pilots.rules.applications import french_date
from app.pilots.vocabulary import (
    EventType,
    PaymentStatus,
)

# The evidence the payment rests on (part B 5), in the order it comes.
EVIDENCE = (EventType.CONVENTION_SIGNED, EventType.INTERMEDIATE_REPORT, EventType.FINAL_REPORT)
REQUIRES = {
    EventType.INTERMEDIATE_REPORT: EventType.CONVENTION_SIGNED,
    EventType.FINAL_REPORT: EventType.INTERMEDIATE_REPORT,
}


@dataclass(frozen=True)
class Event:
    type: str
    date: date
    amount: Decimal | None = None


@dataclass(frozen=True)
class PilotFacts:
    selected_on: date
    amount: Decimal  # the flat sum recorded at selection


def first(history: Sequence[Event], kind: str) -> Event | None:
    return next((e for e in history if e.type == kind), None)


def due_dates(calendar: PilotsCalendar) -> dict[EventType, date]:
    """The last day each piece of evidence is on time (part D)."""
    return {
        # "avant le 15 février 2024": the deadline day itself is late.
        EventType.CONVENTION_SIGNED: calendar.convention_deadline - timedelta(days=1),
        EventType.INTERMEDIATE_REPORT: calendar.intermediate_report_deadline,
        EventType.FINAL_REPORT: calendar.final_report_deadline,
    }


def check_event(
    new: Event,
    history: Sequence[Event],
    facts: PilotFacts,
    calendar: PilotsCalendar,
    today: date,
) -> list[FieldError]:
    """Why `new` cannot be recorded after `history` (empty when it can)."""
    kinds = tuple(e.value for e in EventType)
    if new.type not in kinds:
        return [FieldError("type", "unknown_type", f"type must be one of {', '.join(kinds)}")]
    kind = EventType(new.type)
    if first(history, EventType.WITHDRAWN):
        return [FieldError("type", "pilot_withdrawn", "this pilot withdrew: nothing follows")]
    if kind is EventType.WITHDRAWN and first(history, EventType.PAID):
        return [FieldError("type", "already_paid", "a paid pilot cannot withdraw")]
    issues: list[FieldError] = []
    if new.date > today:
        issues.append(FieldError("date", "future_date", f"{new.date} is in the future"))
    if new.date < facts.selected_on:
        issues.append(
            FieldError(
                "date",
                "before_selection",
                f"{french_date(new.date)} is before the selection "
                f"({french_date(facts.selected_on)})",
            )
        )
    if first(history, kind):
        issues.append(FieldError("type", "already_recorded", f"{kind.value} is already recorded"))
    needed = REQUIRES.get(kind)
    if needed is not None:
        prior = first(history, needed)
        if prior is None:
            issues.append(
                FieldError(
                    "type", "out_of_order", f"{kind.value} needs {needed.value} recorded first"
                )
            )
        elif new.date < prior.date:
            issues.append(
                FieldError(
                    "date",
                    "before_prerequisite",
                    f"{french_date(new.date)} is before {needed.value} ({french_date(prior.date)})",
                )
            )
    if kind is EventType.INTERMEDIATE_REPORT and new.date < calendar.pilot_start:
        issues.append(
            FieldError(
                "date",
                "before_pilot_start",
                f"the pilot period starts on {french_date(calendar.pilot_start)} (part D)",
            )
        )
    if kind is EventType.PAID:
        issues.extend(_payment_issues(new, history, facts, calendar))
    elif new.amount is not None:
        issues.append(FieldError("amount", "amount_not_allowed", "only a payment has an amount"))
    return issues


def _payment_issues(
    new: Event, history: Sequence[Event], facts: PilotFacts, calendar: PilotsCalendar
) -> list[FieldError]:
    issues = []
    for piece in EVIDENCE:
        done = first(history, piece)
        if done is None:
            issues.append(
                FieldError(
                    "type",
                    "missing_evidence",
                    f"the payment needs {piece.value} recorded first (part B 5)",
                )
            )
        elif new.date < done.date:
            issues.append(
                FieldError(
                    "date",
                    "before_prerequisite",
                    f"{french_date(new.date)} is before {piece.value} ({french_date(done.date)})",
                )
            )
    if new.date <= calendar.pilot_end:
        issues.append(
            FieldError(
                "date",
                "before_pilot_end",
                f"the flat sum is paid once the pilot period is over, after "
                f"{french_date(calendar.pilot_end)} (part B 5)",
            )
        )
    if new.amount is not None and new.amount != facts.amount:
        issues.append(
            FieldError(
                "amount",
                "not_flat_amount",
                f"the flat sum of {facts.amount:.2f} € is paid in full, at once (part B 5)",
            )
        )
    return issues


@dataclass(frozen=True)
class Deadline:
    step: str
    due_by: date  # last day on time
    done_on: date | None
    late: bool


@dataclass(frozen=True)
class PilotStanding:
    status: PaymentStatus
    payable: bool
    missing_evidence: tuple[str, ...]
    deadlines: tuple[Deadline, ...]
    committed: bool  # convention signed and not withdrawn: the aid is committed
    paid_amount: Decimal | None
    paid_on: date | None

    @property
    def late(self) -> bool:
        return any(d.late for d in self.deadlines)


def standing(history: Sequence[Event], calendar: PilotsCalendar, today: date) -> PilotStanding:
    """Where a pilot stands for its payment: status, missing evidence, late steps."""
    withdrawn = first(history, EventType.WITHDRAWN) is not None
    paid = first(history, EventType.PAID)
    deadlines = []
    for step, due in due_dates(calendar).items():
        done = first(history, step)
        late = not withdrawn and (done.date > due if done else today > due)
        deadlines.append(Deadline(step.value, due, done.date if done else None, late))
    missing = tuple(piece.value for piece in EVIDENCE if first(history, piece) is None)
    signed = first(history, EventType.CONVENTION_SIGNED) is not None
    if withdrawn:
        status = PaymentStatus.WITHDRAWN
    elif paid is not None:
        status = PaymentStatus.PAID
    elif not signed:
        status = PaymentStatus.AWAITING_CONVENTION
    elif not missing and today > calendar.pilot_end:
        status = PaymentStatus.PAYABLE
    else:
        status = PaymentStatus.IN_PILOT
    return PilotStanding(
        status=status,
        payable=status is PaymentStatus.PAYABLE,
        missing_evidence=missing,
        deadlines=tuple(deadlines),
        committed=signed and not withdrawn,
        paid_amount=paid.amount if paid else None,
        paid_on=paid.date if paid else None,
    )
