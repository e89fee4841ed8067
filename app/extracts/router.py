"""HTTP endpoints of extract ingestion: POST /api/v1/extracts (JSON or CSV), withdrawals."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response

from app.access.dependencies import AuthorisedRoute, CurrentPrincipal, requires
from app.access.principal import Role
from app.batches import batch_request_body, read_batch
from app.clock import Month
from app.db import SessionDep
from app.errors import NotFound
from app.extracts import service
from app.extracts.ingestion import EXTRACTS
from app.extracts.rules import decode_well_formed
from app.extracts.schemas import ExtractBatch, ImportSummary, WithdrawalIn, WithdrawalOut
from app.ingestion import BatchOptions, ingest
from app.referential.repository import finess_or_invalid, visible_establishment

router = APIRouter(prefix="/api/v1/extracts", tags=["extracts"], route_class=AuthorisedRoute)

_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


@router.post(
    "",
    dependencies=[requires(Role.VENDOR)],
    summary="Push a batch of monthly usage extracts",
    response_model=ImportSummary,
    openapi_extra=batch_request_body(
        ExtractBatch,
        "finess,period_start,period_end,accompanied_persons,eligible_persons,"
        "mssante_messages_sent,dmp_fed_persons,active_files,active_files_with_care_project,"
        "active_files_with_agenda_event\n"
        "750712184,2025-01,2025-03,80,75,60,55,78,72,74\n",
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
async def push_extracts(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    dry_run: Annotated[bool, Query(description="validate and report, store nothing")] = False,
    atomic: Annotated[bool, Query(description="store all rows or none")] = False,
) -> Response:
    """Each row is validated on its own; the summary gives, per row, its outcome and the
    reason of every refusal (field, code, message). Re-sending a period creates a new
    revision; identical counts change nothing."""
    rows, body, text_cells = await read_batch(request, "extracts", decode_well_formed)
    summary = await ingest(
        session,
        principal,
        rows,
        BatchOptions(dry_run=dry_run, atomic=atomic),
        EXTRACTS,
        payload=body,
        text_cells=text_cells,
    )
    return Response(orjson.dumps(summary), media_type="application/json")


@router.post(
    "/withdrawals",
    dependencies=[requires(Role.VENDOR)],
    summary="Withdraw one of the vendor's own extracts (recorded, not deleted)",
    response_model=WithdrawalOut,
    status_code=201,
    responses={401: _PROBLEM, 403: _PROBLEM, 404: _PROBLEM, 409: _PROBLEM, 422: _PROBLEM},
)
async def withdraw_extract(
    payload: WithdrawalIn, request: Request, session: SessionDep, principal: CurrentPrincipal
) -> WithdrawalOut:
    finess = finess_or_invalid(payload.finess)
    if await visible_establishment(session, principal, finess) is None:
        raise NotFound(f"Establishment {finess} not found.")
    start, end = Month.parse(payload.period_start), Month.parse(payload.period_end)
    revision = await service.withdraw(session, principal, finess, start, end)
    return WithdrawalOut(
        finess=finess, period_start=str(start), period_end=str(end), revision=revision
    )
