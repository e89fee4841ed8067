"""SQL of controls: what the signals read, plans, controls, recoveries, refused revisions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.controls.models import (
    Control,
    ControlPlan,
    ControlPlanLine,
    ControlRecoveryEvent,
    FrozenRevisionAttempt,
)
from app.dashboards.filters import Filters, scope_sql
from app.db import raw_connection
from app.extracts.models import REQUIRED_COUNTS
from app.projects.vocabulary import ProjectEventType

_COUNTS = ", ".join(REQUIRED_COUNTS)


async def establishments_with_data(
    session: AsyncSession,
    principal: Principal,
    filters: Filters,
    finess: str | None = None,
    peers_of: tuple[list[str], list[str]] | None = None,
) -> list[Any]:
    """The establishments of the caller's scope (and filters) that declared something: their
    EJ, département, project and vendor (the project's, else the sender's). `peers_of`
    (vendors, EJs) keeps those of these vendors or EJs instead."""
    scope, params = scope_sql(principal, filters)
    clauses = [scope, "EXISTS (SELECT 1 FROM measurement m WHERE m.finess = e.finess)"]
    if finess is not None:
        clauses.append("e.finess = :finess")
        params["finess"] = finess
    if peers_of is not None:
        clauses.append(
            "(coalesce(p.vendor_siren, l.vendor_siren) = ANY(:peer_vendors)"
            " OR e.legal_entity_finess = ANY(:peer_entities))"
        )
        params["peer_vendors"], params["peer_entities"] = peers_of
    sql = f"""
    SELECT e.finess, e.name, e.legal_entity_finess, e.department, e.region_code,
           pe.project_id, p.reference AS project_reference,
           coalesce(p.vendor_siren, l.vendor_siren) AS vendor_siren
    FROM establishment e
    LEFT JOIN project_establishment pe ON pe.finess = e.finess
    LEFT JOIN project p ON p.id = pe.project_id
    LEFT JOIN LATERAL (
        SELECT m.vendor_siren FROM measurement m WHERE m.finess = e.finess
        ORDER BY m.period_start DESC LIMIT 1
    ) l ON true
    WHERE {" AND ".join(clauses)}
    ORDER BY e.finess
    """
    return list((await session.execute(text(sql), params)).mappings())


async def periods(session: AsyncSession, numbers: Sequence[str]) -> list[Any]:
    """The current revision of every period still declared, by establishment and start."""
    conn = await raw_connection(session)
    return await conn.fetch(
        f"""SELECT finess, period_start, period_end, {_COUNTS} FROM measurement
            WHERE finess = ANY($1::text[]) AND NOT withdrawn
            ORDER BY finess, period_start""",
        list(numbers),
    )


async def revised_periods(session: AsyncSession, numbers: Sequence[str]) -> list[Any]:
    """Every revision of the periods revised at least once: those superseded, kept in
    extract_revision, and the current one, in measurement."""
    conn = await raw_connection(session)
    return await conn.fetch(
        f"""SELECT finess, period_start, period_end, revision, withdrawn, received_at, {_COUNTS}
            FROM extract_revision WHERE finess = ANY($1::text[])
            UNION ALL
            SELECT m.finess, m.period_start, m.period_end, m.revision, m.withdrawn,
                   m.received_at, {", ".join(f"m.{c}" for c in REQUIRED_COUNTS)}
            FROM measurement m
            WHERE m.finess = ANY($1::text[]) AND m.revision > 1
            ORDER BY 1, 2, 4""",
        list(numbers),
    )


async def milestones(session: AsyncSession, project_ids: Sequence[int]) -> list[Any]:
    conn = await raw_connection(session)
    return await conn.fetch(
        """SELECT project_id, type, date FROM project_event
           WHERE project_id = ANY($1::int[])
             AND type IN ('expense_statement', 'balance_decision')
           ORDER BY project_id, date""",
        list(project_ids),
    )


async def frozen_attempts(session: AsyncSession, numbers: Sequence[str]) -> list[Any]:
    conn = await raw_connection(session)
    return await conn.fetch(
        """SELECT finess, period_start, period_end, attempted_at FROM frozen_revision_attempt
           WHERE finess = ANY($1::text[]) ORDER BY finess, attempted_at""",
        list(numbers),
    )


async def record_frozen_attempts(
    session: AsyncSession,
    attempts: Sequence[tuple[str, date, date]],
    vendor_siren: str | None,
    token_id: int | None,
    request_id: str | None,
) -> None:
    session.add_all(
        FrozenRevisionAttempt(
            finess=finess,
            period_start=start,
            period_end=end,
            vendor_siren=vendor_siren,
            token_id=token_id,
            request_id=request_id,
        )
        for finess, start, end in attempts
    )
    await session.flush()


async def plan_candidates(session: AsyncSession, region: str, year: int) -> list[Any]:
    """The funded establishments of a region: those of its projects located in it, and not
    closed before the plan's year."""
    rows = await session.execute(
        text(
            """SELECT DISTINCT e.finess, e.department
               FROM project_establishment pe
               JOIN project p ON p.id = pe.project_id
               JOIN establishment e ON e.finess = pe.finess
               WHERE p.region_code = :region AND e.region_code = :region
                 AND (e.closed_on IS NULL OR e.closed_on >= :year_start)
               ORDER BY e.finess"""
        ),
        {"region": region, "year_start": date(year, 1, 1)},
    )
    return list(rows.mappings())


async def plan_of(session: AsyncSession, region: str, year: int) -> ControlPlan | None:
    found = await session.execute(
        select(ControlPlan).where(ControlPlan.region_code == region, ControlPlan.year == year)
    )
    return found.scalar_one_or_none()


