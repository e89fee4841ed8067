"""The closed lists of words of funded projects (annexes 3 and 5), typed once for the rules,
the ORM columns, the schemas and the SQL. Funding cases are campaign data:
`app.campaigns.FundingCase`."""

from __future__ import annotations

from app.vocabulary import Vocabulary


class Guichet(Vocabulary):
    """Where a request is filed and instructed (annexe 3 A)."""

    REGIONAL = "regional"
    NATIONAL = "national"


class BalanceStatus(Vocabulary):
    """Where a project stands on the way to its balance payment (annexe 5)."""

    NO_DATA = "no_data"
    IN_PROGRESS = "in_progress"
    TARGETS_MET = "targets_met"
    ELIGIBLE = "eligible"
    BALANCE_PAID = "balance_paid"


class ProjectEventType(Vocabulary):
    """The dated steps of a project's life, in the order they come."""

    NOTIFIED = "notified"
    CONVENTION_SIGNED = "convention_signed"
    STARTED = "started"
    ADVANCE_PAID = "advance_paid"
    EXPENSE_STATEMENT = "expense_statement"
    BALANCE_DECISION = "balance_decision"
    BALANCE_PAID = "balance_paid"
