"""SQL of measurement time series and revision histories."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Row, Select, and_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.access.scopes import establishment_visible
from app.extracts.models import COUNT_FIELDS, REVISION_FIELDS, ExtractRevision, Measurement
from app.referential.models import Establishment


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


async def visible_measurements(
    session: AsyncSession, principal: Principal, finess: str, start: date | None, end: date | None
) -> list[Row[Any]] | None:
    """The latest revision of each period of the establishment (withdrawn ones left out),
    oldest first, the columns a series shows; None when the caller may not see it. One round
    trip: the establishment, outer-joined to its measurements, under the caller's scope."""
    joined = [Measurement.finess == Establishment.finess, ~Measurement.withdrawn]
    if start is not None:
        joined.append(Measurement.period_end >= start)
    if end is not None:
        joined.append(Measurement.period_start <= end)
    query = (
        select(
            Measurement.period_start,
            Measurement.period_end,
            Measurement.first_window,
            Measurement.revision,
            Measurement.received_at,
            Measurement.warnings,
            *(getattr(Measurement, name) for name in COUNT_FIELDS),
        )
        .select_from(Establishment)
        .outerjoin(Measurement, and_(*joined))
        .where(Establishment.finess == finess, establishment_visible(principal))
        .order_by(Measurement.period_start)
    )
    rows = list((await session.execute(query)).all())
    if not rows:
        return None
    return [] if rows[0].period_start is None else rows


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
