"""SQL of pilots: applications in scope, the selection lock and counts, events, usage."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date

import asyncpg
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.access.scopes import Scope, pilot_visible, pilots_sql, positional
from app.db import raw_connection
from app.pilots.models import PilotApplication, PilotEvent, PilotUsage, PilotUsageRevision
from app.pilots.rules import USAGE_COUNTS, SelectedCounts, StoredUsage, UsageContext
from app.referential.models import Establishment

PILOT_STATUSES = ("selected", "withdrawn")
# Namespace of the advisory lock taken by every selection (the campaign year is the key).
_SELECTION_LOCK = 72_630_003


async def establishment(session: AsyncSession, finess: str) -> Establishment | None:
    return await session.get(Establishment, finess)


async def application_of(session: AsyncSession, campaign: str, finess: str) -> int | None:
    found = await session.execute(
        select(PilotApplication.id).where(
            PilotApplication.campaign == campaign, PilotApplication.finess == finess
        )
    )
    return found.scalar_one_or_none()


async def visible_application(
    session: AsyncSession, principal: Principal, application_id: int, *, pilots_only: bool = False
) -> tuple[PilotApplication, Establishment] | None:
    query = (
        select(PilotApplication, Establishment)
        .join(Establishment, Establishment.finess == PilotApplication.finess)
        .where(PilotApplication.id == application_id, pilot_visible(principal))
    )
    if pilots_only:
        query = query.where(PilotApplication.status.in_(PILOT_STATUSES))
    row = (await session.execute(query)).one_or_none()
    return None if row is None else (row[0], row[1])


async def list_applications(
    session: AsyncSession,
    principal: Principal,
    campaign: str,
    *,
    region: str | None = None,
    statuses: Sequence[str] | None = None,
    domain: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[tuple[PilotApplication, Establishment]], int]:
    """Applications of the caller's scope, oldest first, with the total before paging."""
    conditions = [PilotApplication.campaign == campaign, pilot_visible(principal)]
    if region:
        conditions.append(PilotApplication.region_code == region)
    if statuses:
        conditions.append(PilotApplication.status.in_(statuses))
    if domain:
        conditions.append(PilotApplication.domain == domain)
    total = (
        await session.execute(select(func.count()).select_from(PilotApplication).where(*conditions))
    ).scalar_one()
    query = (
        select(PilotApplication, Establishment)
        .join(Establishment, Establishment.finess == PilotApplication.finess)
        .where(*conditions)
        .order_by(PilotApplication.region_code, PilotApplication.id)
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    rows = (await session.execute(query)).all()
    return [(row[0], row[1]) for row in rows], total


async def lock_selection(session: AsyncSession, campaign_year: int) -> None:
    """Serialise the selections of a campaign until the transaction ends.

    Pilots are few (56) and selected by hand, so one lock for the whole country costs nothing
    and keeps the national cap, the regional quotas and the per-EJ limit exact when several
    ARS select at once: the counts read after the lock include every committed selection.
    """
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:namespace, :key)"),
        {"namespace": _SELECTION_LOCK, "key": campaign_year},
    )


async def application_for_update(session: AsyncSession, application_id: int) -> PilotApplication:
    """The application as committed now (read again after the lock), locked for update."""
    found = await session.execute(
        select(PilotApplication)
        .where(PilotApplication.id == application_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return found.scalar_one()


async def selected_counts(
    session: AsyncSession, campaign: str, region: str, legal_entity: str, domain: str
) -> SelectedCounts:
    row = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(PilotApplication.region_code == region),
                func.count().filter(PilotApplication.legal_entity_finess == legal_entity),
                func.count().filter(PilotApplication.domain == domain),
            ).where(PilotApplication.campaign == campaign, PilotApplication.status == "selected")
        )
    ).one()
    return SelectedCounts(national=row[0], regional=row[1], legal_entity=row[2], domain=row[3])


