"""HTTP endpoints of the pilots' Mon espace santé usage, under /api/v1/pilots: pushed by
vendors (for the pilots in their projects) and ARS (for their region's), read back per pilot,
summed per region."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.dependencies import AuthorisedRoute, CurrentPrincipal, requires
from app.access.principal import Principal, Role
from app.batches import batch_request_body, read_batch
from app.clock import Month, to_paris
from app.db import SessionDep
from app.ingestion import BatchOptions, ingest
from app.pilots import service
from app.pilots.models import PilotApplication, PilotUsage
from app.pilots.schemas import (
    PilotRegionalUsage,
    PilotRegionalUsagePoint,
    PilotUsageBatch,
    PilotUsageImportSummary,
    PilotUsagePoint,
    PilotUsageRevisionHistory,
    PilotUsageRevisionRead,
    PilotUsageSeries,
)
from app.pilots.usage import repository, rules
from app.pilots.usage.ingestion import PILOT_USAGE
from app.queries import FromQuery, RegionQuery, ToQuery, month_bounds
from app.schemas import RowId

# Included by app.pilots.router under its prefix.
router = APIRouter(route_class=AuthorisedRoute)
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


@router.post(
    "/usage",
    dependencies=[requires(Role.VENDOR, Role.ARS, Role.NATIONAL)],
    summary="Push the pilots' monthly Mon espace santé usage",
    response_model=PilotUsageImportSummary,
    openapi_extra=batch_request_body(
        PilotUsageBatch,
        "finess,month,ins_qualified_identities,dmp_documents_sent,mssante_messages_sent,"
        "citizen_messages_sent\n750712184,2024-03,61,140,85,12\n",
    ),
    responses={
        400: _PROBLEM,
        401: _PROBLEM,
        403: _PROBLEM,
        409: _PROBLEM,
        413: _PROBLEM,
        422: _PROBLEM,
    },
)
async def push_usage(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    dry_run: Annotated[bool, Query(description="validate and report, store nothing")] = False,
    atomic: Annotated[bool, Query(description="store all rows or none")] = False,
) -> Response:
    """One row per pilot (FINESS ET) and completed month, the four counts integers ≥ 0. A
    vendor sends for the pilots in its projects, an ARS for its region's pilots. Re-sending a
    month creates a new revision (the latest is used, every one is kept); identical counts
    change nothing. `dry_run`, `atomic` and `Idempotency-Key` work as for /extracts."""
    rows, body, text_cells = await read_batch(request, "usage")
    summary = await ingest(
        session,
        principal,
        rows,
        BatchOptions(dry_run=dry_run, atomic=atomic),
        PILOT_USAGE,
        payload=body,
        text_cells=text_cells,
    )
    return Response(orjson.dumps(summary), media_type="application/json")


def _counts(row: Any) -> dict[str, int]:
    return {name: getattr(row, name) for name in rules.USAGE_COUNTS}


@router.get(
    "/usage",
    dependencies=[requires(*Role)],
    response_model=PilotRegionalUsage,
    summary="Monthly totals of the pilots' Mon espace santé usage per region (no targets)",
    responses={401: _PROBLEM, 404: _PROBLEM, 422: _PROBLEM},
)
async def regional_usage(
    session: SessionDep,
    principal: CurrentPrincipal,
    region: RegionQuery = None,
    from_: FromQuery = None,
    to: ToQuery = None,
) -> PilotRegionalUsage:
    """Sums over the region's pilots for each month, with the number of pilots that reported.
    National callers without `region` get every region."""
    region = service.region_in_scope(principal, region)
    start, end = month_bounds(from_, to)
    records = await repository.regional_usage(
        session,
        service.campaign_key(),
        region,
        start.first_day if start else None,
        end.first_day if end else None,
    )
    return PilotRegionalUsage(
        region=region,
        items=[
            PilotRegionalUsagePoint(
                region=r["region_code"],
                month=str(Month.of(r["month"])),
                pilots_reporting=r["pilots_reporting"],
                counts={name: r[name] for name in rules.USAGE_COUNTS},
            )
            for r in records
        ],
    )


async def _usage_pilot(
    session: AsyncSession, principal: Principal, pilot_id: int
) -> PilotApplication:
    """A pilot whose usage the caller may read: a vendor, those in its projects."""
    application, _ = await service.application_in_scope(
        session, principal, pilot_id, pilots_only=True
    )
    return application


def _usage_point(row: PilotUsage) -> dict[str, Any]:
    return {
        "month": str(Month.of(row.month)),
        "revision": row.revision,
        "counts": _counts(row),
        "vendor_siren": row.vendor_siren,
        "sender_role": row.sender_role,
        "received_at": to_paris(row.received_at),
    }


@router.get(
    "/{pilot_id}/usage",
    dependencies=[requires(*Role)],
    response_model=PilotUsageSeries,
    summary="Time series of a pilot's Mon espace santé usage (latest revision of each month)",
    responses={401: _PROBLEM, 404: _PROBLEM, 422: _PROBLEM},
)
async def get_pilot_usage(
    pilot_id: RowId,
    session: SessionDep,
    principal: CurrentPrincipal,
    from_: FromQuery = None,
    to: ToQuery = None,
) -> PilotUsageSeries:
    application = await _usage_pilot(session, principal, pilot_id)
    start, end = month_bounds(from_, to)
    rows = await repository.usage_series(
        session, pilot_id, start.first_day if start else None, end.first_day if end else None
    )
    return PilotUsageSeries(
        pilot_id=pilot_id,
        finess=application.finess,
        items=[PilotUsagePoint(**_usage_point(r)) for r in rows],
    )


@router.get(
    "/{pilot_id}/usage/revisions",
    dependencies=[requires(*Role)],
    response_model=PilotUsageRevisionHistory,
    summary="Every revision of a pilot's usage, with who sent it and when",
    responses={401: _PROBLEM, 404: _PROBLEM, 422: _PROBLEM},
)
async def get_pilot_usage_revisions(
    pilot_id: RowId,
    session: SessionDep,
    principal: CurrentPrincipal,
    from_: FromQuery = None,
    to: ToQuery = None,
) -> PilotUsageRevisionHistory:
    application = await _usage_pilot(session, principal, pilot_id)
    start, end = month_bounds(from_, to)
    rows = await repository.usage_revisions(
        session, pilot_id, start.first_day if start else None, end.first_day if end else None
    )
    return PilotUsageRevisionHistory(
        pilot_id=pilot_id,
        finess=application.finess,
        items=[
            PilotUsageRevisionRead(
                **_usage_point(r),  # type: ignore[arg-type]
                sent_by_token=r.token_id,
                request_id=r.request_id,
            )
            for r in rows
        ],
    )
