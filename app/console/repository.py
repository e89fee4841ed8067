"""The few reads only the console needs (lookups for its forms and search)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.extracts.models import Measurement
from app.projects.models import ProjectEstablishment
from app.referential.models import Establishment
from app.vendors.models import Vendor


async def projects_holding(session: AsyncSession, finess: str) -> set[int]:
    """Projects one of whose establishments has this FINESS (the caller's scope is applied
    by the list the page filters)."""
    rows = await session.execute(
        select(ProjectEstablishment.project_id).where(ProjectEstablishment.finess == finess)
    )
    return set(rows.scalars())


async def vendor_names(session: AsyncSession) -> dict[str, str]:
    rows = await session.execute(select(Vendor.siren, Vendor.name).order_by(Vendor.name))
    return {siren: name for siren, name in rows}


async def establishment(session: AsyncSession, finess: str) -> Establishment:
    """An establishment the caller was already found to see."""
    return (
        await session.execute(select(Establishment).where(Establishment.finess == finess))
    ).scalar_one()


async def locked_by(session: AsyncSession, event_id: int) -> list[tuple[str, str, str]]:
    """The periods a balance decision froze: (FINESS, first month, last month)."""
    rows = await session.execute(
        select(Measurement.finess, Measurement.period_start, Measurement.period_end)
        .where(Measurement.locked_by_event_id == event_id)
        .order_by(Measurement.finess)
    )
    return [(f, s.strftime("%Y-%m"), e.strftime("%Y-%m")) for f, s, e in rows]
