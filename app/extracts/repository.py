"""SQL of extracts: the series around a batch in one query, a batch written in two."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from typing import Any

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.access.scopes import Scope, establishments_sql, positional
from app.batches import collector_paused
from app.clock import Month
from app.db import copy_records, raw_connection, read_connection
from app.extracts.models import COUNT_FIELDS
from app.extracts.rules import Context, Previous, Stored

_COUNTS = ", ".join(COUNT_FIELDS)


# For each row: is the establishment in the sender's scope (for a vendor, one of its
# projects: app.access.scopes) and in the referential (project_establishment refers to
# establishment, so a covered one is known and the referential is only probed for the
# others), its first window, the stored period with the
# same start, and the latest active period before the row's.
#
# latest_measurement holds each establishment's newest active period and the bounds of its
# series (kept by the writes below and by withdrawals). A row starting after every stored
# period (nearly every row of a monthly push) is answered from it alone: its first window,
# no stored period with that start, and the latest period as the previous one. The searches
# of measurement run only for the other rows (revisions of the past, gaps filled, an
# establishment with nothing active); their conditions on `l` are checked before any search.
_CONTEXT_SQL = f"""
SELECT b.i,
       c.covered OR EXISTS (SELECT FROM establishment e WHERE e.finess = b.f) AS known,
       c.covered,
       coalesce(l.first_start, fw.period_start) AS fw_start,
       coalesce(l.first_end, fw.period_end) AS fw_end,
       cur.period_end AS cur_end, cur.revision AS cur_revision,
       cur.withdrawn AS cur_withdrawn, cur.locked_by_event_id IS NOT NULL AS cur_locked,
       {", ".join(f"cur.{c} AS cur_{c}" for c in COUNT_FIELDS)},
       CASE WHEN l.period_start < b.s THEN l.period_start ELSE prev.period_start END
           AS prev_start,
       CASE WHEN l.period_start < b.s THEN l.period_end ELSE prev.period_end END AS prev_end,
       CASE WHEN l.period_start < b.s THEN l.accompanied_persons
            ELSE prev.accompanied_persons END AS prev_accompanied_persons
FROM unnest(string_to_array($1, ','), string_to_array($2, ',')::date[]) WITH ORDINALITY
     AS b(f, s, i)