async def plans(
    session: AsyncSession, regions: Sequence[str] | None, year: int | None
) -> list[ControlPlan]:
    query = select(ControlPlan).order_by(ControlPlan.year.desc(), ControlPlan.region_code)
    if regions is not None:
        query = query.where(ControlPlan.region_code.in_(regions))
    if year is not None:
        query = query.where(ControlPlan.year == year)
    return list((await session.execute(query)).scalars())


async def plan_lines(session: AsyncSession, plan_id: int) -> list[Any]:
    rows = await session.execute(
        text(
            """SELECT l.finess, e.name, l.department, l.risk_score, l.reason, l.draw_key,
                      pe.project_id,
                      EXISTS (SELECT 1 FROM control c
                              WHERE c.plan_id = l.plan_id AND c.finess = l.finess) AS controlled
               FROM control_plan_line l
               JOIN establishment e ON e.finess = l.finess
               LEFT JOIN project_establishment pe ON pe.finess = l.finess
               WHERE l.plan_id = :plan ORDER BY l.position"""
        ),
        {"plan": plan_id},
    )
    return list(rows.mappings())


async def add_plan(session: AsyncSession, plan: ControlPlan, lines: list[dict[str, Any]]) -> None:
    session.add(plan)
    await session.flush()
    session.add_all(ControlPlanLine(plan_id=plan.id, **line) for line in lines)
    await session.flush()


async def project_of(session: AsyncSession, finess: str) -> tuple[int, str] | None:
    row = (
        await session.execute(
            text(
                """SELECT p.id, p.region_code FROM project_establishment pe
                   JOIN project p ON p.id = pe.project_id WHERE pe.finess = :finess"""
            ),
            {"finess": finess},
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def paid_and_found(session: AsyncSession, project_id: int) -> tuple[Decimal, Decimal]:
    """What a project was paid (advances and balance payments), and what its controls have
    found unduly paid so far. The project's row stays locked until the caller's transaction
    ends, so two controls recorded at once cannot both claim the same euros."""
    await session.execute(
        text("SELECT 1 FROM project WHERE id = :id FOR UPDATE"), {"id": project_id}
    )
    row = (
        await session.execute(
            text(
                """SELECT
                   (SELECT coalesce(sum(amount), 0) FROM project_event
                     WHERE project_id = :id AND type IN (:advance, :balance)),
                   (SELECT coalesce(sum(unduly_paid), 0) FROM control WHERE project_id = :id)"""
            ),
            {
                "id": project_id,
                "advance": ProjectEventType.ADVANCE_PAID.value,
                "balance": ProjectEventType.BALANCE_PAID.value,
            },
        )
    ).one()
    return Decimal(row[0]), Decimal(row[1])


async def controls(
    session: AsyncSession, regions: Sequence[str] | None, control_id: int | None = None
) -> list[Any]:
    """Controls with their establishment and what was recovered so far."""
    clauses: list[str] = ["true"]
    params: dict[str, Any] = {}
    if regions is not None:
        clauses.append("c.region_code = ANY(:regions)")
        params["regions"] = list(regions)
    if control_id is not None:
        clauses.append("c.id = :id")
        params["id"] = control_id
    sql = f"""
    SELECT c.*, e.name,
           coalesce((SELECT sum(r.amount) FROM control_recovery_event r
                     WHERE r.control_id = c.id AND r.type = 'recovered'), 0) AS recovered
    FROM control c JOIN establishment e ON e.finess = c.finess
    WHERE {" AND ".join(clauses)}
    ORDER BY c.controlled_on DESC, c.id DESC
    """
    return list((await session.execute(text(sql), params)).mappings())


async def recovery_events(
    session: AsyncSession, control_ids: Sequence[int]
) -> list[ControlRecoveryEvent]:
    rows = await session.execute(
        select(ControlRecoveryEvent)
        .where(ControlRecoveryEvent.control_id.in_(control_ids))
        .order_by(ControlRecoveryEvent.control_id, ControlRecoveryEvent.id)
    )
    return list(rows.scalars())


async def lock_control(session: AsyncSession, control_id: int) -> Control | None:
    """The control, locked so that two recoveries recorded at once cannot both take what
    remains."""
    found = await session.execute(select(Control).where(Control.id == control_id).with_for_update())
    return found.scalar_one_or_none()


async def remaining_to_recover(
    session: AsyncSession, scope: str, params: dict[str, Any], region: str | None = None
) -> Decimal:
    """What controls found unduly paid and is not recovered yet, for the establishments that
    a dashboard scope (`app.dashboards.filters.scope_sql`) selects; only the controls of
    `region`'s ARS when given."""
    by_region = await remaining_to_recover_by_region(session, scope, params, region)
    return sum(by_region.values(), Decimal(0))


async def remaining_to_recover_by_region(
    session: AsyncSession, scope: str, params: dict[str, Any], region: str | None = None
) -> dict[str, Decimal]:
    """`remaining_to_recover` per region of the establishments (regions with nothing left
    to recover are absent), in one query."""
    own = "c.region_code = :control_region" if region else "true"
    sql = f"""
    SELECT e.region_code, sum(c.unduly_paid - coalesce(r.recovered, 0)) AS remaining
    FROM control c
    JOIN establishment e ON e.finess = c.finess
    LEFT JOIN project_establishment pe ON pe.finess = e.finess
    LEFT JOIN project p ON p.id = pe.project_id
    LEFT JOIN (SELECT control_id, sum(amount) AS recovered FROM control_recovery_event
               WHERE type = 'recovered' GROUP BY control_id) r ON r.control_id = c.id
    WHERE c.unduly_paid > 0 AND {own} AND {scope}
    GROUP BY e.region_code
    """
    values = params | ({"control_region": region} if region else {})
    rows = await session.execute(text(sql), values)
    return {row.region_code: Decimal(row.remaining) for row in rows}
