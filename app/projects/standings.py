"""Each project's standing, kept in `project_standing` so that lists of projects read rows
instead of recomputing the compliance of every project of their scope.

What is kept
    One row per project: what `app.projects.payments.standings` (the one rule,
    `app.projects.balance.compliance`) finds for it: status, whether it qualifies for the
    balance, its establishments and those meeting the five targets, the advance paid, the
    balance due, the last period received, the notification date, each establishment's
    latest period and whether it meets the targets (a vendor's home shows them; what is
    short and by how much stays on the project's page), and the campaign it was computed
    under.

Who marks
    Statement-level triggers (migration 0016) append to `project_standing_stale`, in the
    write's own transaction, the projects whose standing a write may have moved: a latest
    measurement written or withdrawn (through `project_establishment`), a membership added,
    moved or removed, an event recorded, the project row itself (created, or its funding
    changed), an establishment's closing date. That is everything the rule reads: the
    project row, its events and the latest measurement of each of its establishments.
    Freezing a period (`measurement.locked_by_event_id`) moves no figure by itself and always
    comes with the balance decision event, which marks. Ingestion of 40 000 extracts fires
    each trigger once per statement, which appends one row per project touched.

Who refreshes
    A reader (`refresh`, called by every list before it reads) first asks, in one statement,
    whether anything is marked or computed under another campaign; usually nothing is and it
    reads at once. Otherwise it opens a short transaction of its own (the read's session runs
    in autocommit: `Database.readers`) and, holding an advisory lock:

    1. takes the marks: `DELETE … RETURNING` the marked projects, plus the projects whose
       row was computed under another campaign;
    2. runs `payments.standings` for those projects only, and upserts their rows;
    3. commits, which releases the lock.

    Each server process also refreshes in the background (`keep_fresh`, every
    `ESMS_ROLLUP_REFRESH_SECONDS`), so that after a national ingestion (every project
    marked: about a second of work) the first reader seldom waits for it.

Why no write is lost, and nothing is computed twice
    - A write commits its data and its mark together. Under READ COMMITTED the statements of
      step 2 start after step 1 and so see at least every write whose mark step 1 took.
    - The DELETE of step 1 removes exactly the marks it returns: a mark committed after it
      (whatever its sequence number, even one lower than a mark taken: ids are drawn before
      commit) is not seen, stays, and brings a later read to recompute its project. Step 2
      may already see that write's data too: then the project is merely computed again.
    - If the refresh fails, its transaction rolls back: the marks are back, no row moved.
    - Two readers refreshing at once are serialized by the lock, taken before step 1: the
      second waits, then takes only the marks left (none, or those of later writes), so the
      rows are written in the order of the snapshots they were computed from and a slower
      refresh never overwrites a newer row with an older one.

What moves with time, not data
    - The overdue flag (annexe 5 D) depends on the day: the row keeps `overdue_from`, the
      first day on which the project is overdue (`Compliance.overdue_from`, found by the
      rule with the flag), and the flag is `overdue_from <= today` at read time.
    - The targets and delays come from the campaign file: each row keeps the identity of
      the campaign it was computed under (`campaign_key`); a row of another campaign is
      recomputed as if marked.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app import clock
from app.access.principal import Principal
from app.access.scopes import Scope, projects_sql
from app.campaigns import Campaign, current_campaign
from app.db import Database, raw_connection
from app.indicators.rules import RATES
from app.projects.payments import ProjectStanding, standings_of

log = logging.getLogger(__name__)
_ESTABLISHMENT = re.compile(r"\be\.")  # a column of the establishment (alias `e`)
REFRESH_LOCK = 0x50535444  # pg_advisory_xact_lock key of standing refreshes

# Sorts of the lists: a key and the SQL it orders by. Ties keep the projects' order (id).
SORTS = {
    "id": "p.id",
    "reference": 'p.reference COLLATE "C"',
    "status": 's.status COLLATE "C"',
    "establishments": "s.establishments",
    "total_aid": "coalesce(p.total, 0)",
    "balance_due": "s.balance_due",
    "last_period": "s.last_period_end",
}
# Where a missing value goes: after the others in ascending order (a balance not known yet),
# or before them (no period received yet).
_NULLS_LAST = {"balance_due"}


def campaign_key(campaign: Campaign) -> str:
    """What of the campaign a standing depends on: its year, targets and indicative delays."""
    targets = ",".join(f"{code}={campaign.targets[code]}" for code in RATES)
    delays = ",".join(
        f"{case}={months}" for case, months in sorted(campaign.indicative_duration_months.items())
    )
    return f"{campaign.year};{targets};{delays}"


@dataclass(frozen=True)
class StoredStanding:
    """One row of `project_standing`, as the rule found it (pure: no database)."""

    project_id: int
    campaign: str
    status: str
    qualifies_for_balance: bool
    establishments: int
    establishments_meeting_targets: int
    advance_paid: Decimal
    balance_due: Decimal | None
    overdue_from: date | None
    last_period_end: date | None
    notified_on: date | None
    compliance: list[list[Any]]


def stored(standing: ProjectStanding, campaign: Campaign) -> StoredStanding:
    """The row kept for a project's standing (the figures of the ARS monthly report)."""
    result = standing.compliance
    periods = [e.latest_period.end for e in result.establishments if e.latest_period]
    return StoredStanding(
        project_id=standing.project.id,
        campaign=campaign_key(campaign),
        status=result.status.value,
        qualifies_for_balance=result.qualifies_for_balance,
        establishments=len(result.establishments),
        establishments_meeting_targets=sum(1 for e in result.establishments if e.meets_targets),
        advance_paid=sum(
            (e.amount or Decimal(0) for e in standing.events if e.type == "advance_paid"),
            Decimal(0),
        ),
        balance_due=result.balance_due,
        overdue_from=result.overdue_from,
        last_period_end=max(periods) if periods else None,
        notified_on=next((e.date for e in standing.events if e.type == "notified"), None),
        # [FINESS, first day, last day of the latest period (or None), meets the targets]
        compliance=[
            [e.finess, e.latest_period.start, e.latest_period.end, e.meets_targets]
            if e.latest_period
            else [e.finess, None, None, False]
            for e in result.establishments
        ],
    )


