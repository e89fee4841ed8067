"""SQL of the pilots' usage: what is stored around a batch, the write, the series, totals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import asyncpg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.access.scopes import Scope, pilots_sql, positional
from app.db import raw_connection
from app.pilots.models import PilotUsage, PilotUsageRevision
from app.pilots.usage.rules import USAGE_COUNTS, StoredUsage, UsageContext
from app.pilots.vocabulary import PILOT_STATUSES, ApplicationStatus
from app.vocabulary import sql_values

_COUNTS = ", ".join(USAGE_COUNTS)
_PILOTS = sql_values(ApplicationStatus, PILOT_STATUSES)

_CONTEXT_SQL = f"""
SELECT b.i,
       e.finess IS NOT NULL AS known,
       coalesce({{covered}}, false) AS covered,
       a.id AS pilot_id, a.status = '{ApplicationStatus.WITHDRAWN}' AS withdrawn,
       u.revision, {", ".join(f"u.{c}" for c in USAGE_COUNTS)}
FROM unnest($1::text[], $2::date[], $3::int[]) AS b(f, m, i)
LEFT JOIN establishment e ON e.finess = b.f
LEFT JOIN pilot_application a
       ON a.finess = b.f AND a.campaign = $4 AND a.status IN ({_PILOTS})
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
    rows: Sequence[tuple[int, date, Sequence[int | None]]],
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