async def events_of(
    session: AsyncSession, application_ids: Sequence[int]
) -> dict[int, list[PilotEvent]]:
    rows = await session.execute(
        select(PilotEvent)
        .where(PilotEvent.application_id.in_(application_ids))
        .order_by(PilotEvent.application_id, PilotEvent.id)
    )
    events: dict[int, list[PilotEvent]] = defaultdict(list)
    for event in rows.scalars():
        events[event.application_id].append(event)
    return events


async def application_counts(
    session: AsyncSession, campaign: str, regions: Sequence[str] | None
) -> dict[str, dict[str, int]]:
    """Applications per region and status, counted in PostgreSQL."""
    query = (
        select(PilotApplication.region_code, PilotApplication.status, func.count())
        .where(PilotApplication.campaign == campaign)
        .group_by(PilotApplication.region_code, PilotApplication.status)
    )
    if regions is not None:
        query = query.where(PilotApplication.region_code.in_(regions))
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for region, status, count in await session.execute(query):
        counts[region][status] = count
    return counts


# -- Usage --------------------------------------------------------------------------------

_COUNTS = ", ".join(USAGE_COUNTS)

_CONTEXT_SQL = f"""
SELECT b.i,
       e.finess IS NOT NULL AS known,
       coalesce({{covered}}, false) AS covered,
       a.id AS pilot_id, a.status = 'withdrawn' AS withdrawn,
       u.revision, {", ".join(f"u.{c}" for c in USAGE_COUNTS)}
FROM unnest($1::text[], $2::date[], $3::int[]) AS b(f, m, i)
LEFT JOIN establishment e ON e.finess = b.f
LEFT JOIN pilot_application a
       ON a.finess = b.f AND a.campaign = $4 AND a.status IN ('selected', 'withdrawn')
LEFT JOIN pilot_usage u ON u.application_id = a.id AND u.month = b.m
"""


async def usage_contexts(
    session: AsyncSession,
    keys: Sequence[tuple[int, str, date]],
    *,
    campaign: str,
    principal: Principal,
) -> dict[int, UsageContext]:
    """For each (row index, finess, month): the establishment, the pilot, what is stored."""
    if not keys:
        return {}
    scope = Scope.of(principal)
    # A pilot's region is its application's; an establishment that is not one, its own.
    covered = pilots_sql(scope, finess="b.f", region="coalesce(a.region_code, e.region_code)")
    sql, scope_args = positional(_CONTEXT_SQL.format(covered=covered), scope, 5)
    conn = await raw_connection(session)
    records = await conn.fetch(
        sql,
        [k[1] for k in keys],
        [k[2] for k in keys],
        [k[0] for k in keys],
        campaign,
        *scope_args,
    )
    return {
        r["i"]: UsageContext(
            known=r["known"],
            covered=bool(r["covered"]),
            pilot_id=r["pilot_id"],
            withdrawn=bool(r["withdrawn"]),
            current=None
            if r["revision"] is None
            else StoredUsage(r["revision"], tuple(r[c] for c in USAGE_COUNTS)),
        )
        for r in records
    }


# One statement: upsert the current month of each pilot, skipping identical re-sends under
# the row lock, and append a revision for each row that changed, so concurrent senders get
# unique consecutive revisions. Rows are locked in key order, so that two batches sharing
# months never deadlock.
_UPSERT = f"""
WITH batch AS (
    SELECT * FROM unnest($1::int[], $2::date[], $3::int[], $4::int[], $5::int[], $6::int[])
        AS b(application_id, month, {_COUNTS})
), upserted AS (
    INSERT INTO pilot_usage AS u (application_id, month, revision, vendor_siren, sender_role,
                                  token_id, received_at, {_COUNTS})
    SELECT b.application_id, b.month, 1, $7, $8, $9, now(), {_COUNTS} FROM batch b
    ORDER BY b.application_id, b.month
    ON CONFLICT (application_id, month) DO UPDATE SET
        revision = u.revision + 1, vendor_siren = EXCLUDED.vendor_siren,
        sender_role = EXCLUDED.sender_role, token_id = EXCLUDED.token_id,
        received_at = EXCLUDED.received_at,
        {", ".join(f"{c} = EXCLUDED.{c}" for c in USAGE_COUNTS)}
    WHERE ({", ".join(f"u.{c}" for c in USAGE_COUNTS)})
          IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in USAGE_COUNTS)})
    RETURNING u.*
)
INSERT INTO pilot_usage_revision (application_id, month, revision, vendor_siren, sender_role,
                                  token_id, request_id, received_at, {_COUNTS})
SELECT application_id, month, revision, vendor_siren, sender_role, token_id, $10, received_at,
       {_COUNTS}
FROM upserted
RETURNING application_id, month, revision
"""


