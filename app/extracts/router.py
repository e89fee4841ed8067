"""HTTP endpoints of extract ingestion: POST /api/v1/extracts (JSON or CSV), withdrawals."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response

from app.access.dependencies import CurrentPrincipal, require_role
from app.access.principal import Role
from app.audit import idempotency
from app.clock import Month
from app.config import get_settings
from app.db import SessionDep
from app.errors import DomainError, FieldError, Invalid, NotFound, TooLarge
from app.extracts import service
from app.extracts.schemas import ExtractBatch, ImportSummary, WithdrawalIn, WithdrawalOut
from app.referential.finess import InvalidFiness, check_finess
from app.referential.repository import visible_establishment

router = APIRouter(prefix="/api/v1/extracts", tags=["extracts"])

_PROBLEM = {"content": {"application/problem+json": {}}}


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it exceeds `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"The body exceeds {limit} bytes; split the batch.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"The body exceeds {limit} bytes; split the batch.")
        chunks.append(chunk)
    return b"".join(chunks)


def is_csv(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() in ("text/csv", "application/csv")


def parse_batch(body: bytes, content_type: str) -> list[Any]:
    media = content_type.split(";")[0].strip().lower()
    if is_csv(content_type):
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DomainError(
                "The CSV body must be UTF-8.", [FieldError("body", "encoding", str(exc))]
            ) from exc
        sample = text[:4096]
        delimiter = ";" if sample.count(";") > sample.count(",") else ","
        reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
        if not reader.fieldnames or "finess" not in reader.fieldnames:
            raise DomainError(
                "The CSV needs a header line with the extract's columns (finess, period_start…).",
                [FieldError("body", "missing_header", "no finess column in the header")],
            )
        rows: list[Any] = []
        for line in reader:
            if None in line:
                rows.append({"__extra_cells__": line.pop(None), **line})
            else:
                rows.append(line)
        return rows
    if media not in ("application/json", ""):
        raise DomainError(
            f"Unsupported content type {media!r}: send application/json or text/csv.",
            [FieldError("Content-Type", "unsupported", "application/json or text/csv")],
        )
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DomainError(
            "The body is not valid JSON.", [FieldError("body", "invalid_json", str(exc))]
        ) from exc
    if not isinstance(document, dict) or not isinstance(document.get("extracts"), list):
        raise Invalid(
            'The body must be an object {"extracts": [...]}.',
            [FieldError("extracts", "required", "a list of extracts is required")],
        )
    return document["extracts"]


@router.post(
    "",
    summary="Push a batch of monthly usage extracts",
    response_model=ImportSummary,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": ExtractBatch.model_json_schema(
                        ref_template="#/components/schemas/{model}"
                    )
                },
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "finess,period_start,period_end,accompanied_persons,"
                    "eligible_persons,mssante_messages_sent,dmp_fed_persons,active_files,"
                    "active_files_with_care_project,active_files_with_agenda_event\n"
                    "750712184,2025-01,2025-03,80,75,60,55,78,72,74\n",
                },
            },
        },
    },
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
    require_role(principal, Role.VENDOR, action="push extracts")
    settings = get_settings()
    body = await read_limited_body(request, settings.max_body_bytes)
    key = request.headers.get("idempotency-key")
    if key is not None and not dry_run:
        fingerprint = idempotency.request_hash(
            "POST", request.url.path, str(request.url.query), body
        )
        replay = await idempotency.claim(session, principal, key, fingerprint)
        if replay is not None:
            status, content = replay
            return Response(
                content,
                status_code=status,
                media_type="application/json",
                headers={idempotency.REPLAY_HEADER: "true"},
            )
    content_type = request.headers.get("content-type", "application/json")
    rows = parse_batch(body, content_type)
    if len(rows) > settings.max_batch_rows:
        raise TooLarge(
            f"A batch holds at most {settings.max_batch_rows} extracts; this one has {len(rows)}."
        )
    summary = await service.ingest(
        session,
        principal,
        rows,
        service.BatchOptions(dry_run=dry_run, atomic=atomic),
        request=request,
        payload=body,
        text_cells=is_csv(content_type),
    )
    content = orjson.dumps(summary)
    if key is not None and not dry_run:
        await idempotency.remember(session, principal, key, 200, content)
    return Response(content, media_type="application/json")


@router.post(
    "/withdrawals",
    summary="Withdraw one of the vendor's own extracts (recorded, not deleted)",
    response_model=WithdrawalOut,
    status_code=201,
    responses={401: _PROBLEM, 403: _PROBLEM, 404: _PROBLEM, 409: _PROBLEM, 422: _PROBLEM},
)
async def withdraw_extract(
    payload: WithdrawalIn, request: Request, session: SessionDep, principal: CurrentPrincipal
) -> WithdrawalOut:
    require_role(principal, Role.VENDOR, action="withdraw extracts")
    try:
        finess = check_finess(payload.finess)
    except InvalidFiness as exc:
        raise Invalid(str(exc), [FieldError("finess", "invalid_finess", str(exc))]) from exc
    if await visible_establishment(session, principal, finess) is None:
        raise NotFound(f"Establishment {finess} not found.")
    start, end = Month.parse(payload.period_start), Month.parse(payload.period_end)
    revision = await service.withdraw(session, principal, finess, start, end, request)
    return WithdrawalOut(
        finess=finess, period_start=str(start), period_end=str(end), revision=revision
    )
