"""HTTP endpoints of the establishment referential."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import JSONResponse

from app.access import limits
from app.access.dependencies import CurrentPrincipal, require_role
from app.access.principal import Role
from app.audit import service as audit
from app.db import SessionDep, get_database
from app.errors import Conflict, FieldError, Forbidden, Invalid, NotFound
from app.referential import jobs, repository
from app.referential.categories import category_label
from app.referential.finess import InvalidFiness, check_finess, department_of_finess
from app.referential.geography import DEPARTMENTS
from app.referential.models import Establishment, ReferentialImport
from app.referential.schemas import (
    EstablishmentCreate,
    EstablishmentRead,
    ImportJobRead,
    ImportProgress,
    ImportReportRead,
    ImportRowError,
)
from app.schemas import RowId

router = APIRouter(prefix="/api/v1/establishments", tags=["establishments"])
IMPORTS_PATH = limits.IMPORTS_PATH
_BINARY = {"type": "string", "format": "binary"}
imports_router = APIRouter(prefix=IMPORTS_PATH, tags=["referential imports"])
_PROBLEM = {"content": {"application/problem+json": {}}}


def _read(row: Establishment, project_id: int | None) -> EstablishmentRead:
    return EstablishmentRead(
        finess=row.finess,
        name=row.name,
        legal_entity_finess=row.legal_entity_finess,
        department=row.department,
        region=row.region_code,
        category_code=row.category_code,
        category_label=row.category_label,
        project_id=project_id,
        closed_on=row.closed_on,
    )


def _validated(payload: EstablishmentCreate) -> tuple[str, str, str]:
    errors: list[FieldError] = []
    finess = legal = ""
    for field in ("finess", "legal_entity_finess"):
        try:
            value = check_finess(getattr(payload, field))
        except InvalidFiness as exc:
            errors.append(FieldError(field, "invalid_finess", str(exc)))
            continue
        if field == "finess":
            finess = value
        else:
            legal = value
    department = payload.department.strip().upper()
    if department not in DEPARTMENTS:
        errors.append(
            FieldError("department", "unknown_department", f"{department!r} is not a département")
        )
    elif finess and department_of_finess(finess) != department:
        errors.append(
            FieldError(
                "department",
                "finess_mismatch",
                f"FINESS {finess} belongs to département {department_of_finess(finess)}",
            )
        )
    if errors:
        raise Invalid("The establishment is not valid.", errors)
    return finess, legal, department


@router.post(
    "",
    status_code=201,
    response_model=EstablishmentRead,
    summary="Register an establishment in the referential",
    responses={401: _PROBLEM, 403: _PROBLEM, 409: _PROBLEM, 422: _PROBLEM},
)
async def create_establishment(
    payload: EstablishmentCreate, request: Request, session: SessionDep, principal: CurrentPrincipal
) -> EstablishmentRead:
    require_role(principal, Role.ARS, Role.NATIONAL, action="register establishments")
    finess, legal, department = _validated(payload)
    region = DEPARTMENTS[department].region_code
    if not principal.sees_region(region):
        raise Forbidden(f"An ARS token registers establishments of its own region ({region}).")
    if (await repository.existing_finess(session, [finess])).get(finess):
        raise Conflict(
            f"Establishment {finess} is already in the referential.",
            [FieldError("finess", "already_exists", "already registered")],
        )
    row = Establishment(
        finess=finess,
        name=payload.name.strip(),
        legal_entity_finess=legal,
        department=department,
        region_code=region,
        category_code=payload.category_code,
        category_label=payload.category_label or category_label(payload.category_code),
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        principal,
        "establishment.create",
        "establishment",
        finess,
        request=request,
        payload=payload.model_dump(),
        region_code=region,
    )
    return _read(row, None)


@router.get(
    "/{finess}",
    response_model=EstablishmentRead,
    summary="One establishment of the caller's scope",
    responses={401: _PROBLEM, 404: _PROBLEM},
)
async def get_establishment(
    finess: str, session: SessionDep, principal: CurrentPrincipal
) -> EstablishmentRead:
    try:
        number = check_finess(finess)
    except InvalidFiness as exc:
        raise NotFound(f"Establishment {finess} not found ({exc}).") from exc
    row = await repository.visible_establishment(session, principal, number)
    if row is None:
        raise NotFound(f"Establishment {number} not found.")
    return _read(row, await repository.project_of(session, number))


def _job_read(job: ReferentialImport) -> ImportJobRead:
    size = job.size_bytes
    return ImportJobRead(
        id=job.id,
        status=job.status,
        file_name=job.file_name,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        progress=ImportProgress(
            bytes_read=job.bytes_read,
            size_bytes=size,
            percent=round(100 * job.bytes_read / size, 1) if size else 0.0,
            rows_read=job.rows_read,
        ),
        report=ImportReportRead.model_validate(job.report) if job.report else None,
        error=ImportRowError.model_validate(job.error) if job.error else None,
    )


@imports_router.post(
    "",
    status_code=202,
    response_model=ImportJobRead,
    summary="Upload a FINESS file; it is imported in the background",
    responses={401: _PROBLEM, 403: _PROBLEM, 413: _PROBLEM, 422: _PROBLEM},
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The FINESS file as downloaded (official extraction, réexposition "
            "CSV or FINESS+ JSON; recognised from its content)",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def start_import(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    background: BackgroundTasks,
    file_name: str | None = Query(default=None, max_length=255, description="shown in the job"),
) -> JSONResponse:
    """Answers at once with the job (202, `Location` to poll). Only the programme's
    establishments are stored; a file that cannot be imported leaves the referential as it
    was and the job says why (line or JSON path)."""
    require_role(principal, Role.NATIONAL, action="import the FINESS referential")
    path, size = await jobs.receive_file(request)
    try:
        job = await jobs.create(session, principal, file_name, size)
        await audit.record(
            session,
            principal,
            "referential.import.start",
            "referential_import",
            str(job.id),
            request=request,
            detail={"file_name": file_name, "size_bytes": size},
        )
        await session.refresh(job)
    except BaseException:
        jobs.discard(path)
        raise
    # Started once the job is committed (background tasks run after the session's commit).
    background.add_task(jobs.start, get_database(), job, path, principal)
    return JSONResponse(
        _job_read(job).model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"{IMPORTS_PATH}/{job.id}"},
        background=background,
    )


@imports_router.get(
    "/{job_id}",
    response_model=ImportJobRead,
    summary="Progress and report of a FINESS import",
    responses={401: _PROBLEM, 403: _PROBLEM, 404: _PROBLEM},
)
async def get_import(
    job_id: RowId, session: SessionDep, principal: CurrentPrincipal
) -> ImportJobRead:
    require_role(principal, Role.NATIONAL, action="follow FINESS imports")
    job = await repository.get_import(session, job_id)
    if job is None:
        raise NotFound(f"Import {job_id} not found.")
    return _job_read(job)
