"""Ingestion of a batch of extracts: parse, check against the series, write, summarise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.audit import service as audit
from app.campaigns import current_campaign
from app.clock import Month
from app.errors import Conflict, FieldError, NotFound
from app.extracts import repository
from app.extracts.rules import (
    Row,
    Windows,
    check_against_series,
    counts_tuple,
    outcome,
    parse_row,
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


def _result(row: Row, outcome_: str, revision: int | None) -> dict[str, Any]:
    return {
        "index": row.index,
        "finess": row.finess if row.finess is not None else row.raw_finess,
        "period_start": str(row.start) if row.start else row.raw_start,
        "period_end": str(row.end) if row.end else row.raw_end,
        "outcome": outcome_,
        "revision": revision,
        "errors": _errors(row.errors),
        "warnings": _errors(row.warnings),
    }


async def ingest(
    session: AsyncSession,
    principal: Principal,
    raw_rows: list[Any],
    options: BatchOptions,
    request: Request | None = None,
    payload: bytes | None = None,
    text_cells: bool = False,
) -> dict[str, Any]:
    """Validate and store a batch; the import summary of SPEC §10."""
    rows = [parse_row(i, raw, text_cells) for i, raw in enumerate(raw_rows)]
    keys = [
        (row.index, row.finess, row.start.first_day)
        for row in rows
        if not row.errors and row.finess is not None and row.start is not None
    ]
    contexts = await repository.load_contexts(session, keys, principal.vendor_siren)
    campaign = current_campaign()
    windows = Windows(campaign.first_window_months, campaign.later_window_months)
    check_against_series(rows, contexts, Month.current(), windows)

    predicted: dict[int, tuple[str, int | None]] = {}
    for row in rows:
        if row.errors:
            predicted[row.index] = ("rejected", None)
        else:
            predicted[row.index] = outcome(row, contexts[row.index])

    any_rejected = any(o == "rejected" for o, _ in predicted.values())
    if options.atomic and any_rejected:
        final = {
            i: ("rejected", None) if o == "rejected" else ("skipped", None)
            for i, (o, _) in predicted.items()
        }
    elif options.dry_run:
        final = predicted
    else:
        final = await _write(session, principal, rows, predicted, request)
        if any(o in ("created", "revised") for o, _ in final.values()):
            counts = {name: sum(1 for o, _ in final.values() if o == name) for name in OUTCOMES}
            await audit.record(
                session,
                principal,
                "extracts.import",
                "extract_batch",
                getattr(request.state, "request_id", "") if request else "",
                request=request,
                payload=payload,
                detail={"counts": counts},
            )

    results = [_result(row, *final[row.index]) for row in rows]
    if not options.dry_run:
        record_batch(results)
    counts = dict.fromkeys(OUTCOMES, 0)
    for o, _ in final.values():
        counts[o] += 1
    return {
        "status": summary_status(o for o, _ in final.values()),
        "dry_run": options.dry_run,
        "atomic": options.atomic,
        "counts": counts,
        "results": results,
    }


async def _write(
    session: AsyncSession,
    principal: Principal,
    rows: list[Row],
    predicted: dict[int, tuple[str, int | None]],
    request: Request | None,
) -> dict[int, tuple[str, int | None]]:
    to_write = [row for row in rows if predicted[row.index][0] in ("created", "revised")]
    records = [
        repository.staging_record(
            row.finess,  # type: ignore[arg-type]
            row.start.first_day,  # type: ignore[union-attr]
            row.end.first_day,  # type: ignore[union-attr]
            row.first_window,
            _errors(row.warnings),
            counts_tuple(row.counts),
        )
        for row in to_write
    ]
    written = await repository.write_batch(
        session,
        records,
        vendor_siren=principal.vendor_siren,
        token_id=principal.token_id,
        request_id=getattr(request.state, "request_id", None) if request else None,
    )
    final = dict(predicted)
    missing = []
    for row in to_write:
        key = (row.finess, row.start.first_day)  # type: ignore[union-attr]
        if key in written:
            final[row.index] = ("revised" if written[key] > 1 else "created", written[key])
        else:
            missing.append((row, key))
    if missing:
        # Another sender changed these periods between our read and our write.
        current = await repository.current_rows(session, [k for _, k in missing])
        for row, key in missing:
            stored = current[key]
            if stored["locked"]:
                row.errors.append(
                    FieldError("period_start", "period_locked", "frozen by a balance decision")
                )
                final[row.index] = ("rejected", None)
            else:
                final[row.index] = ("unchanged", stored["revision"])
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
