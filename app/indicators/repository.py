"""SQL of measurement time series and revision histories."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Row, Select, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.extracts.models import REVISION_FIELDS, ExtractRevision, Measurement


def _in_period(
    query: Select[Any],
    table: type[ExtractRevision] | type[Measurement],
    start: date | None,
    end: date | None,
) -> Select[Any]:
    """The periods of `table` that overlap start..end (either bound may be open)."""
    if start is not None:
        query = query.where(table.period_end >= start)
    if end is not None:
        query = query.where(table.period_start <= end)
    return query


async def measurements(
    session: AsyncSession, finess: str, start: date | None, end: date | None
) -> list[Measurement]:
    query = select(Measurement).where(Measurement.finess == finess, ~Measurement.withdrawn)
    query = _in_period(query, Measurement, start, end).order_by(Measurement.period_start)
    return list((await session.execute(query)).scalars())


async def revisions(
    session: AsyncSession, finess: str, start: date | None, end: date | None
) -> list[Row[Any]]:
    """Every revision of the establishment's periods, in order: those superseded
    (extract_revision) and the current one of each period (measurement)."""

    def of(table: type[ExtractRevision] | type[Measurement]) -> Select[Any]:
        columns = (getattr(table, c) for c in REVISION_FIELDS[1:])
        return _in_period(select(*columns).where(table.finess == finess), table, start, end)

    history = union_all(of(ExtractRevision), of(Measurement)).subquery()
    query = select(history).order_by(history.c.period_start, history.c.revision)
    return list((await session.execute(query)).all())