CROSS JOIN LATERAL (SELECT {{covered}} AS covered) c
LEFT JOIN LATERAL (  -- one probe per row, cheaper than hashing the whole table per batch
    SELECT * FROM latest_measurement l WHERE l.finess = b.f LIMIT 1
) l ON true
LEFT JOIN LATERAL (
    SELECT period_start, period_end FROM measurement m
    WHERE l.finess IS NULL AND m.finess = b.f AND NOT m.withdrawn
    ORDER BY m.period_start LIMIT 1
) fw ON true
LEFT JOIN LATERAL (
    SELECT * FROM measurement m
    WHERE (l.finess IS NULL OR b.s <= l.newest_start) AND m.finess = b.f AND m.period_start = b.s
    LIMIT 1
) cur ON true
LEFT JOIN LATERAL (
    SELECT period_start, period_end, accompanied_persons FROM measurement m
    WHERE (l.finess IS NULL OR l.period_start >= b.s)
      AND m.finess = b.f AND m.period_start < b.s AND NOT m.withdrawn
    ORDER BY m.period_start DESC LIMIT 1
) prev ON true
"""


@lru_cache(maxsize=256)
def _context_sql(scope: Scope) -> tuple[str, list[Any]]:
    covered = establishments_sql(
        scope,
        finess="b.f",
        region="(SELECT e.region_code FROM establishment e WHERE e.finess = b.f)",
    )
    return positional(_CONTEXT_SQL.format(covered=covered), scope, 3)


async def load_contexts(
    session: AsyncSession,
    indexes: Sequence[int],
    finesses: Sequence[str],
    starts: Sequence[date],
    principal: Principal,
) -> dict[int, Context]:
    """For each row (its index, finess and period_start): the referential and the series
    around it."""
    if not indexes:
        return {}
    sql, scope_args = _context_sql(Scope.of(principal))
    # Two texts rather than arrays: asyncpg checks and encodes array elements one by one,
    # which costs more than the whole query per row. Valid FINESS numbers hold no comma.
    # A read: the write, if any, compares with what is stored when it runs.
    async with read_connection(session) as conn:
        records = await conn.fetch(
            sql, ",".join(finesses), ",".join(map(date.isoformat, starts)), *scope_args
        )
    with collector_paused():
        return _contexts(records, indexes, starts)


_CURRENT_COUNTS = tuple(f"cur_{c}" for c in COUNT_FIELDS)


def _contexts(
    records: list[asyncpg.Record], indexes: Sequence[int], starts: Sequence[date]
) -> dict[int, Context]:
    months: dict[date, Month] = {}
    windows: dict[tuple[date, date], tuple[Month, Month]] = {}

    def month(day: date) -> Month:
        found = months.get(day)
        if found is None:
            found = months[day] = Month.of(day)
        return found

    contexts: dict[int, Context] = {}
    for r in records:
        position = r["i"] - 1  # WITH ORDINALITY counts from 1
        fw_start, fw_end, cur_end = r["fw_start"], r["fw_end"], r["cur_end"]
        first = None
        if fw_start is not None:
            first = windows.get((fw_start, fw_end))
            if first is None:
                first = windows[(fw_start, fw_end)] = (month(fw_start), month(fw_end))
        current = None
        if cur_end is not None:
            counts = tuple(r[name] for name in _CURRENT_COUNTS)
            current = Stored(
                month(starts[position]),
                month(cur_end),
                r["cur_revision"],
                r["cur_withdrawn"],
                r["cur_locked"],
                counts,
                r["cur_accompanied_persons"],
            )
        previous = None
        if r["prev_start"] is not None:
            previous = Previous(
                month(r["prev_start"]), month(r["prev_end"]), r["prev_accompanied_persons"]
            )
        contexts[indexes[position]] = Context(r["known"], r["covered"], first, current, previous)
    return contexts


# Warnings travel as JSON text: the jsonb codec the SQLAlchemy dialect sets up on every
# connection is a Python function, called once per row by the COPY; text is encoded in C.
_STAGING = f"""
CREATE TEMP TABLE IF NOT EXISTS extract_staging (
    finess varchar(9), period_start date, period_end date, first_window boolean,
    expected integer, warnings text, {", ".join(f"{c} integer" for c in COUNT_FIELDS)}
) ON COMMIT DELETE ROWS;
DELETE FROM extract_staging
"""
STAGING_COLUMNS = (
    "finess",
    "period_start",
    "period_end",
    "first_window",
    "expected",
    "warnings",
    *COUNT_FIELDS,
)
_EXPECTED = STAGING_COLUMNS.index("expected")

# One statement per batch: write the current measurements (each revision it replaces moves to
# extract_revision, by the trigger of migration 0009) and move each establishment's latest
# pointer and bounds.
#
# Each staged row carries the revision it is expected to get: 1 when no stored period had its
# start as the batch was read, the stored revision + 1 otherwise. When every row is expected
# new (a monthly push), they are plainly inserted (_INSERT_NEW); otherwise an upsert
# (_UPSERT) filters identical re-sends and frozen periods under the row lock, so two
# concurrent senders still get unique, consecutive revision numbers. A new row that another
# sender has stored since it was read makes the plain insert fail (unique key): the batch is
# then written by the upsert (see write_batch). Only the rows whose revision is not the
# expected one come back (NULL for a row not written): nearly always none.
# Rows are locked in key order: two batches sharing periods in different orders would
# otherwise deadlock (and one of them fail).
#
# The latest pointer only moves forward (a batch revising the past leaves it). A new one
# takes the batch's oldest written period as first window (the rules make it one), and its
# newest start is raised to the newest period stored, withdrawn ones included, by a trigger
# of migration 0010 (an establishment whose periods were all withdrawn has no pointer, and
# may still hold later withdrawn periods). The bounds then only widen: while an
# establishment has an active period nothing before its first window is accepted, and a
# period after every stored one always moves the pointer.
_MEASUREMENT_WRITE = f"""
    INSERT INTO measurement AS m (finess, period_start, period_end, revision, withdrawn,
                                  first_window, vendor_siren, token_id, request_id,
                                  received_at, warnings, {_COUNTS})
    SELECT s.finess, s.period_start, s.period_end, 1, false, s.first_window, $1, $2, $3, now(),
           s.warnings::jsonb, {", ".join(f"s.{c}" for c in COUNT_FIELDS)}
    FROM extract_staging s
    ORDER BY s.finess, s.period_start"""
_ON_CONFLICT = f"""
    ON CONFLICT (finess, period_start) DO UPDATE SET
        revision = m.revision + 1, withdrawn = false, period_end = EXCLUDED.period_end,
        first_window = EXCLUDED.first_window, vendor_siren = EXCLUDED.vendor_siren,
        token_id = EXCLUDED.token_id, request_id = EXCLUDED.request_id,
        received_at = EXCLUDED.received_at, warnings = EXCLUDED.warnings,
        {", ".join(f"{c} = EXCLUDED.{c}" for c in COUNT_FIELDS)}
    WHERE m.locked_by_event_id IS NULL
      AND (m.withdrawn OR ({", ".join(f"m.{c}" for c in COUNT_FIELDS)})
           IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in COUNT_FIELDS)}))"""


def _write(on_conflict: str) -> str:
    return f"""
