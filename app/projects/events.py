"""The order of a project's payment events (annexe 5 C): pure checks before recording one.

notified → convention_signed → advance_paid (50 % at the convention) … expense_statement
(état récapitulatif des dépenses) → balance_decision (only when the project qualifies) →
balance_paid. `started` may be recorded once notified; it starts the indicative delays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from app.fields import FieldError
from app.projects.vocabulary import ProjectEventType

EVENT_TYPES = tuple(ProjectEventType)
ONCE = {"notified", "convention_signed", "started", "balance_decision", "balance_paid"}
REQUIRES = {
    "convention_signed": "notified",
    "started": "notified",
    "advance_paid": "convention_signed",
    "expense_statement": "convention_signed",
    "balance_decision": "expense_statement",
    "balance_paid": "balance_decision",
}


@dataclass(frozen=True)
class Event:
    type: str
    date: date
    amount: Decimal | None = None


@dataclass(frozen=True)
class ProjectFacts:
    """What the checks need to know of the project beyond its events."""

    submitted_on: date
    advance: Decimal  # the advance share of the total aid
    qualifies_for_balance: bool
    balance_due: Decimal | None  # with the expense statement of the event being checked
    blocking: tuple[str, ...] = ()


def first(history: Sequence[Event], kind: str) -> Event | None:
    return next((e for e in history if e.type == kind), None)


def advance_paid(history: Sequence[Event]) -> Decimal:
    return sum((e.amount or Decimal(0) for e in history if e.type == "advance_paid"), Decimal(0))


def check_event(
    new: Event, history: Sequence[Event], facts: ProjectFacts, today: date
) -> list[FieldError]:
    """Why `new` cannot be recorded after `history` (empty when it can)."""
    issues: list[FieldError] = []
    if new.type not in EVENT_TYPES:
        return [FieldError("type", "unknown_type", f"type must be one of {', '.join(EVENT_TYPES)}")]
    if new.date > today:
        issues.append(FieldError("date", "future_date", f"{new.date} is in the future"))
    if new.date < facts.submitted_on:
        issues.append(
            FieldError(
                "date",
                "before_submission",
                f"{new.date} is before the request ({facts.submitted_on})",
            )
        )
    if new.type in ONCE and first(history, new.type):
        issues.append(FieldError("type", "already_recorded", f"{new.type} is already recorded"))
    needed = REQUIRES.get(new.type)
    if needed:
        prior = first(history, needed)
        if prior is None:
            issues.append(
                FieldError(
                    "type", "out_of_order", f"{new.type} needs {needed} to be recorded first"
                )
            )
        elif new.date < prior.date:
            issues.append(
                FieldError(
                    "date", "before_prerequisite", f"{new.date} is before {needed} ({prior.date})"
                )
            )
    if first(history, "balance_decision") and new.type in ("advance_paid", "expense_statement"):
        issues.append(
            FieldError("type", "after_decision", f"no {new.type} after the balance decision")
        )
    issues.extend(_amount_issues(new, history, facts))
    return issues


def _amount_issues(new: Event, history: Sequence[Event], facts: ProjectFacts) -> list[FieldError]:
    amount = new.amount
    if amount is not None and amount.as_tuple().exponent < -2:  # type: ignore[operator]
        return [FieldError("amount", "too_precise", "amounts are in euros and cents")]
    if new.type == "advance_paid":
        if amount is not None and amount <= 0:
            return [FieldError("amount", "not_positive", "an advance payment is a positive amount")]
        remaining = facts.advance - advance_paid(history)
        if (amount if amount is not None else remaining) > remaining:
            return [
                FieldError(
                    "amount",
                    "above_advance",
                    f"the advance is {facts.advance}; {remaining} remains to be paid",
                )
            ]
    elif new.type == "expense_statement":
        if amount is None:
            return [
                FieldError(
                    "amount", "required", "the expense statement carries the declared expenses"
                )
            ]
        if amount < 0:
            return [FieldError("amount", "negative", "declared expenses cannot be negative")]
    elif new.type == "balance_decision":
        if not facts.qualifies_for_balance:
            where = f": {', '.join(facts.blocking[:10])}" if facts.blocking else ""
            return [
                FieldError(
                    "type",
                    "targets_not_met",
                    f"the project does not qualify for its balance; targets unmet{where}",
                )
            ]
        if amount is not None and amount != facts.balance_due:
            return [
                FieldError("amount", "not_balance_due", f"the balance due is {facts.balance_due}")
            ]
    elif new.type == "balance_paid":
        decided = first(history, "balance_decision")
        if decided and amount is not None and amount != decided.amount:
            return [
                FieldError(
                    "amount", "not_decided_amount", f"the decided balance is {decided.amount}"
                )
            ]
    elif amount is not None:
        return [FieldError("amount", "no_amount", f"a {new.type} event carries no amount")]
    return []


def recorded_amount(new: Event, history: Sequence[Event], facts: ProjectFacts) -> Decimal | None:
    """The amount stored with the event when the caller leaves it out."""
    if new.amount is not None:
        return new.amount
    if new.type == "advance_paid":
        return facts.advance - advance_paid(history)
    if new.type == "balance_decision":
        return facts.balance_due
    if new.type == "balance_paid":
        decided = first(history, "balance_decision")
        return decided.amount if decided else None
    return None