# Refresh --------------------------------------------------------------------------------

_DUE_SQL = """
SELECT EXISTS (SELECT FROM project_standing_stale)
    OR EXISTS (SELECT FROM project_standing WHERE campaign <> $1)
"""
_TAKE_SQL = """
WITH taken AS (DELETE FROM project_standing_stale RETURNING project_id)
SELECT project_id FROM taken
UNION
SELECT project_id FROM project_standing WHERE campaign <> $1
"""
_COLUMNS = (
    "project_id",
    "campaign",
    "status",
    "qualifies_for_balance",
    "establishments",
    "establishments_meeting_targets",
    "advance_paid",
    "balance_due",
    "overdue_from",
    "last_period_end",
    "notified_on",
    "compliance",
)
_TYPES = (
    "int",
    "text",
    "text",
    "bool",
    "int",
    "int",
    "numeric",
    "numeric",
    "date",
    "date",
    "date",
    "text",
)
_UPSERT_SQL = f"""
INSERT INTO project_standing AS s ({", ".join(_COLUMNS)})
SELECT {", ".join(f"c{i}::jsonb" if c == "compliance" else f"c{i}" for i, c in enumerate(_COLUMNS))}
FROM unnest({", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(_TYPES))})
     AS u({", ".join(f"c{i}" for i in range(len(_COLUMNS)))})
ON CONFLICT (project_id) DO UPDATE SET
{", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS[1:])}
"""


async def take_marked(raw: asyncpg.Connection, campaign: Campaign) -> list[int]:
    """Step 1 (in the refresh's transaction): wait for any other refresh, then take the marked
    projects and those computed under another campaign."""
    await raw.execute("SELECT pg_advisory_xact_lock($1)", REFRESH_LOCK)
    return [r[0] for r in await raw.fetch(_TAKE_SQL, campaign_key(campaign))]


async def store(
    session: AsyncSession, project_ids: Sequence[int], today: date, campaign: Campaign
) -> None:
    """Step 2: the rule for these projects only, and their rows upserted in one statement."""
    rows = [stored(s, campaign) for s in await standings_of(session, project_ids, today, campaign)]
    if not rows:
        return  # projects deleted meanwhile: their rows went with them
    columns: list[list[Any]] = [[] for _ in _COLUMNS]
    for row in rows:
        for i, name in enumerate(_COLUMNS):
            value = getattr(row, name)
            columns[i].append(orjson.dumps(value).decode() if name == "compliance" else value)
    raw = await raw_connection(session)
    await raw.execute(_UPSERT_SQL, *columns)


async def refresh(session: AsyncSession, today: date, campaign: Campaign | None = None) -> int:
    """Bring the marked standings up to date (see the module docstring); how many projects
    were recomputed. Safe in a read's autocommit session: the writes run in a transaction of
    their own (a savepoint inside a writing session's transaction)."""
    campaign = campaign or current_campaign()
    raw = await raw_connection(session)
    if not await raw.fetchval(_DUE_SQL, campaign_key(campaign)):
        return 0
    async with raw.transaction():
        taken = await take_marked(raw, campaign)
        await store(session, taken, today, campaign)
    return len(taken)


async def keep_fresh(database: Database, every: float) -> None:
    """Refresh the marked standings every `every` seconds until cancelled (each server
    process), so that the first read after a large ingestion seldom pays for it."""
    while True:
        await asyncio.sleep(every)
        try:
            async with database.readers() as session:
                done = await refresh(session, clock.today())
                await session.commit()
        except Exception:  # the database may be down for a while: try again next time
            log.warning("standings refresh failed", exc_info=True)
            continue
        if done:
            log.info("standings refreshed", extra={"projects": done})


# Reads ----------------------------------------------------------------------------------

_READ_COLUMNS = """
p.id AS project_id, p.reference, p.name, p.region_code, p.vendor_siren, p.funding_case,
coalesce(p.total, 0) AS total_aid, p.total IS NOT NULL AS has_total, s.status,
s.qualifies_for_balance, s.establishments, s.establishments_meeting_targets, s.advance_paid,
s.balance_due, coalesce(s.overdue_from <= :today, false) AS overdue, s.last_period_end,
s.notified_on
"""


