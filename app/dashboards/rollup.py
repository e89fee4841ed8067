"""The dashboards' rollups: the national, region and département scopes read one row per
scope (and month) instead of aggregating every establishment and measurement.

- `monthly_rollup`: per scope and month, who reported, how many meet each target and all of
  them, and the quartiles of each rate. Triggers (migration 0006) append the months a write
  touches to `rollup_stale`, in the write's own transaction; before a read those months, and
  only them, are recomputed set-based.
- `summary_rollup` and `status_rollup`: per scope, the current counts and the projects and
  funding by balance status. Any write to their sources appends to `summary_stale`; they are
  recomputed whole (one pass for every scope) before the next read.

A read never sees figures older than the data: each server process refreshes in the
background (`keep_fresh`, every few seconds), and until it has, a reader aggregates on the
fly what is stale in its own scope: the stale months (a month of a region is a few
milliseconds), or its summary (about 25 ms for a region of 5 000 establishments). Only a
reader of the national summary, or of every region's at once, refreshes the summaries first
(`refresh_stale` with `months=False`): one pass for every scope (about 85 ms at 40 000
establishments) costs less than the national aggregate on the fly (about 110 ms), and
readers arriving meanwhile wait for that pass instead of repeating it.

Refreshes are serialized by an advisory lock and run in READ COMMITTED: the marks are taken
(deleted) by a first statement and the figures recomputed by later ones, which see at least
every write whose mark was taken; marks committed in between stay for the next refresh.

Scopes: `N` national, `R:84` the establishments of region 84, `A:84` what an ARS or GRADeS
of region 84 sees (its establishments and those of its projects), `D:69` a département.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.campaigns import current_campaign
from app.clock import Month
from app.dashboards.repository import (
    EXPECTED,
    all_met_sql,
    fetch_all,
    met_sql,
    project_figures_sql,
    quartiles_sql,
    target_params,
)
from app.db import Database
from app.indicators.rules import RATES

log = logging.getLogger("esms.rollup")

REFRESH_LOCK = 0x45534D53  # pg_advisory_xact_lock key of rollup refreshes
NATIONAL_SCOPE = "N"


@dataclass(frozen=True)
class Basis:
    """What the figures depend on besides the data: the campaign's targets and engagement
    deadline, and the last completed month."""

    targets: dict[str, Decimal]
    deadline: date
    last: date

    @property
    def key(self) -> str:
        goals = ",".join(f"{code}={self.targets[code]}" for code in RATES)
        return f"{goals};deadline={self.deadline}"

    def params(self) -> dict[str, Any]:
        return target_params(self.targets) | {
            "targets": self.key,
            "deadline": self.deadline,
            "last": self.last,
        }


def current_basis() -> Basis:
    campaign = current_campaign()
    return Basis(
        dict(campaign.targets), campaign.engagement_deadline, Month.current().plus(-1).first_day
    )


def _scopes(region: str, department: str, project_region: str) -> str:
    """The scopes an establishment counts in: national, its region, its département, its
    region's ARS and, when its project belongs to another region, that region's ARS."""
    return f"""CROSS JOIN LATERAL (VALUES ('N'), ('R:' || {region}), ('D:' || {department}),
    ('A:' || {region}),
    (CASE WHEN {project_region} <> {region} THEN 'A:' || {project_region} END)) AS s (scope)"""


_GROUP_SCOPES = _scopes("g.region_code", "g.department", "g.project_region")

_MONTHLY_COLUMNS = ", ".join(
    ["reporting", "all_met"] + [f"{c}_met" for c in RATES] + [f"{c}_q" for c in RATES]
)

_REFRESH_MONTHS = f"""
INSERT INTO monthly_rollup (scope, month, targets, {_MONTHLY_COLUMNS})
SELECT s.scope, m.period_end, :targets, count(*),
       count(*) FILTER (WHERE {all_met_sql("m")}),
       {", ".join(f"count(*) FILTER (WHERE {met_sql('m', c)})" for c in RATES)},
       {", ".join(quartiles_sql("m", c) for c in RATES)}
