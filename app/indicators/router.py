"""HTTP endpoints of an establishment's measurements (annexe 2 indicators) and history."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from app.access.dependencies import AuthorisedRoute, CurrentPrincipal, requires
from app.access.principal import Role
from app.answers import NOT_MODIFIED, answer
from app.campaigns.loader import current_campaign
from app.clock import Month, to_paris
from app.db import SessionDep
from app.errors import NotFound
from app.extracts.models import COUNT_FIELDS
from app.identity import repository as people
from app.indicators import repository
from app.indicators.rules import COUNTS, compute, meets_targets
from app.indicators.schemas import (
    MeasurementSeries,
    RevisionHistory,
    RevisionRead,
    SenderPerson,
)
from app.queries import FromQuery, ToQuery, month_bounds
from app.referential.finess import InvalidFiness, check_finess
from app.referential.repository import visible_establishment

router = APIRouter(
    prefix="/api/v1/establishments", tags=["indicators"], route_class=AuthorisedRoute
)
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


def _finess(finess: str) -> str:
    try:
        return check_finess(finess)
    except InvalidFiness as exc:
        raise NotFound(f"Establishment {finess} not found ({exc}).") from exc


async def _visible(session, principal, finess: str) -> str:
    number = _finess(finess)
    if await visible_establishment(session, principal, number) is None:
        raise NotFound(f"Establishment {number} not found.")
    return number


def _display(value: Decimal | int | None) -> float | None:
    # As `DisplayNumber` writes it in JSON: a number with its decimal part (75.0).
    return None if value is None else float(value)


def measurement_item(row: Any, targets: Mapping[str, Decimal]) -> dict[str, Any]:
    """One period of a series as `MeasurementRead` writes it in JSON, built as plain values
    (36 months are 36 items of nine indicators each: models would cost more than the rest)."""
    counts = {name: getattr(row, name) for name in COUNT_FIELDS}
    indicators = compute(counts, targets)
    return {
        "period_start": str(Month.of(row.period_start)),
        "period_end": str(Month.of(row.period_end)),
        "first_window": row.first_window,
        "revision": row.revision,
        "received_at": to_paris(row.received_at),
        "counts": counts,
        "indicators": {
            i.code: {
                "value": _display(counts[COUNTS[i.code]] if i.code in COUNTS else i.value),
                "target": _display(i.target),
                "met": i.met,
            }
            for i in indicators
        },
        "meets_targets": meets_targets(indicators),
        "warnings": row.warnings or [],
    }


@router.get(
    "/{finess}/measurements",
    dependencies=[requires(*Role)],
    response_model=MeasurementSeries,
    summary="Time series of an establishment's measurements and annexe 2 indicators",
    responses={304: NOT_MODIFIED, 401: _PROBLEM, 404: _PROBLEM, 422: _PROBLEM},
)
async def get_measurements(
    finess: str,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    from_: FromQuery = None,
    to: ToQuery = None,
) -> Response:
    """The latest revision of each period (withdrawn ones left out), oldest first. Kept until
    the data moves; the ETag answers If-None-Match with a 304."""
    number = _finess(finess)
    start, end = month_bounds(from_, to)

    async def render() -> tuple[bytes, str]:
        rows = await repository.visible_measurements(
            session,
            principal,
            number,
            start.first_day if start else None,
            end.first_day if end else None,
        )
        if rows is None:
            raise NotFound(f"Establishment {number} not found.")
        targets = current_campaign().targets
        items = [measurement_item(r, targets) for r in rows]
        return orjson.dumps({"finess": number, "items": items}), "application/json"

    return await answer(request, session, principal, render)


def _sender(entry) -> SenderPerson | None:
    if entry is None:
        return None
    return SenderPerson(
        issuer=entry.person_issuer, subject=entry.person_subject, email=entry.person_email
    )


@router.get(
    "/{finess}/revisions",
    dependencies=[requires(*Role)],
    response_model=RevisionHistory,
    summary="Every revision received for an establishment, withdrawals included",
    responses={401: _PROBLEM, 404: _PROBLEM, 422: _PROBLEM},
)
async def get_revisions(
    finess: str,
    session: SessionDep,
    principal: CurrentPrincipal,
    from_: FromQuery = None,
    to: ToQuery = None,
) -> RevisionHistory:
    number = await _visible(session, principal, finess)
    start, end = month_bounds(from_, to)
    rows = await repository.revisions(
        session, number, start.first_day if start else None, end.first_day if end else None
    )
    senders = await people.revision_senders(
        session, [(r.request_id, r.received_at) for r in rows if r.token_id is None]
    )
    return RevisionHistory(
        finess=number,
        items=[
            RevisionRead(
                period_start=str(Month.of(r.period_start)),
                period_end=str(Month.of(r.period_end)),
                revision=r.revision,
                withdrawn=r.withdrawn,
                first_window=r.first_window,
                vendor_siren=r.vendor_siren,
                sent_by_token=r.token_id,
                sent_by_person=_sender(senders.get((r.request_id, r.received_at))),
                request_id=r.request_id,
                received_at=to_paris(r.received_at),
                counts={name: getattr(r, name) for name in COUNT_FIELDS},
                warnings=r.warnings or [],
            )
            for r in rows
        ],
    )
