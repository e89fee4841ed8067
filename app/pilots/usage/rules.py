"""The pilots' monthly Mon espace santé usage rows as pure rules.

Mon espace santé usage (part A)
- One row per pilot and month (`YYYY-MM`) with four counts, integers ≥ 0, all required:
  `ins_qualified_identities` (persons accompanied whose INS identity is qualified in the DUI
  at the end of the month), `dmp_documents_sent` (documents sent to the DMP in the month),
  `mssante_messages_sent` (MSSanté messages between professionals in the month),
  `citizen_messages_sent` (messages sent to persons' Mon espace santé messaging in the month).
  No targets. Only completed months (Europe/Paris), not before the month the call opened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.clock import Month
from app.extracts.rules import parse_count, parse_finess, parse_month
from app.fields import FieldError
from app.ingestion.outcomes import Outcome

USAGE_COUNTS = (
    "ins_qualified_identities",
    "dmp_documents_sent",
    "mssante_messages_sent",
    "citizen_messages_sent",
)
_USAGE_FIELDS = frozenset(("finess", "month", *USAGE_COUNTS))


@dataclass(slots=True)
class UsageRow:
    """One row of a usage batch once parsed."""

    index: int
    finess: str | None
    month: Month | None
    counts: dict[str, int | None]
    raw_finess: Any = None
    raw_month: Any = None
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[FieldError] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StoredUsage:
    revision: int
    counts: tuple[int | None, ...]


@dataclass(frozen=True, slots=True)
class UsageContext:
    """What the database says about one usage row."""

    known: bool  # in the FINESS referential
    covered: bool  # within the sender's scope (vendor: its projects; ARS: its region)
    pilot_id: int | None  # the establishment's pilot in the campaign, selected or withdrawn
    withdrawn: bool
    current: StoredUsage | None  # what is stored for that pilot and month


def usage_tuple(counts: Mapping[str, int | None]) -> tuple[int | None, ...]:
    return tuple(counts.get(name) for name in USAGE_COUNTS)


def parse_usage_row(index: int, raw: Any, text_cells: bool = False) -> UsageRow:
    """Type-check one row; every problem is reported with its field (counts and months are
    read by the same helpers as the annexe 2 extracts)."""
    if not isinstance(raw, Mapping):
        row = UsageRow(index, None, None, {})
        row.errors.append(FieldError("usage", "not_an_object", "each usage row must be an object"))
        return row
    errors: list[FieldError] = [
        FieldError(str(name), "unknown_field", f"{name!r} is not a field of a usage row")
        for name in raw
        if name not in _USAGE_FIELDS
    ]
    finess = parse_finess(raw.get("finess"), errors)
    month = parse_month("month", raw.get("month"), errors)
    counts = {name: parse_count(name, raw.get(name), errors, text_cells) for name in USAGE_COUNTS}
    return UsageRow(
        index,
        finess,
        month,
        counts,
        raw_finess=raw.get("finess"),
        raw_month=raw.get("month"),
        errors=errors,
    )


def check_usage_rows(
    rows: Sequence[UsageRow],
    contexts: Mapping[int, UsageContext],
    current: Month,
    earliest: Month,
) -> None:
    """Apply the rules that need the database: the pilot, the sender's scope, the month.

    `current` is the month in progress (not completed); `earliest` the first month accepted.
    """
    seen: dict[tuple[str, Month], int] = {}
    for row in rows:
        if row.errors or row.finess is None or row.month is None:
            continue
        key = (row.finess, row.month)
        if key in seen:
            row.errors.append(
                FieldError(
                    "month",
                    "duplicate_in_batch",
                    f"the same pilot and month are already at index {seen[key]}",
                )
            )
            continue
        seen[key] = row.index
        ctx = contexts[row.index]
        if not ctx.known:
            row.errors.append(
                FieldError(
                    "finess", "unknown_finess", f"{row.finess} is not in the FINESS referential"
                )
            )
            continue
        if not ctx.covered:
            row.errors.append(
                FieldError(
                    "finess", "not_covered", f"{row.finess} is not an establishment of your scope"
                )
            )
            continue
        if ctx.pilot_id is None:
            row.errors.append(
                FieldError("finess", "not_a_pilot", f"{row.finess} is not a Mon espace santé pilot")
            )
            continue
        if ctx.withdrawn:
            row.errors.append(
                FieldError("finess", "pilot_withdrawn", f"the pilot {row.finess} withdrew")
            )
        if row.month >= current:
            row.errors.append(
                FieldError(
                    "month",
                    "period_not_completed",
                    f"{row.month} is not a completed month yet (months complete at their end, "
                    "Europe/Paris)",
                )
            )
        elif row.month < earliest:
            row.errors.append(
                FieldError(
                    "month",
                    "before_campaign",
                    f"{row.month} precedes the call for pilots (opened {earliest})",
                )
            )


def usage_outcome(row: UsageRow, ctx: UsageContext) -> tuple[Outcome, int]:
    """Predicted outcome and revision of a valid row: created, revised or unchanged."""
    stored = ctx.current
    if stored is None:
        return Outcome.CREATED, 1
    if stored.counts == usage_tuple(row.counts):
        return Outcome.UNCHANGED, stored.revision
    return Outcome.REVISED, stored.revision + 1
