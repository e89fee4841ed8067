"""HTTP endpoints of the establishment referential."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.access.dependencies import AuthorisedRoute, CurrentPrincipal, requires
from app.access.principal import Role
from app.access.scopes import Scope
from app.audit import service as audit
from app.db import SessionDep
from app.errors import Conflict, FieldError, Forbidden, Invalid, NotFound
from app.referential import repository
from app.referential.categories import category_label
from app.referential.finess import InvalidFiness, check_finess, department_of_finess
from app.referential.geography import DEPARTMENTS
from app.referential.models import Establishment
from app.referential.schemas import EstablishmentCreate, EstablishmentRead

router = APIRouter(
    prefix="/api/v1/establishments", tags=["establishments"], route_class=AuthorisedRoute
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
    try:
        number = check_finess(finess)
    except InvalidFiness as exc:
        raise NotFound(f"Establishment {finess} not found ({exc}).") from exc
    row = await repository.visible_establishment(session, principal, number)
    if row is None:
        raise NotFound(f"Establishment {number} not found.")
    return _read(row, await repository.project_of(session, number))
