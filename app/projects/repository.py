"""SQL of projects: registry, establishments, organisation sizes."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.access.scopes import project_visible
from app.projects.models import Project, ProjectEstablishment
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


async def list_projects(
    session: AsyncSession,
    principal: Principal,
    *,
    region: str | None,
    vendor: str | None,
    limit: int,
    offset: int,
) -> tuple[list[tuple[Project, int]], int]:
    counts = (
        select(ProjectEstablishment.project_id, func.count().label("n"))
        .group_by(ProjectEstablishment.project_id)
        .subquery()
    )
    query = (
        select(Project, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.project_id == Project.id)
        .where(project_visible(principal))
    )
    if region:
        query = query.where(Project.region_code == region)
    if vendor:
        query = query.where(Project.vendor_siren == vendor)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = await session.execute(query.order_by(Project.id).limit(limit).offset(offset))
    return [(project, n) for project, n in rows], total