async def write_usage(
    session: AsyncSession,
    rows: Sequence[tuple[int, date, Sequence[int]]],
    *,
    vendor_siren: str | None,
    sender_role: str,
    token_id: int | None,
    request_id: str | None,
) -> dict[tuple[int, date], int]:
    """Write (pilot id, month, counts) rows in one round trip; the revision of each change."""
    if not rows:
        return {}
    conn = await raw_connection(session)
    columns = list(zip(*(counts for _, _, counts in rows), strict=True))
    written = await conn.fetch(
        _UPSERT,
        [r[0] for r in rows],
        [r[1] for r in rows],
        *[list(column) for column in columns],
        vendor_siren,
        sender_role,
        token_id,
        request_id,
    )
    return {(r["application_id"], r["month"]): r["revision"] for r in written}


async def current_revisions(
    session: AsyncSession, keys: Sequence[tuple[int, date]]
) -> dict[tuple[int, date], int]:
    conn = await raw_connection(session)
    records = await conn.fetch(
        """SELECT u.application_id, u.month, u.revision
           FROM unnest($1::int[], $2::date[]) AS b(a, m)
           JOIN pilot_usage u ON u.application_id = b.a AND u.month = b.m""",
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    return {(r["application_id"], r["month"]): r["revision"] for r in records}


async def usage_series(
    session: AsyncSession, application_id: int, start: date | None, end: date | None
) -> list[PilotUsage]:
    query = select(PilotUsage).where(PilotUsage.application_id == application_id)
    if start is not None:
        query = query.where(PilotUsage.month >= start)
    if end is not None:
        query = query.where(PilotUsage.month <= end)
    return list((await session.execute(query.order_by(PilotUsage.month))).scalars())


async def usage_revisions(
    session: AsyncSession, application_id: int, start: date | None, end: date | None
) -> list[PilotUsageRevision]:
    query = select(PilotUsageRevision).where(PilotUsageRevision.application_id == application_id)
    if start is not None:
        query = query.where(PilotUsageRevision.month >= start)
    if end is not None:
        query = query.where(PilotUsageRevision.month <= end)
    query = query.order_by(PilotUsageRevision.month, PilotUsageRevision.revision)
    return list((await session.execute(query)).scalars())


async def regional_usage(
    session: AsyncSession,
    campaign: str,
    region: str | None,
    start: date | None,
    end: date | None,
) -> list[asyncpg.Record]:
    """Monthly totals of the pilots' usage per region, summed in PostgreSQL."""
    conn = await raw_connection(session)
    return await conn.fetch(
        f"""SELECT a.region_code, u.month, count(*) AS pilots_reporting,
                   {", ".join(f"sum(u.{c})::bigint AS {c}" for c in USAGE_COUNTS)}
            FROM pilot_usage u JOIN pilot_application a ON a.id = u.application_id
            WHERE a.campaign = $1 AND ($2::text IS NULL OR a.region_code = $2)
              AND ($3::date IS NULL OR u.month >= $3) AND ($4::date IS NULL OR u.month <= $4)
            GROUP BY a.region_code, u.month
            ORDER BY a.region_code, u.month""",
        campaign,
        region,
        start,
        end,
    )
