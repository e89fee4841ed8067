"""HTTP endpoints of people and their grants (national team; an ARS for its region)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.dependencies import AuthorisedRoute, CurrentPrincipal, requires
from app.access.principal import Role
from app.db import SessionDep
from app.identity import repository, service
from app.identity.models import AccessGrant, Person
from app.identity.schemas import GrantCreate, GrantRead, Me, PersonCreate, PersonDetail, PersonRead
from app.schemas import Page, RowId

router = APIRouter(prefix="/api/v1", tags=["access"], route_class=AuthorisedRoute)
ANYONE = requires(Role.VENDOR, Role.ARS, Role.GRADES, Role.NATIONAL)
# People and grants are managed by the national team and the ARS (app/identity/rules.py).
MANAGERS = requires(Role.NATIONAL, Role.ARS)
# ... and a person out of the caller's sight answers 404 before the body is read.
MANAGERS_OF_PERSON = requires(Role.NATIONAL, Role.ARS, sees=("person_id", service.visible_person))
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


def _read(person: Person, grant: AccessGrant | None) -> PersonRead:
    read = PersonRead.model_validate(person)
    read.grant = GrantRead.model_validate(grant) if grant is not None else None
    return read


@router.get(
    "/me",
    response_model=Me,
    dependencies=[ANYONE],
    summary="Who the caller is: its role, binding, and the person behind it",
    responses={401: _PROBLEM, 403: _PROBLEM},
)
async def me(session: SessionDep, principal: CurrentPrincipal) -> Me:
    person = None
    if principal.person is not None:
        found = await session.get(Person, principal.person.id)
        grant = await session.get(AccessGrant, principal.grant_id) if principal.grant_id else None
        person = _read(found, grant) if found is not None else None
    return Me(
        role=principal.role.value,
        vendor_siren=principal.vendor_siren,
        region=principal.region_code,
        token_id=principal.token_id,
        person=person,
    )


@router.get(
    "/people",
    response_model=Page[PersonRead],
    dependencies=[MANAGERS],
    summary="People known to the service, with the grant each holds",
    responses={401: _PROBLEM, 403: _PROBLEM},
)
async def list_people(
    session: SessionDep,
    principal: CurrentPrincipal,
    email: Annotated[str | None, Query(max_length=320, description="part of the e-mail")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Page[PersonRead]:
    """The national team sees everyone; an ARS sees the people of its region and those who
    have no access yet."""
    rows, total = await repository.list_people(
        session, principal, email=email, limit=limit, offset=offset
    )
    return Page[PersonRead](
        items=[_read(p, g) for p, g in rows], total=total, limit=limit, offset=offset
    )


@router.post(
    "/people",
    status_code=201,
    dependencies=[MANAGERS],
    response_model=PersonRead,
    summary="Make an identity known before it signs in (a client application, for instance)",
    responses={200: {"model": PersonRead}, 401: _PROBLEM, 403: _PROBLEM, 422: _PROBLEM},
)
async def create_person(
    payload: PersonCreate,
    response: Response,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> PersonRead:
    """201 with the new identity; 200 with the existing one when it is already known."""
    person, created = await service.register(
        session,
        principal,
        issuer=payload.issuer,
        subject=payload.subject,
        kind=payload.kind,
        email=payload.email,
        name=payload.name,
    )
    if not created:
        await service.visible_person(session, principal, person.id)
        response.status_code = 200
    return _read(person, await repository.active_grant_of(session, person.id))


async def _detail(session: AsyncSession, person: Person) -> PersonDetail:
    grants = await repository.grants_of(session, person.id)
    active = next((g for g in grants if g.withdrawn_at is None), None)
    return PersonDetail(
        **_read(person, active).model_dump(),
        grants=[GrantRead.model_validate(g) for g in grants],
    )


@router.get(
    "/people/{person_id}",
    response_model=PersonDetail,
    dependencies=[MANAGERS_OF_PERSON],
    summary="A person and every grant they held",
    responses={401: _PROBLEM, 403: _PROBLEM, 404: _PROBLEM},
)
async def get_person(
    person_id: RowId, session: SessionDep, principal: CurrentPrincipal
) -> PersonDetail:
    return await _detail(session, await service.visible_person(session, principal, person_id))


@router.post(
    "/people/{person_id}/grants",
    status_code=201,
    dependencies=[MANAGERS_OF_PERSON],
    response_model=GrantRead,
    summary="Grant a role (bound to a vendor or a region) to a person",
    responses={401: _PROBLEM, 403: _PROBLEM, 404: _PROBLEM, 409: _PROBLEM, 422: _PROBLEM},
)
async def create_grant(
    person_id: RowId,
    payload: GrantCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> GrantRead:
    """The national team grants any role; an ARS grants `ars` and `grades` for its own
    region. A person holds one grant at a time (409 while another is in force). The grant
    counts from the person's next request."""
    grant = await service.give_grant(
        session,
        principal,
        person_id,
        Role(payload.role),
        vendor_siren=payload.vendor_siren,
        region_code=payload.region,
    )
    return GrantRead.model_validate(grant)


@router.delete(
    "/people/{person_id}/grants/{grant_id}",
    status_code=204,
    dependencies=[MANAGERS_OF_PERSON],
    summary="Withdraw a grant (effective on the person's next request)",
    responses={401: _PROBLEM, 403: _PROBLEM, 404: _PROBLEM},
)
async def withdraw_grant(
    person_id: RowId,
    grant_id: RowId,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Response:
    await service.withdraw(session, principal, person_id, grant_id)
    return Response(status_code=204)
