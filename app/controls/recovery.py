"""Following an amount unduly paid until it is recovered (instruction 2023/13, annexe 4 C 3):
"la procédure de récupération des indus doit être mise en œuvre dès que l'ARS a connaissance
du trop versé. La preuve de cette mise en œuvre (courrier à l'ESSMS, titre de recette...)
doit être déposée dans GALIS."

The ARS first notifies the establishment (a letter, a titre de recette: its reference is the
proof), then records what comes back, in one or several recoveries, each with the reference
of its proof, until nothing remains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

ZERO = Decimal("0.00")


class RecoveryEventType(StrEnum):
    NOTIFIED = "notified"
    RECOVERED = "recovered"


class RecoveryStatus(StrEnum):
    NONE = "none"  # nothing unduly paid
    TO_NOTIFY = "to_notify"
    NOTIFIED = "notified"
    RECOVERED = "recovered"


@dataclass(frozen=True, slots=True)
class RecoveryEvent:
    type: RecoveryEventType
    on: date
    amount: Decimal | None
    proof_reference: str


class RecoveryRefused(ValueError):
    """An event that does not fit what was recorded before; `field` names the culprit, and
    `conflict` tells an out-of-order step (409) from a wrong value (422)."""

    def __init__(self, field: str, code: str, message: str, conflict: bool = False):
        super().__init__(message)
        self.field = field
        self.code = code
        self.conflict = conflict


def recoverable(paid: Decimal, already_found: Decimal) -> Decimal:
    """The most a new control can find unduly paid on a project: what the project was paid
    (advances and balance payments) less what earlier controls already found unduly paid."""
    return max(ZERO, paid - already_found)


def recovered(events: Sequence[RecoveryEvent]) -> Decimal:
    return sum((e.amount or ZERO for e in events if e.type is RecoveryEventType.RECOVERED), ZERO)


def remaining(unduly_paid: Decimal, events: Sequence[RecoveryEvent]) -> Decimal:
    return unduly_paid - recovered(events)


def status(unduly_paid: Decimal, events: Sequence[RecoveryEvent]) -> RecoveryStatus:
    if unduly_paid <= 0:
        return RecoveryStatus.NONE
    if remaining(unduly_paid, events) <= 0:
        return RecoveryStatus.RECOVERED
    if any(e.type is RecoveryEventType.NOTIFIED for e in events):
        return RecoveryStatus.NOTIFIED
    return RecoveryStatus.TO_NOTIFY


def check_event(
    event: RecoveryEvent,
    *,
    unduly_paid: Decimal,
    controlled_on: date,
    events: Sequence[RecoveryEvent],
    today: date,
) -> Decimal | None:
    """Refuse an event out of order or with a wrong value; the amount a recovery records
    (all that remains when none is given)."""
    state = status(unduly_paid, events)
    if state is RecoveryStatus.NONE:
        raise RecoveryRefused(
            "type", "nothing_to_recover", "this control found nothing unduly paid", True
        )
    if state is RecoveryStatus.RECOVERED:
        raise RecoveryRefused("type", "already_recovered", "everything is already recovered", True)
    if not event.proof_reference.strip():
        raise RecoveryRefused(
            "proof_reference",
            "proof_required",
            "give the reference of the proof (letter, titre de recette)",
        )
    if event.on > today:
        raise RecoveryRefused("date", "in_the_future", f"{event.on} is after today ({today})")
    if event.on < controlled_on:
        raise RecoveryRefused(
            "date", "before_control", f"{event.on} precedes the control of {controlled_on}"
        )
    if event.type is RecoveryEventType.NOTIFIED:
        if state is not RecoveryStatus.TO_NOTIFY:
            raise RecoveryRefused("type", "already_notified", "the recovery is notified", True)
        if event.amount is not None:
            raise RecoveryRefused("amount", "not_expected", "a notification carries no amount")
        return None
    if state is RecoveryStatus.TO_NOTIFY:
        raise RecoveryRefused(
            "type", "not_notified", "notify the establishment before recording a recovery", True
        )
    notified_on = next(e.on for e in events if e.type is RecoveryEventType.NOTIFIED)
    if event.on < notified_on:
        raise RecoveryRefused(
            "date", "before_notification", f"{event.on} precedes the notification of {notified_on}"
        )
    left = remaining(unduly_paid, events)
    amount = left if event.amount is None else event.amount
    if amount <= 0:
        raise RecoveryRefused("amount", "not_positive", "a recovery recovers a positive amount")
    if amount > left:
        raise RecoveryRefused(
            "amount", "above_remaining", f"{amount} is more than the {left} left to recover"
        )
    return amount
