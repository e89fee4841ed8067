"""Ingestion of a batch of extracts: parse, check against the series, write, summarise."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.audit import service as audit
from app.batches import collector_paused
from app.campaigns import current_campaign
from app.clock import Month
from app.controls import service as controls
from app.errors import Conflict, FieldError, NotFound
from app.extracts import repository
from app.extracts.rules import (
    Row,
    Windows,
    check_against_series,
    counts_tuple,
    outcome,
    parse_rows,
    summary_status,
)
from app.observability.metrics import record_batch

OUTCOMES = ("created", "revised", "unchanged", "rejected", "skipped")


@dataclass(frozen=True, slots=True)
class BatchOptions:
    dry_run: bool = False
    atomic: bool = False


def _errors(items: list[FieldError]) -> list[dict[str, str]]:
    return [e.as_dict() for e in items]


def _month_text(month: Month | None, raw: Any) -> Any:
    """A parsed month as written in the API (YYYY-MM); the value sent when it did not parse.

    Seven ASCII characters that parsed are already written that way: no need to format them.
    """
    if month is None:
        return raw
    if type(raw) is str and len(raw) == 7 and raw.isascii():
        return raw
    return str(month)


def _result(row: Row, outcome_: str, revision: int | None) -> dict[str, Any]:
    # Most rows have neither error nor warning: an empty tuple is written [] in JSON as an
    # empty list is, but it is not allocated each time, and a dict of plain values is left
    # out of the garbage collector's walks.
    return {
        "index": row.index,
        "finess": row.finess if row.finess is not None else row.raw_finess,
        "period_start": _month_text(row.start, row.raw_start),
        "period_end": _month_text(row.end, row.raw_end),
        "outcome": outcome_,
        "revision": revision,
        "errors": _errors(row.errors) if row.errors else (),
        "warnings": _errors(row.warnings) if row.warnings else (),
    }


async def ingest(
    session: AsyncSession,
    principal: Principal,
    raw_rows: Sequence[Any],
    options: BatchOptions,
    request: Request | None = None,
    payload: bytes | None = None,
    text_cells: bool = False,
) -> dict[str, Any]:
    """Validate and store a batch; the import summary of SPEC §10."""
    with collector_paused():
        rows = parse_rows(raw_rows, text_cells)
        # A row's position in the batch is its index: per-row outcomes are kept in lists.
        starts = [None if row.errors else row.start.first_day for row in rows]  # type: ignore[union-attr]
        valid = [row for row in rows if not row.errors]
    contexts = await repository.load_contexts(
        session,
        [row.index for row in valid],
        [row.finess for row in valid],  # type: ignore[misc]
        [starts[row.index] for row in valid],  # type: ignore[misc]
        principal.vendor_siren,
    )
    campaign = current_campaign()
    windows = Windows(campaign.first_window_months, campaign.later_window_months)
    rejected: tuple[str, int | None] = ("rejected", None)
    with collector_paused():
        check_against_series(rows, contexts, Month.current(), windows)
        predicted = [rejected if row.errors else outcome(row, contexts[row.index]) for row in rows]
    if not options.dry_run:  # refused revisions of frozen periods feed the control signals
        await controls.record_frozen_attempts(session, principal, rows, request)

    if options.atomic and rejected in predicted:
        skipped: tuple[str, int | None] = ("skipped", None)
        final = [o if o == rejected else skipped for o in predicted]
    elif options.dry_run:
        final = predicted
    else:
        final = await _write(session, principal, rows, starts, predicted, request)
    counts = Counter(o for o, _ in final)
    tally = {name: counts[name] for name in OUTCOMES}
    if not options.dry_run and (counts["created"] or counts["revised"]):
        await audit.record(
            session,
            principal,
            "extracts.import",
            "extract_batch",
            getattr(request.state, "request_id", "") if request else "",
            request=request,
            payload=payload,
            detail={"counts": tally},
        )

    with collector_paused():
        results = [_result(row, o, rev) for row, (o, rev) in zip(rows, final, strict=True)]
        if not options.dry_run:
            record_batch(counts, (e.code for row in rows if row.errors for e in row.errors))
    return {
        # The status depends only on which outcomes occur: each is given once.
        "status": summary_status(counts),
        "dry_run": options.dry_run,
        "atomic": options.atomic,
        "counts": tally,
        "results": results,
    }


async def _write(
    session: AsyncSession,
    principal: Principal,
    rows: list[Row],
    starts: list[date | None],
    predicted: list[tuple[str, int | None]],
    request: Request | None,
) -> list[tuple[str, int | None]]:
    to_write = [i for i, (o, _) in enumerate(predicted) if o == "created" or o == "revised"]
    with collector_paused():
        records = [
            repository.staging_record(
                rows[i].finess,  # type: ignore[arg-type]
                starts[i],  # type: ignore[arg-type]
                rows[i].end.first_day,  # type: ignore[union-attr]
                rows[i].first_window,
                predicted[i][1],
                _errors(rows[i].warnings) if rows[i].warnings else None,
                counts_tuple(rows[i].counts),
            )
            for i in to_write
        ]
    surprises = await repository.write_batch(
        session,
        records,
        vendor_siren=principal.vendor_siren,
        token_id=principal.token_id,
        request_id=getattr(request.state, "request_id", None) if request else None,
    )
    final = list(predicted)
    missing = []
    for i in to_write:
        key = (rows[i].finess, starts[i])
        if key not in surprises:
            continue  # written with the revision predicted
        revision = surprises[key]
        if revision == 1:
            final[i] = ("created", 1)
        elif revision is not None:
            final[i] = ("revised", revision)
        else:
            missing.append((i, key))
    if missing:
        # Another sender changed these periods between our read and our write.
        current = await repository.current_rows(session, [k for _, k in missing])  # type: ignore[misc]
        for i, key in missing:
            stored = current[key]
            if stored["locked"]:
                rows[i].errors.append(
                    FieldError("period_start", "period_locked", "frozen by a balance decision")
                )
                final[i] = ("rejected", None)
            else:
                final[i] = ("unchanged", stored["revision"])
    return final


async def withdraw(
    session: AsyncSession,
    principal: Principal,
    finess: str,
    start: Month,
    end: Month,
    request: Request | None = None,
) -> int:
    """Record a withdrawal of the sender's own extract (kept in the history)."""
    series = await repository.series_state(session, finess)
    active = [r for r in series if not r["withdrawn"]]
    target = next((r for r in series if r["period_start"] == start.first_day), None)
    if target is None or target["withdrawn"] or target["period_end"] != end.first_day:
        raise NotFound(f"No active extract of {finess} for {start} to {end}.")
    if target["locked"]:
        raise Conflict(
            f"{start} to {end} is frozen by a balance-payment decision and cannot be withdrawn.",
            [FieldError("period_start", "period_locked", "frozen by a balance decision")],
        )
    if active and active[0]["period_start"] == start.first_day and len(active) > 1:
        raise Conflict(
            "This is the establishment's first window: withdraw the later months first.",
            [FieldError("period_start", "first_window_in_use", "later months rest on it")],
        )
    revision = await repository.withdraw(
        session,
        finess,
        start.first_day,
        vendor_siren=principal.vendor_siren,
        token_id=principal.token_id,
        request_id=getattr(request.state, "request_id", None) if request else None,
    )
    if revision is None:
        raise NotFound(f"No active extract of {finess} for {start} to {end}.")
    await audit.record(
        session,
        principal,
        "extracts.withdraw",
        "measurement",
        f"{finess}/{start}",
        request=request,
        detail={"revision": revision},
    )
    return revision
