"""HTTP endpoints of the establishment referential."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import JSONResponse

from app.access import limits
from app.access.dependencies import AuthorisedRoute, CurrentPrincipal, requires
from app.access.principal import Role
from app.access.scopes import Scope
from app.audit import service as audit
from app.db import SessionDep, get_database
from app.errors import Conflict, FieldError, Forbidden, Invalid, NotFound
from app.referential import jobs, repository
from app.referential.categories import category_label
from app.referential.finess import InvalidFiness, check_finess, department_of_finess
from app.referential.finess_formats import REEXPOSITION_FIELDS
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

router = APIRouter(
    prefix="/api/v1/establishments", tags=["establishments"], route_class=AuthorisedRoute
)
IMPORTS_PATH = limits.IMPORTS_PATH
# The three formats, as they are downloaded; any content type is read the same way.
# A real row of the réexposition file (tests/data/finess-reexposition-sample.csv).
_REEXPOSITION_EXAMPLE = (
    ";".join(REEXPOSITION_FIELDS)
    + "\n"
    + (
        "010002228;920030152;EHPAD L'AMBARROISE AMBERIEU;EHPAD L'AMBARROISE AMBERIEU;;;58;AV;"
        "PAUL PAINLEVE;;;004;01;AIN;01500 AMBERIEU EN BUGEY;0474461111;0474461110;500;"
        "Etablissement d'hébergement pour personnes âgées dépendantes;4401;"
        "Etablissements d'Hébergement pour Personnes Âgées;49085207600010;8710A;47;"
        "ARS/PCD, Tarif partiel, non habilité aide sociale sans PUI;;;2006-12-04;2017-07-08;"
        "2026-05-07;;881333.1;6542469.8;1,ATLASANTE,97,BAN,EPSG:2154 RGF93 / Lambert-93 "
        "(Métropole);2026-05-04\n"
    )
)
_FINESS_PLUS_EXAMPLE = {
    "schemaVersion": "v1.0.0",
    "generatedAt": "2026-03-09T15:49:37.615611300Z",
    "pmej": [
        {
            "informationsGeneralesPMEJ": {"numFinessPm": "010000339"},
            "ege": [
                {
                    "informationsGeneralesEGE": {
                        "numFinessEge": "010780906",
                        "nomEgeCourt": "EHPAD RESIDENCE FONTELUNE AMBERIEU",
                    },
                    "categorieentiteGeographiqueExercice": "500",
                    "adresse": [{"usageAdresse": "03", "cogCommune": "01004"}],
                    "etatObjet": "A",
                }
            ],
        }
    ],
}
_UPLOAD = {
    "required": True,
    "description": "The FINESS file as downloaded: the official extraction, the réexposition "
    "CSV or the FINESS+ JSON flow, recognised from its content (UTF-8 or ISO-8859-1)",
    "content": {
        "application/json": {
            "schema": {"type": "object", "description": "the FINESS+ Structures flow (v1)"},
            "example": _FINESS_PLUS_EXAMPLE,
        },
        "application/octet-stream": {
            "schema": {"type": "string", "format": "binary"},
            "example": _REEXPOSITION_EXAMPLE,
        },
    },
}
imports_router = APIRouter(
    prefix=IMPORTS_PATH, tags=["referential imports"], route_class=AuthorisedRoute
)
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


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
    dependencies=[requires(Role.ARS, Role.NATIONAL)],
    status_code=201,
    response_model=EstablishmentRead,
    summary="Register an establishment in the referential",
    responses={401: _PROBLEM, 403: _PROBLEM, 409: _PROBLEM, 422: _PROBLEM},
)
async def create_establishment(
    payload: EstablishmentCreate, session: SessionDep, principal: CurrentPrincipal
) -> EstablishmentRead:
    finess, legal, department = _validated(payload)
    region = DEPARTMENTS[department].region_code
    if not Scope.of(principal).sees_region(region):
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
        payload=payload.model_dump(),
        region_code=region,
    )
    return _read(row, None)


@router.get(
    "/{finess}",
    dependencies=[requires(*Role)],
    response_model=EstablishmentRead,
    summary="One establishment of the caller's scope",
    responses={401: _PROBLEM, 404: _PROBLEM},
)
async def get_establishment(
    finess: str, session: SessionDep, principal: CurrentPrincipal
) -> EstablishmentRead:
    number = repository.finess_or_not_found(finess)
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
    dependencies=[requires(Role.NATIONAL)],
    status_code=202,
    response_model=ImportJobRead,
    summary="Upload a FINESS file; it is imported in the background",
    responses={400: _PROBLEM, 401: _PROBLEM, 403: _PROBLEM, 413: _PROBLEM, 422: _PROBLEM},
    openapi_extra={"requestBody": _UPLOAD},
)
async def start_import(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    background: BackgroundTasks,
    file_name: str | None = Query(default=None, max_length=255, description="shown in the job"),
) -> JSONResponse:
    """Answers at once with the job (202, `Location` to poll) once the file's start is
    recognised (else 400 for malformed JSON, 422 for a file of another kind). Only the
    programme's establishments are stored; a file that fails later (a truncated flow, a wrong
    column count) leaves the referential as it was and the job says why (line or JSON path)."""
    path, size = await jobs.receive_file(request)
    try:
        await jobs.recognise(path)
        job = await jobs.create(session, principal, file_name, size)
        await audit.record(
            session,
            principal,
            "referential.import.start",
            "referential_import",
            str(job.id),
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
    dependencies=[requires(Role.NATIONAL)],
    response_model=ImportJobRead,
    summary="Progress and report of a FINESS import",
    responses={401: _PROBLEM, 403: _PROBLEM, 404: _PROBLEM},
)
async def get_import(
    job_id: RowId, session: SessionDep, principal: CurrentPrincipal
) -> ImportJobRead:
    job = await repository.get_import(session, job_id)
    if job is None:
        raise NotFound(f"Import {job_id} not found.")
    return _job_read(job)
