"""SQL of projects: registry, establishments, organisation sizes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.access.scopes import project_visible
from app.db import raw_connection
from app.extracts.models import REQUIRED_COUNTS
from app.projects.models import Project, ProjectEstablishment, ProjectEvent
from app.referential.models import Establishment


async def establishments(session: AsyncSession, numbers: Sequence[str]) -> dict[str, Establishment]:
    rows = await session.execute(select(Establishment).where(Establishment.finess.in_(numbers)))
    return {row.finess: row for row in rows.scalars()}


async def taken(session: AsyncSession, numbers: Sequence[str]) -> set[str]:
    rows = await session.execute(
        select(ProjectEstablishment.finess).where(ProjectEstablishment.finess.in_(numbers))
    )
    return set(rows.scalars())


async def legal_entity_sizes(
    session: AsyncSession, legal_entities: Sequence[str]
) -> tuple[dict[str, int], dict[str, str]]:
    """Establishments managed by each EJ in the referential, and the EJ's main region."""
    rows = await session.execute(
        select(
            Establishment.legal_entity_finess,
            func.count(),
            func.mode().within_group(Establishment.region_code),
        )
        .where(Establishment.legal_entity_finess.in_(legal_entities))
        .group_by(Establishment.legal_entity_finess)
    )
    sizes, regions = {}, {}
    for legal, count, region in rows:
        sizes[legal] = count
        regions[legal] = region
    return sizes, regions


async def reference_exists(session: AsyncSession, reference: str) -> bool:
    found = await session.execute(select(Project.id).where(Project.reference == reference))
    return found.scalar_one_or_none() is not None


async def visible_project(
    session: AsyncSession, principal: Principal, project_id: int
) -> Project | None:
    found = await session.execute(
        select(Project).where(Project.id == project_id, project_visible(principal))
    )
    return found.scalar_one_or_none()


async def visible_project_closures(
    session: AsyncSession, principal: Principal, project_id: int
) -> tuple[Project, dict[str, date]] | None:
    """The project if the caller may see it, with the closing date of those of its
    establishments that are closed: one round trip for what a compliance read needs besides
    the rule's own queries."""
    closures = (
        select(func.json_object_agg(Establishment.finess, Establishment.closed_on))
        .select_from(ProjectEstablishment)
        .join(Establishment, Establishment.finess == ProjectEstablishment.finess)
        .where(ProjectEstablishment.project_id == Project.id, Establishment.closed_on.is_not(None))
        .scalar_subquery()
    )
    found = (
        await session.execute(
            select(Project, closures).where(Project.id == project_id, project_visible(principal))
        )
    ).one_or_none()
    if found is None:
        return None
    project, closed = found
    return project, {finess: date.fromisoformat(day) for finess, day in (closed or {}).items()}


async def project_lines(
    session: AsyncSession, project_id: int
) -> list[tuple[ProjectEstablishment, Establishment]]:
    rows = await session.execute(
        select(ProjectEstablishment, Establishment)
        .join(Establishment, Establishment.finess == ProjectEstablishment.finess)
        .where(ProjectEstablishment.project_id == project_id)
        .order_by(ProjectEstablishment.rank, ProjectEstablishment.finess)
    )
    return [(line, establishment) for line, establishment in rows]


async def events_of(session: AsyncSession, project_ids: Sequence[int]) -> list[ProjectEvent]:
    rows = await session.execute(
        select(ProjectEvent)
        .where(ProjectEvent.project_id.in_(project_ids))
        .order_by(ProjectEvent.project_id, ProjectEvent.id)
    )
    return list(rows.scalars())


_LATEST_SQL = f"""
SELECT pe.project_id, pe.finess, m.period_start, m.period_end,
       {", ".join(f"m.{c}" for c in REQUIRED_COUNTS)}
FROM project_establishment pe
LEFT JOIN latest_measurement m ON m.finess = pe.finess
WHERE pe.project_id = ANY($1::int[])
ORDER BY pe.project_id, pe.finess
"""


async def latest_measurements(session: AsyncSession, project_ids: Sequence[int]) -> list[Any]:
    """The latest active measurement of every establishment of these projects (or None)."""
    conn = await raw_connection(session)
    return await conn.fetch(_LATEST_SQL, list(project_ids))


async def lock_latest_measurements(session: AsyncSession, project_id: int, event_id: int) -> int:
    """Freeze the measurements a balance decision rests on; later revisions are refused."""
    conn = await raw_connection(session)
    status = await conn.execute(
        """
        UPDATE measurement m SET locked_by_event_id = $2
        FROM project_establishment pe JOIN latest_measurement l ON l.finess = pe.finess
        WHERE pe.project_id = $1 AND m.finess = l.finess AND m.period_start = l.period_start
        """,
        project_id,
        event_id,
    )
    return int(status.split()[-1])


async def event_rows(session: AsyncSession, project_ids: Sequence[int]) -> list[Any]:
    """Events of many projects as plain records (compliance reads thousands at once)."""
    conn = await raw_connection(session)
    return await conn.fetch(
        "SELECT project_id, type, date, amount FROM project_event "
        "WHERE project_id = ANY($1::int[]) ORDER BY project_id, id",
        list(project_ids),
    )


async def projects_in_scope(
    session: AsyncSession, principal: Principal, region: str | None = None
) -> list[Project]:
    query = select(Project).where(project_visible(principal)).order_by(Project.id)
    if region:
        query = query.where(Project.region_code == region)
    return list((await session.execute(query)).scalars())
