"""SQL of measurement time series and revision histories."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.extracts.models import ExtractRevision, Measurement


async def measurements(
    session: AsyncSession, finess: str, start: date | None, end: date | None
) -> list[Measurement]:
    query = select(Measurement).where(Measurement.finess == finess, ~Measurement.withdrawn)
    if start is not None:
        query = query.where(Measurement.period_end >= start)
    if end is not None:
        query = query.where(Measurement.period_start <= end)
    return list((await session.execute(query.order_by(Measurement.period_start))).scalars())


async def revisions(
    session: AsyncSession, finess: str, start: date | None, end: date | None
) -> list[ExtractRevision]:
    query = select(ExtractRevision).where(ExtractRevision.finess == finess)
    if start is not None:
        query = query.where(ExtractRevision.period_end >= start)
    if end is not None:
        query = query.where(ExtractRevision.period_start <= end)
    query = query.order_by(ExtractRevision.period_start, ExtractRevision.revision)
    return list((await session.execute(query)).scalars())
