"""Follow-up of funded projects: compliance for the balance, payment events, envelopes."""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.audit import service as audit
from app.campaigns import Campaign, FundingCase, current_campaign
from app.errors import Invalid
from app.indicators.rules import RATES, Ratio
from app.projects import repository
from app.projects.balance import Compliance, LatestMeasurement, ProjectProgress, compliance
from app.projects.events import Event, ProjectFacts, advance_paid, check_event, recorded_amount
from app.projects.funding import Guichet
from app.projects.models import Project, ProjectEvent


def progress_of(project: Project, events: Sequence[Event]) -> ProjectProgress:
    def on(kind: str) -> date | None:
        return next((e.date for e in events if e.type == kind), None)

    statements = [e for e in events if e.type == "expense_statement"]
    return ProjectProgress(
        funding_case=FundingCase(project.funding_case),
        guichet=Guichet(project.guichet or "regional"),
        total_aid=project.total or Decimal(0),
        started_on=on("started"),
        advance_paid=advance_paid(events),
        # A later statement replaces an earlier one.
        declared_expenses=statements[-1].amount if statements else None,
        balance_decided_on=on("balance_decision"),
        balance_paid_on=on("balance_paid"),
    )


_RATE_FIELDS = tuple((code, num, den) for code, (num, den) in RATES.items())
_new_ratio = tuple.__new__  # a Ratio without NamedTuple's keyword plumbing: 36 000 per call


def _rates(record) -> dict[str, Ratio | None]:
    return {
        code: _new_ratio(Ratio, (record[num], record[den])) if record[den] else None
        for code, num, den in _RATE_FIELDS
    }


@dataclass(frozen=True)
class ProjectStanding:
    project: Project
    events: tuple[Event, ...]
    compliance: Compliance


async def standings(
    session: AsyncSession,
    projects: Sequence[Project],
    today: date,
    campaign: Campaign | None = None,
) -> list[ProjectStanding]:
    """Compliance of many projects at once: two queries, then the pure rules."""
    campaign = campaign or current_campaign()
    ids = [p.id for p in projects]
    if not ids:
        return []
    event_rows = await repository.event_rows(session, ids)
    measurement_rows = await repository.latest_measurements(session, ids)
    # Tens of thousands of small acyclic objects: the cyclic collector would only rescan the
    # heap over and over (a third of the time at national scale); refcounting frees them.
    with _collector_paused():
        events: dict[int, list[Event]] = defaultdict(list)
        for row in event_rows:
            events[row["project_id"]].append(Event(row["type"], row["date"], row["amount"]))
        latest: dict[int, dict[str, LatestMeasurement | None]] = defaultdict(dict)
        for record in measurement_rows:
            latest[record["project_id"]][record["finess"]] = (
                None
                if record["period_start"] is None
                else LatestMeasurement(record["period_start"], record["period_end"], _rates(record))
            )
        return [
            ProjectStanding(
                project,
                tuple(events[project.id]),
                compliance(
                    latest[project.id],
                    progress_of(project, events[project.id]),
                    campaign=campaign,
                    today=today,
                ),
            )
            for project in projects
        ]


async def standings_of(
    session: AsyncSession,
    project_ids: Sequence[int],
    today: date,
    campaign: Campaign | None = None,
) -> list[ProjectStanding]:
    """`standings` of the projects of these ids (those that exist), in the order of their
    ids."""
    if not project_ids:
        return []
    projects = (
        await session.execute(
            select(Project).where(Project.id.in_(project_ids)).order_by(Project.id)
        )
    ).scalars()
    return await standings(session, list(projects), today, campaign)


@contextmanager
def _collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def record_event(
    session: AsyncSession,
    principal: Principal,
    project: Project,
    new: Event,
    today: date,
) -> ProjectEvent:
    """Check the event against the project's history, store it, and freeze the measurements
    a balance decision rests on."""
    (standing,) = await standings(session, [project], today)
    history = list(standing.events)
    facts = _facts(project, standing)
    issues = check_event(new, history, facts, today)
    if issues:
        raise Invalid(
            f"The {new.type} event cannot be recorded.",
            issues,
        )
    row = ProjectEvent(
        project_id=project.id,
        type=new.type,
        date=new.date,
        amount=recorded_amount(new, history, facts),
        token_id=principal.token_id,
    )
    session.add(row)
    await session.flush()
    detail: dict[str, object] = {"type": new.type, "date": str(new.date), "amount": str(row.amount)}
    if new.type == "balance_decision":
        detail["frozen_measurements"] = await repository.lock_latest_measurements(
            session, project.id, row.id
        )
    await audit.record(
        session,
        principal,
        f"project.event.{new.type}",
        "project",
        str(project.id),
        region_code=project.region_code,
        detail=detail,
    )
    return row


def _facts(project: Project, standing: ProjectStanding) -> ProjectFacts:
    result = standing.compliance
    return ProjectFacts(
        submitted_on=project.submitted_on,
        advance=project.advance or Decimal(0),
        qualifies_for_balance=result.qualifies_for_balance,
        balance_due=result.balance_due,
        blocking=tuple(item.finess for item in result.blocking),
    )
