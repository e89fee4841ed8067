"""An establishment's series of measurements with their annexe 2 indicators, as plain values
(for the API's answer and the console's page alike)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.campaigns.loader import current_campaign
from app.clock import Month, to_paris
from app.errors import NotFound
from app.extracts.models import COUNT_FIELDS
from app.indicators import repository
from app.indicators.rules import COUNTS, compute, meets_targets
from app.referential.repository import finess_or_not_found


def measurement_item(row: Any, targets: Mapping[str, Decimal]) -> dict[str, Any]:
    """One period, with the fields of `MeasurementRead` as plain values (36 months are 36
    items of nine indicators each: models for each would cost more than the rest)."""
    counts = {name: getattr(row, name) for name in COUNT_FIELDS}
    indicators = compute(counts, targets)
    return {
        "period_start": str(Month.of(row.period_start)),
        "period_end": str(Month.of(row.period_end)),
        "first_window": row.first_window,
        "revision": row.revision,
        "received_at": to_paris(row.received_at),
        "counts": counts,
        "indicators": {
            i.code: {
                "value": _count(counts[COUNTS[i.code]]) if i.code in COUNTS else i.value,
                "target": i.target,
                "met": i.met,
            }
            for i in indicators
        },
        "meets_targets": meets_targets(indicators),
        "warnings": row.warnings or [],
    }


def _count(value: int | None) -> Decimal | None:
    return None if value is None else Decimal(value)


async def series(
    session: AsyncSession,
    principal: Principal,
    finess: str,
    start: date | None = None,
    end: date | None = None,
) -> dict[str, Any]:
    """The latest revision of each period overlapping start..end (withdrawn ones left out),
    oldest first, as `MeasurementSeries` fields; not found out of the caller's scope."""
    number = finess_or_not_found(finess)
    rows = await repository.visible_measurements(session, principal, number, start, end)
    if rows is None:
        raise NotFound(f"Establishment {number} not found.")
    targets = current_campaign().targets
    return {"finess": number, "items": [measurement_item(r, targets) for r in rows]}
