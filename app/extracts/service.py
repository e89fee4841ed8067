"""Withdrawals of extracts (a batch of extracts goes through the ingestion core: see
`app.extracts.ingestion`)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.audit import service as audit
from app.clock import Month
from app.errors import Conflict, FieldError, NotFound
from app.extracts import repository
from app.request_context import current_request_id


async def withdraw(
    session: AsyncSession,
    principal: Principal,
    finess: str,
    start: Month,
    end: Month,
) -> int:
    """Record a withdrawal of the sender's own extract (kept in the history)."""
    series = await repository.series_state(session, finess)
    active = [r for r in series if not r["withdrawn"]]
    target = next((r for r in series if r["period_start"] == start.first_day), None)
    if target is None or target["withdrawn"] or target["period_end"] != end.first_day:
        raise NotFound(f"No active extract of {finess} for {start} to {end}.")
    if target["locked"]:
        raise Conflict(
            f"{start} to {end} is frozen by a balance-payment decision and cannot be withdrawn.",
            [FieldError("period_start", "period_locked", "frozen by a balance decision")],
        )
    if active and active[0]["period_start"] == start.first_day and len(active) > 1:
        raise Conflict(
            "This is the establishment's first window: withdraw the later months first.",
            [FieldError("period_start", "first_window_in_use", "later months rest on it")],
        )
    revision = await repository.withdraw(
        session,
        finess,
        start.first_day,
        vendor_siren=principal.vendor_siren,
        token_id=principal.token_id,
        request_id=current_request_id(),
    )
    if revision is None:
        raise NotFound(f"No active extract of {finess} for {start} to {end}.")
    await audit.record(
        session,
        principal,
        "extracts.withdraw",
        "measurement",
        f"{finess}/{start}",
        detail={"revision": revision},
    )
    return revision