@dataclass(frozen=True)
class ListQuery:
    """Filters, sort and page of a list of projects (None: no filter, no limit)."""

    status: str | None = None
    funding_case: str | None = None
    search: str | None = None  # in the reference, or the FINESS of one of its establishments
    sort: str = "reference"
    descending: bool = False
    limit: int | None = None
    offset: int = 0


def _list_sql(where: str, query: ListQuery, params: dict[str, Any]) -> tuple[str, str]:
    clauses = [where]
    if query.status is not None:
        clauses.append("s.status = :status")
        params["status"] = query.status
    if query.funding_case is not None:
        clauses.append("p.funding_case = :funding_case")
        params["funding_case"] = query.funding_case
    if query.search:
        clauses.append(
            "(strpos(lower(p.reference), lower(:search)) > 0 OR EXISTS ("
            "SELECT FROM project_establishment h WHERE h.project_id = p.id AND h.finess = :finess))"
        )
        params["search"] = query.search
        params["finess"] = query.search.replace(" ", "")
    body = "FROM project_standing s JOIN project p ON p.id = s.project_id WHERE " + " AND ".join(
        clauses
    )
    direction = "DESC" if query.descending else "ASC"
    nulls_last = (query.sort in _NULLS_LAST) != query.descending
    order = (
        f"{SORTS.get(query.sort, SORTS['reference'])} {direction} "
        f"NULLS {'LAST' if nulls_last else 'FIRST'}, p.id"
    )
    page = ""
    if query.limit is not None:
        page = " LIMIT :limit OFFSET :offset"
        # PostgreSQL's OFFSET is a bigint: any offset past it is past every list too
        params |= {"limit": query.limit, "offset": min(query.offset, 2**62)}
    # how many match, counted in the same pass (read from the first row of the page)
    rows = f"SELECT {_READ_COLUMNS}, count(*) OVER () AS matching {body} ORDER BY {order}{page}"
    return rows, f"SELECT count(*) {body}"


async def _listed(
    session: AsyncSession, where: str, params: dict[str, Any], query: ListQuery, today: date
) -> tuple[list[Any], int]:
    params = params | {"today": today}
    rows_sql, count_sql = _list_sql(where, query, params)
    rows = list((await session.execute(text(rows_sql), params)).mappings())
    if query.limit is None:
        return rows, len(rows)
    if rows:
        return rows, rows[0]["matching"]
    if query.offset == 0:
        return rows, 0
    # past the last page: nothing to read the count from
    return rows, (await session.execute(text(count_sql), params)).scalar_one()


async def in_establishment_scope(
    session: AsyncSession,
    scope: str,
    params: dict[str, Any],
    query: ListQuery,
    today: date,
) -> tuple[list[Any], int]:
    """The standings of the projects one of whose establishments the dashboards' `scope`
    (a predicate over `e`, `pe` and `p`: `app.dashboards.filters.scope_sql`) selects, brought
    up to date first; the page asked for, and how many match."""
    await refresh(session, today)
    # A scope that names no establishment column (the national team's, or a vendor filter)
    # needs no establishment read: a project is in it by its members alone.
    members = "project_establishment pe"
    if _ESTABLISHMENT.search(scope):
        members += " JOIN establishment e ON e.finess = pe.finess"
    where = f"EXISTS (SELECT FROM {members} WHERE pe.project_id = p.id AND {scope})"
    return await _listed(session, where, params, query, today)


async def visible(
    session: AsyncSession,
    principal: Principal,
    query: ListQuery,
    today: date,
    region: str | None = None,
) -> tuple[list[Any], int]:
    """The standings of the projects a principal sees (the projects rule of
    `app.access.scopes`), of one region when asked, brought up to date first."""
    await refresh(session, today)
    scope = Scope.of(principal)
    where = projects_sql(scope, project="p")
    params = dict(scope.params)
    if region is not None:
        where += " AND p.region_code = :region"
        params["region"] = region
    return await _listed(session, where, params, query, today)


@dataclass(frozen=True)
class MonthSpan:
    start: str  # YYYY-MM
    end: str


@dataclass(frozen=True)
class EstablishmentStanding:
    """An establishment of a kept standing: its latest period and whether it meets the five
    targets (what is short, and by how much, is on the project's page)."""

    finess: str
    latest_period: MonthSpan | None
    meets_targets: bool


async def establishments_of(
    session: AsyncSession, project_ids: Sequence[int]
) -> dict[int, list[EstablishmentStanding]]:
    """Each project's establishments as kept (read after `visible`, which refreshes)."""
    rows = await session.execute(
        text("SELECT project_id, compliance FROM project_standing WHERE project_id = ANY(:ids)"),
        {"ids": list(project_ids)},
    )
    return {
        project_id: [
            EstablishmentStanding(
                finess,
                None if start is None else MonthSpan(start[:7], end[:7]),  # dates as stored
                meets,
            )
            for finess, start, end, meets in compliance
        ]
        for project_id, compliance in rows
    }
