"""People's access: the principal behind a bearer JWT or a console session, and grants
given and withdrawn (audited)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import PersonRef, Principal, Role
from app.audit import service as audit
from app.config import get_settings
from app.errors import Conflict, FieldError, Forbidden, Invalid, NotFound
from app.identity import repository, rules
from app.identity.models import AccessGrant, Person
from app.identity.providers import directory
from app.identity.tokens import verify


class NoGrant(Forbidden):
    code = "no_grant"


def principal_of(person: Person, grant: AccessGrant) -> Principal:
    return person_principal(
        PersonRef(person.id, person.issuer, person.subject, person.email),
        grant.id,
        Role(grant.role),
        grant.vendor_siren,
        grant.region_code,
    )


def person_principal(
    person: PersonRef,
    grant_id: int,
    role: Role,
    vendor_siren: str | None,
    region_code: str | None,
) -> Principal:
    """The principal of a person (or client application) holding a grant: its role and
    binding are the grant's."""
    return Principal(
        None,
        role,
        vendor_siren,
        region_code,
        name=person.email or person.subject,
        person=person,
        grant_id=grant_id,
    )


def no_grant(issuer: str, subject: str) -> NoGrant:
    contact = get_settings().access_contact
    return NoGrant(
        f"This identity (issuer {issuer}, subject {subject}) has no access to the service yet: "
        f"ask {contact} to grant it.",
        issuer=issuer,
        subject=subject,
    )


async def principal_for_jwt(session: AsyncSession, raw: str) -> Principal:
    """The caller behind a bearer JWT: every check of the token, then the grant in force."""
    token = await verify(directory(), raw)
    person, grant = await repository.with_active_grant(
        session, token.provider.issuer, token.subject
    )
    if person is None or grant is None:
        raise no_grant(token.provider.issuer, token.subject)
    return principal_of(person, grant)


async def principal_for_person(session: AsyncSession, person_id: int) -> Principal | None:
    """The principal of a signed-in person, read again at each request; None without a grant."""
    person = await session.get(Person, person_id)
    if person is None:
        return None
    grant = await repository.active_grant_of(session, person_id)
    return principal_of(person, grant) if grant is not None else None


async def register(
    session: AsyncSession,
    principal: Principal,
    *,
    issuer: str,
    subject: str,
    kind: str,
    email: str | None,
    name: str | None,
) -> tuple[Person, bool]:
    """Make an identity known before it signs in (a client application, or a person whose
    subject the provider gave)."""
    if principal.role not in (Role.NATIONAL, Role.ARS):
        raise Forbidden("Only the national team and the ARS register people.")
    provider = directory().by_issuer(issuer)
    if provider is None:
        raise Invalid(
            f"{issuer!r} is not a configured provider.",
            [FieldError("issuer", "unknown_issuer", "not one of ESMS_OIDC_PROVIDERS")],
        )
    person, created = await repository.create(
        session, provider.issuer, subject, kind=kind, email=email, name=name
    )
    if created:
        await audit.record(
            session,
            principal,
            "person.create",
            "person",
            str(person.id),
            region_code=principal.region_code,
            detail={"issuer": person.issuer, "subject": subject, "kind": kind, "email": email},
        )
    return person, created


async def visible_person(session: AsyncSession, viewer: Principal, person_id: int) -> Person:
    person = await session.get(Person, person_id)
    if person is None:
        raise NotFound(f"No person {person_id}.")
    grant = await repository.active_grant_of(session, person_id)
    if not rules.sees_person(viewer, grant.region_code if grant else None, grant is not None):
        raise NotFound(f"No person {person_id}.")
    return person


async def give_grant(
    session: AsyncSession,
    principal: Principal,
    person_id: int,
    role: Role,
    *,
    vendor_siren: str | None,
    region_code: str | None,
) -> AccessGrant:
    person = await visible_person(session, principal, person_id)
    reason = rules.refusal_to_grant(principal, person_id, role, region_code)
    if reason is not None:
        raise Forbidden(f"This grant is refused: {reason}.")
    # Imported here: the access router depends on the principal resolution, which uses us.
    from app.access.router import check_binding

    await check_binding(session, role, vendor_siren, region_code)
    current = await repository.active_grant_of(session, person_id)
    if current is not None:
        raise _already_granted(current)
    try:
        async with session.begin_nested():
            grant = await repository.add_grant(
                session,
                person_id,
                role,
                vendor_siren=vendor_siren,
                region_code=region_code,
                granted_by=principal.label,
            )
    except IntegrityError:  # a grant given meanwhile by someone else
        current = await repository.active_grant_of(session, person_id)
        if current is None:
            raise
        raise _already_granted(current) from None
    await audit.record(
        session,
        principal,
        "grant.create",
        "access_grant",
        str(grant.id),
        region_code=region_code,
        detail={
            "person_id": person_id,
            "issuer": person.issuer,
            "subject": person.subject,
            "email": person.email,
            "role": role.value,
            "vendor_siren": vendor_siren,
            "region": region_code,
        },
    )
    return grant


def _already_granted(current: AccessGrant) -> Conflict:
    bound = current.region_code or current.vendor_siren or "all"
    return Conflict(
        f"This person already holds grant {current.id} ({current.role} {bound}); withdraw it "
        "first: a person holds one grant at a time.",
        grant_id=current.id,
    )


async def withdraw(
    session: AsyncSession, principal: Principal, person_id: int, grant_id: int
) -> None:
    person = await visible_person(session, principal, person_id)
    grant = await session.get(AccessGrant, grant_id)
    if grant is None or grant.person_id != person_id or grant.withdrawn_at is not None:
        raise NotFound(f"No grant {grant_id} in force for person {person_id}.")
    reason = rules.refusal_to_grant(principal, person_id, Role(grant.role), grant.region_code)
    if reason is not None:
        raise Forbidden(f"This withdrawal is refused: {reason}.")
    if not await repository.withdraw_grant(session, grant_id, principal.label):
        raise NotFound(f"No grant {grant_id} in force for person {person_id}.")
    await audit.record(
        session,
        principal,
        "grant.withdraw",
        "access_grant",
        str(grant_id),
        region_code=grant.region_code,
        detail={
            "person_id": person_id,
            "issuer": person.issuer,
            "subject": person.subject,
            "email": person.email,
            "role": grant.role,
        },
    )
