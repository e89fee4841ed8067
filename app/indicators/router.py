"""HTTP endpoints of an establishment's measurements (annexe 2 indicators) and history."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response

from app.access.dependencies import AuthorisedRoute, CurrentPrincipal, requires
from app.access.principal import Role
from app.answers import NOT_MODIFIED, answer
from app.clock import Month, to_paris
from app.db import SessionDep
from app.errors import NotFound
from app.extracts.models import COUNT_FIELDS
from app.identity import repository as people
from app.indicators import repository, service
from app.indicators.schemas import (
    MeasurementSeries,
    RevisionHistory,
    RevisionRead,
    SenderPerson,
)
from app.queries import FromQuery, ToQuery, month_bounds
from app.referential.repository import finess_or_not_found, visible_establishment

router = APIRouter(
    prefix="/api/v1/establishments", tags=["indicators"], route_class=AuthorisedRoute
)
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


async def _visible(session, principal, finess: str) -> str:
    number = finess_or_not_found(finess)
    if await visible_establishment(session, principal, number) is None:
        raise NotFound(f"Establishment {number} not found.")
    return number


def _json_number(value: Any) -> float:
    # As `DisplayNumber` writes a percentage or a count in JSON: a number with its decimal
    # part (75.0, 7.0).
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


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
    number = finess_or_not_found(finess)
    start, end = month_bounds(from_, to)

    async def render() -> tuple[bytes, str]:
        found = await service.series(
            session,
            principal,
            number,
            start.first_day if start else None,
            end.first_day if end else None,
        )
        return orjson.dumps(found, default=_json_number), "application/json"

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
