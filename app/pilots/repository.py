"""SQL of pilots: applications in scope, the selection lock and counts, events (their usage:
`app.pilots.usage.repository`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.access.scopes import pilot_visible
from app.pilots.models import PilotApplication, PilotEvent
from app.pilots.rules import SelectedCounts
from app.pilots.vocabulary import PILOT_STATUSES, ApplicationStatus
from app.referential.models import Establishment

# Namespace of the advisory lock taken by every selection (the campaign year is the key).
_SELECTION_LOCK = 72_630_003


async def establishment(session: AsyncSession, finess: str) -> Establishment | None:
    return await session.get(Establishment, finess)


async def application_of(session: AsyncSession, campaign: str, finess: str) -> int | None:
    found = await session.execute(
        select(PilotApplication.id).where(
            PilotApplication.campaign == campaign, PilotApplication.finess == finess
        )
    )
    return found.scalar_one_or_none()


async def visible_application(
    session: AsyncSession, principal: Principal, application_id: int, *, pilots_only: bool = False
) -> tuple[PilotApplication, Establishment] | None:
    query = (
        select(PilotApplication, Establishment)
        .join(Establishment, Establishment.finess == PilotApplication.finess)
        .where(PilotApplication.id == application_id, pilot_visible(principal))
    )
    if pilots_only:
        query = query.where(PilotApplication.status.in_(PILOT_STATUSES))
    row = (await session.execute(query)).one_or_none()
    return None if row is None else (row[0], row[1])


async def list_applications(
    session: AsyncSession,
    principal: Principal,
    campaign: str,
    *,
    region: str | None = None,
    statuses: Sequence[str] | None = None,
    domain: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[tuple[PilotApplication, Establishment]], int]:
    """Applications of the caller's scope, oldest first, with the total before paging."""
    conditions = [PilotApplication.campaign == campaign, pilot_visible(principal)]
    if region:
        conditions.append(PilotApplication.region_code == region)
    if statuses:
        conditions.append(PilotApplication.status.in_(statuses))
    if domain:
        conditions.append(PilotApplication.domain == domain)
    total = (
        await session.execute(select(func.count()).select_from(PilotApplication).where(*conditions))
    ).scalar_one()
    query = (
        select(PilotApplication, Establishment)
        .join(Establishment, Establishment.finess == PilotApplication.finess)
        .where(*conditions)
        .order_by(PilotApplication.region_code, PilotApplication.id)
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    rows = (await session.execute(query)).all()
    return [(row[0], row[1]) for row in rows], total


async def lock_selection(session: AsyncSession, campaign_year: int) -> None:
    """Serialise the selections of a campaign until the transaction ends.

    Pilots are few (56) and selected by hand, so one lock for the whole country costs nothing
    and keeps the national cap, the regional quotas and the per-EJ limit exact when several
    ARS select at once: the counts read after the lock include every committed selection.
    """
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:namespace, :key)"),
        {"namespace": _SELECTION_LOCK, "key": campaign_year},
    )


async def application_for_update(session: AsyncSession, application_id: int) -> PilotApplication:
    """The application as committed now (read again after the lock), locked for update."""
    found = await session.execute(
        select(PilotApplication)
        .where(PilotApplication.id == application_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return found.scalar_one()


async def selected_counts(
    session: AsyncSession, campaign: str, region: str, legal_entity: str, domain: str
) -> SelectedCounts:
    row = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(PilotApplication.region_code == region),
                func.count().filter(PilotApplication.legal_entity_finess == legal_entity),
                func.count().filter(PilotApplication.domain == domain),
            ).where(
                PilotApplication.campaign == campaign,
                PilotApplication.status == ApplicationStatus.SELECTED,
            )
        )
    ).one()
    return SelectedCounts(national=row[0], regional=row[1], legal_entity=row[2], domain=row[3])


async def events_of(
    session: AsyncSession, application_ids: Sequence[int]
) -> dict[int, list[PilotEvent]]:
    rows = await session.execute(
        select(PilotEvent)
        .where(PilotEvent.application_id.in_(application_ids))
        .order_by(PilotEvent.application_id, PilotEvent.id)
    )
    events: dict[int, list[PilotEvent]] = defaultdict(list)
    for event in rows.scalars():
        events[event.application_id].append(event)
    return events


async def application_counts(
    session: AsyncSession, campaign: str, regions: Sequence[str] | None
) -> dict[str, dict[str, int]]:
    """Applications per region and status, counted in PostgreSQL."""
    query = (
        select(PilotApplication.region_code, PilotApplication.status, func.count())
        .where(PilotApplication.campaign == campaign)
        .group_by(PilotApplication.region_code, PilotApplication.status)
    )
    if regions is not None:
        query = query.where(PilotApplication.region_code.in_(regions))
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for region, status, count in await session.execute(query):
        counts[region][status] = count
    return counts
