"""SQL of the FHIR reads: the visible establishments asked for, their latest revisions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.access.scopes import establishment_visible
from app.extracts.models import COUNT_FIELDS, Measurement
from app.fhir.mapping import StoredReport
from app.referential.models import Establishment


async def visible_names(
    session: AsyncSession, principal: Principal, numbers: Sequence[str]
) -> dict[str, str]:
    """FINESS -> name of those of `numbers` the caller may see."""
    rows = await session.execute(
        select(Establishment.finess, Establishment.name).where(
            Establishment.finess.in_(numbers), establishment_visible(principal)
        )
    )
    return {finess: name for finess, name in rows}


async def latest_reports(
    session: AsyncSession,
    names: dict[str, str],
    start: date | None,
    end: date | None,
) -> list[StoredReport]:
    """The latest revision of each period of these establishments (withdrawn ones left out)
    that overlaps start..end (either bound open), by establishment then period."""
    query = select(Measurement).where(Measurement.finess.in_(list(names)), ~Measurement.withdrawn)
    if start is not None:
        query = query.where(Measurement.period_end >= start)
    if end is not None:
        query = query.where(Measurement.period_start <= end)
    query = query.order_by(Measurement.finess, Measurement.period_start)
    return [
        StoredReport(
            finess=m.finess,
            name=names.get(m.finess),
            period_start=m.period_start,
            period_end=m.period_end,
            revision=m.revision,
            received_at=m.received_at,
            first_window=m.first_window,
            counts={name: getattr(m, name) for name in COUNT_FIELDS},
        )
        for m in (await session.execute(query)).scalars()
    ]
