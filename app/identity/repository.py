"""SQL of people and grants."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, true, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal, Role
from app.audit.models import AuditEvent
from app.clock import now
from app.identity.models import AccessGrant, Person


async def find(session: AsyncSession, issuer: str, subject: str) -> Person | None:
    return (
        await session.execute(
            select(Person).where(Person.issuer == issuer, Person.subject == subject)
        )
    ).scalar_one_or_none()


async def with_active_grant(
    session: AsyncSession, issuer: str, subject: str
) -> tuple[Person | None, AccessGrant | None]:
    """The person and the grant in force, read at every request (a withdrawal counts at once)."""
    row = (
        await session.execute(
            select(Person, AccessGrant)
            .outerjoin(
                AccessGrant,
                and_(AccessGrant.person_id == Person.id, AccessGrant.withdrawn_at.is_(None)),
            )
            .where(Person.issuer == issuer, Person.subject == subject)
        )
    ).first()
    return (row[0], row[1]) if row else (None, None)


async def active_grant_of(session: AsyncSession, person_id: int) -> AccessGrant | None:
    return (
        await session.execute(
            select(AccessGrant).where(
                AccessGrant.person_id == person_id, AccessGrant.withdrawn_at.is_(None)
            )
        )
    ).scalar_one_or_none()


async def record_sign_in(
    session: AsyncSession,
    issuer: str,
    subject: str,
    *,
    email: str | None,
    name: str | None,
    organisation: str | None,
) -> Person:
    """Create the person at their first sign-in; later ones refresh what the provider says."""
    values = {"email": email, "name": name, "organisation": organisation, "last_sign_in_at": now()}
    statement = (
        insert(Person)
        .values(issuer=issuer, subject=subject, kind="person", **values)
        .on_conflict_do_update(constraint="uq_person_issuer_subject", set_=values)
        .returning(Person.id)
    )
    person_id = (await session.execute(statement)).scalar_one()
    person = await session.get(Person, person_id, populate_existing=True)
    assert person is not None
    return person


async def create(
    session: AsyncSession,
    issuer: str,
    subject: str,
    *,
    kind: str,
    email: str | None,
    name: str | None,
) -> tuple[Person, bool]:
    """The person with this identity, created when new; True when it was."""
    statement = (
        insert(Person)
        .values(issuer=issuer, subject=subject, kind=kind, email=email, name=name)
        .on_conflict_do_nothing(constraint="uq_person_issuer_subject")
        .returning(Person.id)
    )
    created = (await session.execute(statement)).scalar_one_or_none()
    person = await find(session, issuer, subject)
    assert person is not None
    return person, created is not None


def _visible(viewer: Principal) -> ColumnElement[bool]:
    """Over people outer-joined to their grant in force (see rules.sees_person)."""
    if viewer.role is Role.NATIONAL:
        return true()
    return or_(AccessGrant.id.is_(None), AccessGrant.region_code == viewer.region_code)


async def list_people(
    session: AsyncSession, viewer: Principal, *, email: str | None, limit: int, offset: int
) -> tuple[list[tuple[Person, AccessGrant | None]], int]:
    query = (
        select(Person, AccessGrant)
        .outerjoin(
            AccessGrant,
            and_(AccessGrant.person_id == Person.id, AccessGrant.withdrawn_at.is_(None)),
        )
        .where(_visible(viewer))
    )
    if email:
        query = query.where(func.lower(Person.email).contains(email.lower(), autoescape=True))
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = await session.execute(query.order_by(Person.id).limit(limit).offset(offset))
    return [(r[0], r[1]) for r in rows], total


async def grants_of(session: AsyncSession, person_id: int) -> list[AccessGrant]:
    return list(
        (
            await session.execute(
                select(AccessGrant)
                .where(AccessGrant.person_id == person_id)
                .order_by(AccessGrant.id.desc())
            )
        ).scalars()
    )


async def add_grant(
    session: AsyncSession,
    person_id: int,
    role: Role,
    *,
    vendor_siren: str | None,
    region_code: str | None,
    granted_by: str,
) -> AccessGrant:
    grant = AccessGrant(
        person_id=person_id,
        role=role.value,
        vendor_siren=vendor_siren,
        region_code=region_code,
        granted_by=granted_by,
    )
    session.add(grant)
    await session.flush()
    await session.refresh(grant)
    return grant


async def withdraw_grant(session: AsyncSession, grant_id: int, withdrawn_by: str) -> bool:
    result = await session.execute(
        update(AccessGrant)
        .where(AccessGrant.id == grant_id, AccessGrant.withdrawn_at.is_(None))
        .values(withdrawn_at=now(), withdrawn_by=withdrawn_by)
        .returning(AccessGrant.id)
    )
    return result.scalar_one_or_none() is not None


# The audit actions that write a revision of a measurement (batch import, withdrawal).
REVISION_WRITES = ("extracts.import", "extracts.withdraw")


async def revision_senders(
    session: AsyncSession, sent: list[tuple[str | None, datetime]]
) -> dict[tuple[str | None, datetime], AuditEvent]:
    """The audit entries of the writes that sent these revisions, when a person (not an API
    token) sent them: (request id, received at) -> entry. A revision and the audit entry of
    its write share the request id and the transaction's timestamp (both `now()`), so a
    request id that two callers happened to choose alike cannot mix them up."""
    ids = {request_id for request_id, _ in sent if request_id}
    if not ids:
        return {}
    rows = await session.execute(
        select(AuditEvent).where(
            AuditEvent.request_id.in_(ids),
            AuditEvent.action.in_(REVISION_WRITES),
            AuditEvent.person_issuer.is_not(None),
        )
    )
    found: dict[tuple[str | None, datetime], AuditEvent] = {
        (e.request_id, e.at): e for e in rows.scalars()
    }
    return {key: found[key] for key in sent if key in found}
