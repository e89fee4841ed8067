"""GET /api/v1/audit: the audit trail, for the national team and, for its region, an ARS."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import func, select

from app.access.dependencies import AuthorisedRoute, CurrentPrincipal, requires
from app.access.principal import Role
from app.audit.models import AuditEvent
from app.clock import PARIS, to_paris
from app.db import SessionDep
from app.errors import FieldError, Invalid, NotFound
from app.schemas import Page

router = APIRouter(prefix="/api/v1/audit", tags=["access"], route_class=AuthorisedRoute)
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
_DAY = r"^\d{4}-\d{2}-\d{2}$"


def _day(field: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid(
            f"{text!r} is not a date.", [FieldError(field, "invalid_date", text)]
        ) from None


class AuditPerson(BaseModel):
    id: int | None
    issuer: str
    subject: str
    email: str | None


class AuditEntry(BaseModel):
    id: int
    at: datetime
    role: str
    principal: str
    token_id: int | None
    person: AuditPerson | None = None
    region: str | None
    action: str
    object_type: str
    object_id: str
    request_id: str | None
    payload_hash: str | None
    detail: dict[str, Any]


@router.get(
    "",
    dependencies=[requires(Role.ARS, Role.NATIONAL)],
    response_model=Page[AuditEntry],
    summary="Who wrote what, when, with which request (newest first)",
    responses={401: _PROBLEM, 403: _PROBLEM, 404: _PROBLEM, 422: _PROBLEM},
)
async def list_audit(
    session: SessionDep,
    principal: CurrentPrincipal,
    region: Annotated[str | None, Query(pattern=r"^\d{2}$")] = None,
    action: Annotated[str | None, Query(max_length=100, pattern=r"^[a-z_.]+$")] = None,
    object_type: Annotated[str | None, Query(max_length=50, pattern=r"^[a-z_]+$")] = None,
    object_id: Annotated[str | None, Query(max_length=100, pattern=r"^[\w./*-]+$")] = None,
    from_: Annotated[
        str | None, Query(alias="from", pattern=_DAY, description="first day, YYYY-MM-DD")
    ] = None,
    to: Annotated[str | None, Query(pattern=_DAY, description="last day, YYYY-MM-DD")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Page[AuditEntry]:
    """The national team reads everything; an ARS reads the entries of its region (projects,
    events, establishments, pilots). The trail itself cannot be changed: the database
    refuses UPDATE and DELETE on it."""
    if principal.role is Role.ARS:
        if region is not None and region != principal.region_code:
            raise NotFound(f"Region {region} not found.")
        region = principal.region_code
    query = select(AuditEvent)
    for column, value in (
        (AuditEvent.region_code, region),
        (AuditEvent.action, action),
        (AuditEvent.object_type, object_type),
        (AuditEvent.object_id, object_id),
    ):
        if value is not None:
            query = query.where(column == value)
    first, last = _day("from", from_), _day("to", to)
    if first is not None:
        query = query.where(AuditEvent.at >= datetime.combine(first, datetime.min.time(), PARIS))
    if last is not None:
        end = datetime.combine(last + timedelta(days=1), datetime.min.time(), PARIS)
        query = query.where(AuditEvent.at < end)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = await session.execute(query.order_by(AuditEvent.id.desc()).limit(limit).offset(offset))
    return Page[AuditEntry](
        items=[
            AuditEntry(
                id=r.id,
                at=to_paris(r.at),
                role=r.role,
                principal=r.principal,
                token_id=r.token_id,
                person=AuditPerson(
                    id=r.person_id,
                    issuer=r.person_issuer,
                    subject=r.person_subject or "",
                    email=r.person_email,
                )
                if r.person_issuer is not None
                else None,
                region=r.region_code,
                action=r.action,
                object_type=r.object_type,
                object_id=r.object_id,
                request_id=r.request_id,
                payload_hash=r.payload_hash,
                detail=r.detail or {},
            )
            for r in rows.scalars()
        ],
        total=total,
        limit=limit,
        offset=offset,
    )