WITH upserted AS ({_MEASUREMENT_WRITE}{on_conflict}
    RETURNING m.finess, m.period_start, m.period_end, m.revision, m.first_window,
              m.received_at, {", ".join(f"m.{c}" for c in COUNT_FIELDS)}
), latest AS (
    INSERT INTO latest_measurement AS l (finess, period_start, period_end, revision,
                                         first_window, received_at, {_COUNTS},
                                         first_start, first_end, newest_start)
    SELECT DISTINCT ON (u.finess) u.finess, u.period_start, u.period_end, u.revision,
           u.first_window, u.received_at, {", ".join(f"u.{c}" for c in COUNT_FIELDS)},
           min(u.period_start) OVER w, min(u.period_end) OVER w,
           u.period_start
    FROM upserted u
    WINDOW w AS (PARTITION BY u.finess)
    ORDER BY u.finess, u.period_start DESC
    ON CONFLICT (finess) DO UPDATE SET
        period_start = EXCLUDED.period_start, period_end = EXCLUDED.period_end,
        revision = EXCLUDED.revision, first_window = EXCLUDED.first_window,
        received_at = EXCLUDED.received_at,
        {", ".join(f"{c} = EXCLUDED.{c}" for c in COUNT_FIELDS)},
        first_start = least(l.first_start, EXCLUDED.first_start),
        first_end = CASE WHEN EXCLUDED.first_start < l.first_start THEN EXCLUDED.first_end
                         ELSE l.first_end END,
        newest_start = greatest(l.newest_start, EXCLUDED.newest_start)
    WHERE l.period_start <= EXCLUDED.period_start
)
SELECT s.finess, s.period_start, u.revision
FROM extract_staging s
LEFT JOIN upserted u ON u.finess = s.finess AND u.period_start = s.period_start
WHERE u.revision IS DISTINCT FROM s.expected
"""


_INSERT_NEW = _write("")
_UPSERT = _write(_ON_CONFLICT)


async def write_batch(
    session: AsyncSession,
    records: list[tuple[Any, ...]],
    *,
    vendor_siren: str | None,
    token_id: int | None,
    request_id: str | None,
) -> dict[tuple[str, date], int]:
    """COPY the accepted rows into a staging table, then one set-based write.

    Returns the rows whose outcome is not the one expected, (finess, period_start) ->
    the revision written, or None when the row was not written (another sender stored the
    same counts meanwhile, or froze the period).
    """
    if not records:
        return {}
    conn = await raw_connection(session)
    # ON COMMIT clears the staging table, but a savepoint (tests, nested work) does not
    # commit: _STAGING empties it too.
    await conn.execute(_STAGING)
    await copy_records(conn, "extract_staging", records, STAGING_COLUMNS)
    all_new = all(record[_EXPECTED] == 1 for record in records)
    await conn.execute("SAVEPOINT extract_write")
    try:
        written = await conn.fetch(
            _INSERT_NEW if all_new else _UPSERT, vendor_siren, token_id, request_id
        )
    except asyncpg.UniqueViolationError:
        if not all_new:
            raise
        # A period read as new was stored meanwhile by another sender: write every row
        # through the upsert, which compares with what is stored now.
        await conn.execute("ROLLBACK TO SAVEPOINT extract_write")
        written = await conn.fetch(_UPSERT, vendor_siren, token_id, request_id)
    await conn.execute("RELEASE SAVEPOINT extract_write")
    return {(r[0], r[1]): r[2] for r in written}


def staging_record(
    finess: str,
    start: date,
    end: date,
    first_window: bool,
    expected: int,
    warnings: list[dict[str, str]] | None,
    counts: Sequence[int | None],
) -> tuple[Any, ...]:
    """A staging row; `expected` is the revision it should get (see _UPSERT)."""
    text = orjson.dumps(warnings).decode() if warnings else "[]"
    return (finess, start, end, first_window, expected, text, *counts)


async def current_rows(
    session: AsyncSession, keys: Sequence[tuple[str, date]]
) -> dict[tuple[str, date], asyncpg.Record]:
    conn = await raw_connection(session)
    records = await conn.fetch(
        f"""SELECT m.finess, m.period_start, m.revision, m.withdrawn,
                   m.locked_by_event_id IS NOT NULL AS locked, {_COUNTS}
            FROM unnest($1::text[], $2::date[]) AS b(f, s)
            JOIN measurement m ON m.finess = b.f AND m.period_start = b.s""",
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    return {(r["finess"], r["period_start"]): r for r in records}


async def withdraw(
    session: AsyncSession,
    finess: str,
    period_start: date,
    *,
    vendor_siren: str | None,
    token_id: int | None,
    request_id: str | None,
) -> int | None:
    """Record a withdrawal as a new revision; None when there is nothing active to withdraw."""
    conn = await raw_connection(session)
    # The withdrawn period keeps its place with no counts; the revision it replaces moves
    # to extract_revision (trigger of migration 0009).
    row = await conn.fetchrow(
        f"""
        UPDATE measurement SET revision = revision + 1, withdrawn = true, vendor_siren = $3,
               token_id = $4, request_id = $5, received_at = now(), warnings = '[]',
               {", ".join(f"{c} = NULL" for c in COUNT_FIELDS)}
        WHERE finess = $1 AND period_start = $2 AND NOT withdrawn
          AND locked_by_event_id IS NULL
        RETURNING revision
        """,
        finess,
        period_start,
        vendor_siren,
        token_id,
        request_id,
    )
    if row is None:
        return None
    await refresh_latest(conn, finess)
    return row["revision"]


async def refresh_latest(conn: asyncpg.Connection, finess: str) -> None:
    """Point latest_measurement back at the newest active period (after a withdrawal)."""
    await conn.execute("DELETE FROM latest_measurement WHERE finess = $1", finess)
    await conn.execute(_LATEST_FROM_MEASUREMENT.format(where="WHERE finess = $1"), finess)


async def rebuild_latest(conn: asyncpg.Connection) -> None:
    """Derive the whole of latest_measurement from measurement (bulk loads)."""
    await conn.execute("DELETE FROM latest_measurement")
    await conn.execute(_LATEST_FROM_MEASUREMENT.format(where=""))


# Each establishment's newest active period and the bounds of its series (none when nothing
# is active), from measurement.
_LATEST_FROM_MEASUREMENT = f"""
INSERT INTO latest_measurement (finess, period_start, period_end, revision, first_window,
                                received_at, {_COUNTS}, first_start, first_end, newest_start)
SELECT m.finess, m.period_start, m.period_end, m.revision, m.first_window, m.received_at,
       {", ".join(f"m.{c}" for c in COUNT_FIELDS)}, f.period_start, f.period_end, s.newest_start
FROM (
    SELECT finess,
           min(period_start) FILTER (WHERE NOT withdrawn) AS first_start,
           max(period_start) FILTER (WHERE NOT withdrawn) AS latest_start,
           max(period_start) AS newest_start
    FROM measurement {{where}} GROUP BY finess
) s
JOIN measurement m ON m.finess = s.finess AND m.period_start = s.latest_start
JOIN measurement f ON f.finess = s.finess AND f.period_start = s.first_start
"""


async def series_state(session: AsyncSession, finess: str) -> list[asyncpg.Record]:
    conn = await raw_connection(session)
    return await conn.fetch(
        """SELECT period_start, period_end, withdrawn, locked_by_event_id IS NOT NULL AS locked
           FROM measurement WHERE finess = $1 ORDER BY period_start""",
        finess,
    )