FROM measurement m JOIN establishment e ON e.finess = m.finess
LEFT JOIN project_establishment pe ON pe.finess = m.finess
LEFT JOIN project p ON p.id = pe.project_id
{_scopes("e.region_code", "e.department", "p.region_code")}
WHERE NOT m.withdrawn AND m.period_end = ANY(:months) AND s.scope IS NOT NULL
GROUP BY s.scope, m.period_end
"""

_COUNTS = (
    "establishments",
    "in_projects",
    "reporting",
    "reported_last_month",
    "meeting_all_targets",
)

# Establishments are first grouped by what decides their scopes: counts add up.
_REFRESH_COUNTS = f"""
WITH g AS (
    SELECT e.region_code, e.department, p.region_code AS project_region,
           count(*) AS establishments, count(pe.project_id) AS in_projects,
           count(l.finess) AS reporting,
           count(l.finess) FILTER (WHERE l.period_end = :last) AS reported_last_month,
           count(l.finess) FILTER (WHERE {all_met_sql("l")}) AS meeting_all_targets
    FROM establishment e
    LEFT JOIN project_establishment pe ON pe.finess = e.finess
    LEFT JOIN project p ON p.id = pe.project_id
    LEFT JOIN latest_measurement l ON l.finess = e.finess
    WHERE {EXPECTED}
    GROUP BY 1, 2, 3
)
INSERT INTO summary_rollup (scope, targets, last_month, {", ".join(_COUNTS)})
SELECT s.scope, :targets, :last, {", ".join(f"sum({c})" for c in _COUNTS)}
FROM g {_GROUP_SCOPES}
WHERE s.scope IS NOT NULL
GROUP BY s.scope
"""

_MONEY = ("committed", "advanced", "payable", "to_recover", "balance_paid")

# Each project counts once in every scope one of its establishments counts in.
_REFRESH_STATUSES = f"""
INSERT INTO status_rollup (scope, status, projects, {", ".join(_MONEY)})
{
    project_figures_sql(
        f'''SELECT DISTINCT g.id, g.total, s.scope FROM (
            SELECT DISTINCT p.id, p.total, e.region_code, e.department,
                   p.region_code AS project_region
            FROM project p JOIN project_establishment pe ON pe.project_id = p.id
            JOIN establishment e ON e.finess = pe.finess
        ) AS g {_GROUP_SCOPES}
        WHERE s.scope IS NOT NULL''',
        by_scope=True,
    )
}
"""


async def _lock(session: AsyncSession) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": REFRESH_LOCK})
    # A national month sorts about 200 000 rates per quartile: in memory, not on disk.
    await session.execute(text("SET LOCAL work_mem = '64MB'"))


# Every scope of a month is written at once: the national rows tell the targets they used.
_OTHER_TARGETS = "EXISTS (SELECT 1 FROM monthly_rollup WHERE scope = 'N' AND targets <> :targets)"


@dataclass(frozen=True)
class Marks:
    """The marks waiting in `rollup_stale` and `summary_stale` (lowest and highest id), and
    whether a rollup must be rebuilt whatever the marks: the targets changed, the month
    turned, or nothing was computed yet."""

    months_low: int | None
    months_high: int | None
    months_rebuild: bool
    summary_low: int | None
    summary_high: int | None
    summary_rebuild: bool

    @property
    def fresh(self) -> bool:
        return (
            self.months_high is None
            and self.summary_high is None
            and not (self.months_rebuild or self.summary_rebuild)
        )

    def due(self, seen: Marks) -> tuple[bool, bool]:
        """Which rollups still miss a write that had been marked when `seen` was read."""

        def missing(low: int | None, high: int | None) -> bool:
            return low is not None and high is not None and low <= high

        return (
            self.months_rebuild or missing(self.months_low, seen.months_high),
            self.summary_rebuild or missing(self.summary_low, seen.summary_high),
        )


async def _marks(session: AsyncSession, basis: Basis) -> Marks:
    # The national summary row is always written: without it, nothing was computed yet.
    row = (
        await session.execute(
            text(
                f"""SELECT (SELECT min(id) FROM rollup_stale) AS months_low,
                   (SELECT max(id) FROM rollup_stale) AS months_high,
                   {_OTHER_TARGETS} AS months_rebuild,
                   (SELECT min(id) FROM summary_stale) AS summary_low,
                   (SELECT max(id) FROM summary_stale) AS summary_high,
                   NOT EXISTS (SELECT 1 FROM summary_rollup WHERE scope = 'N'
                               AND targets = :targets AND last_month = :last)
                       AS summary_rebuild"""
            ),
            {"targets": basis.key, "last": basis.last},
        )
    ).one()
    return Marks(**row._mapping)


async def _refresh_months(session: AsyncSession, basis: Basis, rebuild: bool) -> list[date]:
    """Recompute the stale months (every month on a `rebuild`); those months."""
    marked = await session.execute(text("DELETE FROM rollup_stale RETURNING month"))
    months = {row.month for row in marked}
    if rebuild:
        await session.execute(text("DELETE FROM monthly_rollup"))
        every = await session.execute(text("SELECT DISTINCT period_end FROM measurement"))
        months |= {row.period_end for row in every}
    ordered = sorted(months)
    if ordered:
        await session.execute(
            text("DELETE FROM monthly_rollup WHERE month = ANY(:months)"), {"months": ordered}
        )
        await session.execute(text(_REFRESH_MONTHS), basis.params() | {"months": ordered})
    return ordered


async def _refresh_summary(session: AsyncSession, basis: Basis) -> None:
    """Recompute the current figures of every scope (the last step of a refresh)."""
    # Every project's establishments are read whole: hash joins. The planner otherwise looks
    # each establishment's latest measurement up by its index, 36 000 times at national
    # scale, which costs twice as much (80 ms against 48 for the statuses).
    await session.execute(text("SET LOCAL enable_nestloop = off"))
    await session.execute(text("DELETE FROM summary_stale"))
    await session.execute(text("DELETE FROM summary_rollup"))
    await session.execute(text("DELETE FROM status_rollup"))
    params = basis.params()
    await session.execute(text(_REFRESH_COUNTS), params)
    await session.execute(
        text(
            f"INSERT INTO summary_rollup (scope, targets, last_month, {', '.join(_COUNTS)}) "
            "VALUES ('N', :targets, :last, 0, 0, 0, 0, 0) ON CONFLICT (scope) DO NOTHING"
        ),
        params,
    )
    await session.execute(text(_REFRESH_STATUSES), params)


async def monthly(
    session: AsyncSession, scope: str, basis: Basis, start: date, end: date
) -> tuple[list[Any], list[date] | None]:
    """The rows of `repository.monthly` for a rollup scope from the months that are up to
    date, and the months of the range still waiting for a refresh (None: every month, the
    targets changed), which the caller aggregates on the fly."""
    bounds = {"start": start, "end": end}
    state = (
        await session.execute(
            text(
                f"""SELECT {_OTHER_TARGETS} AS rebuild,
                   ARRAY(SELECT DISTINCT month FROM rollup_stale
                         WHERE month BETWEEN :start AND :end ORDER BY month) AS stale"""
            ),
            bounds | {"targets": basis.key},
        )
    ).one()
    if state.rebuild:
        return [], None
    rows = await fetch_all(
        session,
        f"""SELECT month, {_MONTHLY_COLUMNS} FROM monthly_rollup
        WHERE scope = :scope AND month BETWEEN :start AND :end
          AND NOT month = ANY(:stale)
        ORDER BY month""",
        bounds | {"scope": scope, "stale": state.stale},
    )
    return rows, list(state.stale)


async def summary(
    session: AsyncSession, scope: str, basis: Basis
) -> tuple[dict[str, Any], list[Any]]:
    """What `repository.summary` and `repository.project_figures` answer for a rollup
    scope (as of the last refresh): the counts, and the rows by balance status."""
    return (await summaries(session, [scope], basis))[scope]


async def summaries(
    session: AsyncSession, scopes: Sequence[str], basis: Basis
) -> dict[str, tuple[dict[str, Any], list[Any]]]:
    """`summary` of each of `scopes`, in one query per rollup."""
    wanted = {"scopes": list(scopes)}
    counts = await fetch_all(
        session,
        f"SELECT scope, {', '.join(_COUNTS)} FROM summary_rollup WHERE scope = ANY(:scopes)",
        wanted,
    )
    statuses = await fetch_all(
        session,
        f"""SELECT scope, status, projects, {", ".join(_MONEY)} FROM status_rollup
        WHERE scope = ANY(:scopes)""",
        wanted,
    )
    found = {row["scope"]: {c: row[c] for c in _COUNTS} for row in counts}
    by_scope: dict[str, list[Any]] = {scope: [] for scope in scopes}
    for row in statuses:
        by_scope[row["scope"]].append({k: v for k, v in row.items() if k != "scope"})
    result = {}
    for scope in scopes:
        figures = found.get(scope, dict.fromkeys(_COUNTS, 0))
        figures["projects"] = sum(row["projects"] for row in by_scope[scope])
        result[scope] = (figures, by_scope[scope])
    return result


async def summary_fresh(session: AsyncSession, basis: Basis) -> bool:
    """Whether the summary rollups hold every write (else the caller aggregates on the fly)."""
    marks = await _marks(session, basis)
    return marks.summary_high is None and not marks.summary_rebuild


async def refresh_stale(
    database: Database, basis: Basis | None = None, *, months: bool = True
) -> list[str]:
    """Bring the rollups (the summaries only, without `months`) up to date with every write
    committed before the call, in a transaction of its own; what was recomputed.

    Each server process calls it every few seconds, and `esms-usage demo` once. A caller
    that arrives while another refresh runs waits for it, then recomputes only if it missed
    one of the writes the caller had seen marked: several processes cost one recomputation.
    """
    basis = basis or current_basis()
    done: list[str] = []
    async with database.sessions() as session, session.begin():
        seen = await _marks(session, basis)
        if seen.fresh:
            return done
        await _lock(session)
        now = await _marks(session, basis)
        months_due, summary_due = now.due(seen)
        if months_due and months:
            refreshed = await _refresh_months(session, basis, now.months_rebuild)
            done += [str(Month.of(m)) for m in refreshed]
        if summary_due:
            await _refresh_summary(session, basis)
            done.append("summary")
    return done


async def keep_fresh(database: Database, every: float) -> None:
    """Refresh the stale rollups every `every` seconds until cancelled."""
    while True:
        await asyncio.sleep(every)
        try:
            done = await refresh_stale(database)
        except Exception:  # the database may be down for a while: try again next time
            log.warning("rollup refresh failed", exc_info=True)
            continue
        if done:
            log.info("rollups refreshed", extra={"refreshed": done})
