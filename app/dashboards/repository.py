"""The SQL of the dashboards: every aggregate is computed in PostgreSQL.

Only the current revision of each period is read (`measurement`), and the latest period of
each establishment comes from `latest_measurement`, so the cost does not grow with the number
of revisions stored. Targets are compared exactly, in integers: x * 100 >= target * y.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.indicators.rules import RATES
from app.projects.vocabulary import BalanceStatus

# The establishments expected to report the last completed month (`:last`, its first day): a
# closed one counts until the month it closed in, then drops out of counts and completeness.
EXPECTED = "(e.closed_on IS NULL OR e.closed_on > :last)"

_FROM = """
FROM establishment e
LEFT JOIN project_establishment pe ON pe.finess = e.finess
LEFT JOIN project p ON p.id = pe.project_id
"""


def met_sql(alias: str, code: str) -> str:
    numerator, denominator = RATES[code]
    return (
        f"({alias}.{denominator} > 0 AND "
        f"{alias}.{numerator}::bigint * 100 >= :t_{code} * {alias}.{denominator})"
    )


def all_met_sql(alias: str) -> str:
    return "(" + " AND ".join(met_sql(alias, code) for code in RATES) + ")"


def rate_sql(alias: str, code: str) -> str:
    numerator, denominator = RATES[code]
    return f"({alias}.{numerator} * 100)::float8 / NULLIF({alias}.{denominator}, 0)"


def quartiles_sql(alias: str, code: str) -> str:
    return (
        f"percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY {rate_sql(alias, code)})"
    )


def target_params(targets: dict[str, Decimal]) -> dict[str, Decimal]:
    return {f"t_{code}": targets[code] for code in RATES}


async def fetch_all(session: AsyncSession, sql: str, params: dict[str, Any]) -> list[Any]:
    return list((await session.execute(text(sql), params)).mappings())


async def summary(session: AsyncSession, scope: str, params: dict[str, Any]) -> dict[str, Any]:
    sql = f"""
    SELECT count(*) AS establishments,
           count(pe.project_id) AS in_projects,
           count(DISTINCT pe.project_id) AS projects,
           count(l.finess) AS reporting,
           count(l.finess) FILTER (WHERE l.period_end = :last) AS reported_last_month,
           count(l.finess) FILTER (WHERE {all_met_sql("l")}) AS meeting_all_targets
    {_FROM}
    LEFT JOIN latest_measurement l ON l.finess = e.finess
    WHERE {scope} AND {EXPECTED}
    """
    return dict((await fetch_all(session, sql, params))[0])


async def monthly(
    session: AsyncSession,
    scope: str,
    params: dict[str, Any],
    start: date,
    end: date,
    months: list[date] | None = None,
) -> list[Any]:
    """Per month (the last month of each measured period): who reported, how many meet each
    target and all of them, and the quartiles of each rate; only `months` when given."""
    only = "AND m.period_end = ANY(:months)" if months is not None else ""
    met = ",\n".join(f"count(*) FILTER (WHERE {met_sql('m', c)}) AS {c}_met" for c in RATES)
    quartiles = ",\n".join(f"{quartiles_sql('m', c)} AS {c}_q" for c in RATES)
    sql = f"""
    WITH scoped AS (SELECT DISTINCT e.finess {_FROM} WHERE {scope})
    SELECT m.period_end AS month, count(*) AS reporting,
           count(*) FILTER (WHERE {all_met_sql("m")}) AS all_met,
           {met},
           {quartiles}
    FROM measurement m JOIN scoped s ON s.finess = m.finess
    WHERE NOT m.withdrawn AND m.period_end BETWEEN :start AND :end {only}
    GROUP BY m.period_end ORDER BY m.period_end
    """
    bounds = {"start": start, "end": end} | ({"months": months} if months is not None else {})
    return await fetch_all(session, sql, params | bounds)


# by -> (group key, label)
BREAKDOWNS = {
    "region": ("e.region_code", "max(r.name)"),
    "department": ("e.department", "max(d.name)"),
    "category": ("e.category_code", "max(e.category_label)"),
    "vendor": ("p.vendor_siren", "max(v.name)"),
}


async def breakdown(
    session: AsyncSession, by: str, scope: str, params: dict[str, Any]
) -> list[Any]:
    column, label = BREAKDOWNS[by]
    sql = f"""
    SELECT {column} AS key, {label} AS label,
           count(*) AS establishments,
           count(pe.project_id) AS in_projects,
           count(l.finess) FILTER (WHERE l.period_end = :last) AS reported_last_month,
           count(l.finess) FILTER (WHERE {all_met_sql("l")}) AS meeting_all_targets
    {_FROM}
    LEFT JOIN latest_measurement l ON l.finess = e.finess
    LEFT JOIN region r ON r.code = e.region_code
    LEFT JOIN department d ON d.code = e.department
    LEFT JOIN vendor v ON v.siren = p.vendor_siren
    WHERE {scope} AND {EXPECTED}
    GROUP BY {column}
    ORDER BY {column} NULLS LAST
    """
    return await fetch_all(session, sql, params)


async def missing_reports(
    session: AsyncSession, scope: str, params: dict[str, Any], limit: int, offset: int
) -> tuple[list[Any], int]:
    """Establishments of a project that have not reported the last completed month."""
    sql = f"""
    SELECT e.finess, e.name, e.region_code AS region, e.department, e.category_code,
           pe.project_id, p.reference AS project_reference, p.vendor_siren,
           l.period_end AS last_period, count(*) OVER () AS total
    {_FROM}
    LEFT JOIN latest_measurement l ON l.finess = e.finess
    WHERE {scope} AND pe.project_id IS NOT NULL AND {EXPECTED}
      AND (l.period_end IS NULL OR l.period_end < :last)
    ORDER BY e.finess
    LIMIT :limit OFFSET :offset
    """
    rows = await fetch_all(session, sql, params | {"limit": limit, "offset": offset})
    total = rows[0]["total"] if rows else 0
    if not rows and offset:
        count_sql = f"""SELECT count(*) {_FROM} LEFT JOIN latest_measurement l
                        ON l.finess = e.finess WHERE {scope} AND pe.project_id IS NOT NULL
                        AND {EXPECTED} AND (l.period_end IS NULL OR l.period_end < :last)"""
        total = (await session.execute(text(count_sql), params)).scalar_one()
    return rows, total


async def project_ids(session: AsyncSession, scope: str, params: dict[str, Any]) -> list[int]:
    sql = f"SELECT DISTINCT pe.project_id {_FROM} WHERE {scope} AND pe.project_id IS NOT NULL"
    return [r["project_id"] for r in await fetch_all(session, sql, params)]


# The data version: a counter bumped at the commit of every audited write (console sign-ins
# and sign-outs excepted: they move no figure), in commit order, once per transaction, by a
# deferred trigger on `audit_event` (migration 0017, where the reasoning is). Read it
# before computing an answer, then file the answer under it:
# - the answer sees every write of version V or below (their commits were visible before V
#   could be read), so it is never filed under a version newer than its figures;
# - it may also hold a write committed after V was read: it is then served only to requests
#   that read V too, that is that arrived before that commit; a later arrival reads V + 1.
# One row read by its primary key; also read on each request's arrival with its rate limit
# (app.access.limits).
DATA_VERSION_SQL = "SELECT version FROM data_version WHERE id"


async def data_version(session: AsyncSession) -> int:
    """The data version now (DATA_VERSION_SQL)."""
    return (await session.execute(text(DATA_VERSION_SQL))).scalar_one()


async def cached(session: AsyncSession, key: str) -> Any:
    return (
        await session.execute(
            text("SELECT version, content_type, body FROM dashboard_cache WHERE key = :key"),
            {"key": key},
        )
    ).first()


async def store(
    session: AsyncSession, key: str, version: str, content_type: str, body: bytes, ms: int
) -> None:
    await session.execute(
        text(
            """INSERT INTO dashboard_cache (key, version, content_type, body, computed_ms)
               VALUES (:key, :version, :content_type, :body, :ms)
               ON CONFLICT (key) DO UPDATE SET version = EXCLUDED.version,
                   content_type = EXCLUDED.content_type, body = EXCLUDED.body,
                   computed_ms = EXCLUDED.computed_ms, created_at = now()"""
        ),
        {"key": key, "version": version, "content_type": content_type, "body": body, "ms": ms},
    )


def project_figures_sql(projects: str, by_scope: bool = False) -> str:
    """Per balance status (and per scope when `by_scope`): projects, and the funding
    committed, advanced, payable, to recover and paid, of the projects that the query
    `projects` selects (columns id, total, and scope when `by_scope`).

    This is the set-based twin of `app.projects.balance.compliance` (same status order, same
    balance due) for whole regions at once; a test holds the two to the same figures.
    """
    scope, pr_scope = ("scope, ", "pr.scope, ") if by_scope else ("", "")
    return f"""
    WITH projects AS ({projects}),
    ids AS (SELECT DISTINCT id FROM projects),
    establishments AS (
        SELECT pe.project_id,
               bool_or(l.finess IS NOT NULL) AS measured,
               bool_and(l.finess IS NOT NULL AND {all_met_sql("l")}) AS met
        FROM project_establishment pe
        JOIN ids ON ids.id = pe.project_id
        LEFT JOIN latest_measurement l ON l.finess = pe.finess
        GROUP BY pe.project_id
    ), events AS (
        SELECT ev.project_id,
               min(ev.date) FILTER (WHERE ev.type = 'notified') AS notified_on,
               coalesce(sum(ev.amount) FILTER (WHERE ev.type = 'advance_paid'), 0) AS advanced,
               (array_agg(ev.amount ORDER BY ev.id DESC)
                    FILTER (WHERE ev.type = 'expense_statement'))[1] AS declared,
               bool_or(ev.type = 'balance_decision') AS decided,
               bool_or(ev.type = 'balance_paid') AS paid,
               coalesce(sum(ev.amount) FILTER (WHERE ev.type = 'balance_paid'), 0) AS paid_amount
        FROM project_event ev JOIN ids ON ids.id = ev.project_id
        GROUP BY ev.project_id
    ), standing AS (
        SELECT {pr_scope}pr.total, ev.notified_on,
               coalesce(ev.advanced, 0) AS advanced,
               coalesce(ev.paid_amount, 0) AS paid_amount,
               coalesce(es.met, false) AND ev.declared IS NOT NULL AS qualifies,
               coalesce(ev.decided, false) AS decided,
               round(least(pr.total, ev.declared) - coalesce(ev.advanced, 0), 2) AS due,
               CASE WHEN coalesce(ev.paid, false) THEN '{BalanceStatus.BALANCE_PAID}'
                    WHEN NOT coalesce(es.measured, false) THEN '{BalanceStatus.NO_DATA}'
                    WHEN coalesce(es.met, false) AND ev.declared IS NOT NULL
                        THEN '{BalanceStatus.ELIGIBLE}'
                    WHEN coalesce(es.met, false) THEN '{BalanceStatus.TARGETS_MET}'
                    ELSE '{BalanceStatus.IN_PROGRESS}' END AS status
        FROM projects pr
        LEFT JOIN establishments es ON es.project_id = pr.id
        LEFT JOIN events ev ON ev.project_id = pr.id
    )
    SELECT {scope}status, count(*) AS projects,
           coalesce(sum(total) FILTER (WHERE notified_on < :deadline), 0) AS committed,
           sum(advanced) AS advanced,
           coalesce(sum(due) FILTER (WHERE qualifies AND NOT decided AND due >= 0), 0) AS payable,
           coalesce(-sum(due) FILTER (WHERE qualifies AND NOT decided AND due < 0), 0)
               AS to_recover,
           sum(paid_amount) AS balance_paid
    FROM standing GROUP BY {scope}status
    """


async def project_figures(
    session: AsyncSession, scope: str, params: dict[str, Any], deadline: date
) -> list[Any]:
    """`project_figures_sql` for the projects of the scope."""
    projects = f"SELECT DISTINCT p.id, p.total {_FROM} WHERE {scope} AND p.id IS NOT NULL"
    return await fetch_all(session, project_figures_sql(projects), params | {"deadline": deadline})
