"""SQL of measurement time series and revision histories."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Row, Select, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.extracts.models import REVISION_FIELDS, ExtractRevision, Measurement


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
) -> list[Row[Any]]:
    """Every revision of the establishment's periods, in order: those superseded
    (extract_revision) and the current one of each period (measurement)."""

    def of(table: type[ExtractRevision] | type[Measurement]) -> Select[Any]:
        query = select(*(getattr(table, c) for c in REVISION_FIELDS[1:])).where(
            table.finess == finess
        )
        if start is not None:
            query = query.where(table.period_end >= start)
        if end is not None:
            query = query.where(table.period_start <= end)
        return query

    history = union_all(of(ExtractRevision), of(Measurement)).subquery()
    query = select(history).order_by(history.c.period_start, history.c.revision)
    return list((await session.execute(query)).all())
