"""HTTP endpoints of projects: registry and funding."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from app.access.dependencies import AuthorisedRoute, CurrentPrincipal, requires
from app.access.principal import Role
from app.answers import NOT_MODIFIED, answer
from app.campaigns import current_campaign
from app.clock import Month, today
from app.db import SessionDep
from app.errors import NotFound
from app.projects import payments, repository, service, standings
from app.projects.balance import Compliance
from app.projects.envelopes import Commitment, envelope_lines
from app.projects.events import Event
from app.projects.models import Project
from app.projects.schemas import (
    ComplianceRead,
    EnvelopeRead,
    EstablishmentComplianceOut,
    EventCreate,
    EventRead,
    Funding,
    IssueOut,
    LateProject,
    PeriodOut,
    ProjectCreate,
    ProjectEstablishmentRead,
    ProjectRead,
    ProjectSummary,
    ShortfallOut,
)
from app.projects.standings import ListQuery
from app.projects.vocabulary import BalanceStatus, Guichet
from app.schemas import Page, RowId

router = APIRouter(prefix="/api/v1/projects", tags=["projects"], route_class=AuthorisedRoute)
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


def funding_of(project: Project) -> Funding | None:
    if project.total is None:
        return None
    return Funding.model_validate(project)


async def project_read(session, project: Project) -> ProjectRead:
    lines = await repository.project_lines(session, project.id)
    return ProjectRead(
        id=project.id,
        reference=project.reference,
        name=project.name,
        region=project.region_code,
        vendor_siren=project.vendor_siren,
        software=project.software,
        funding_case=project.funding_case,
        submitted_on=project.submitted_on,
        guichet=project.guichet,
        amoa_requested=project.amoa_requested,
        funding=funding_of(project),
        warnings=[IssueOut(**w) for w in project.warnings or []],
        created_at=project.created_at,
        establishments=[
            ProjectEstablishmentRead(
                finess=line.finess,
                name=establishment.name,
                legal_entity_finess=establishment.legal_entity_finess,
                region=establishment.region_code,
                funding_case=line.funding_case,
                eligible_hours_share=line.eligible_hours_share,
                hardware_quote=line.hardware_quote,
                rank=line.rank,
                usage=line.usage,
                software=line.software_amount,
                hardware=line.hardware,
            )
            for line, establishment in lines
        ],
    )


@router.post(
    "",
    dependencies=[requires(Role.ARS, Role.NATIONAL)],
    status_code=201,
    response_model=ProjectRead,
    summary="Register a funding request (project) and compute its funding",
    responses={401: _PROBLEM, 403: _PROBLEM, 409: _PROBLEM, 422: _PROBLEM},
)
async def create_project(
    payload: ProjectCreate, session: SessionDep, principal: CurrentPrincipal
) -> ProjectRead:
    """Admissibility errors (annexe 3) refuse the request with 422; warnings (such as a
    project below the minimum size) are returned with the created project."""
    project, _ = await service.create_project(session, principal, payload)
    await session.refresh(project)
    return await project_read(session, project)


@router.get(
    "/{project_id}",
    dependencies=[requires(*Role)],
    response_model=ProjectRead,
    summary="One project",
    responses={401: _PROBLEM, 404: _PROBLEM},
)
async def get_project(
    project_id: RowId, session: SessionDep, principal: CurrentPrincipal
) -> ProjectRead:
    project = await repository.visible_project(session, principal, project_id)
    if project is None:
        raise NotFound(f"Project {project_id} not found.")
    return await project_read(session, project)


@router.get(
    "",
    dependencies=[requires(*Role)],
    response_model=Page[ProjectSummary],
    summary="Projects of the caller's scope, with their balance status",
    responses={401: _PROBLEM, 404: _PROBLEM, 422: _PROBLEM},
)
async def list_projects(
    session: SessionDep,
    principal: CurrentPrincipal,
    region: Annotated[str | None, Query(max_length=2)] = None,
    status: BalanceStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[ProjectSummary]:
    """An ARS lists its projects by status (`no_data`, `in_progress`, `targets_met`,
    `eligible`, `balance_paid`). Another region than an ARS's or GRADeS's own answers 404."""
    if principal.role in (Role.ARS, Role.GRADES) and region not in (None, principal.region_code):
        raise NotFound(f"Region {region} is not in your scope.")
    rows, total = await standings.visible(
        session,
        principal,
        ListQuery(status=status, sort="id", limit=limit, offset=offset),
        today(),
        region,
    )
    return Page[ProjectSummary](
        items=[
            ProjectSummary(
                id=row["project_id"],
                reference=row["reference"],
                name=row["name"],
                region=row["region_code"],
                vendor_siren=row["vendor_siren"],
                funding_case=row["funding_case"],
                establishment_count=row["establishments"],
                total=row["total_aid"] if row["has_total"] else None,
                status=row["status"],
            )
            for row in rows
        ],
        total=total,
        limit=limit,
        offset=offset,
    )


def compliance_read(
    project_id: int, result: Compliance, closed: dict[str, date] | None = None
) -> ComplianceRead:
    closed = closed or {}
    return ComplianceRead(
        project_id=project_id,
        status=result.status,
        qualifies_for_balance=result.qualifies_for_balance,
        balance_due=result.balance_due,
        overdue=result.overdue,
        establishments=[
            EstablishmentComplianceOut(
                finess=item.finess,
                latest_period=None
                if item.latest_period is None
                else PeriodOut(
                    start=str(Month.of(item.latest_period.start)),
                    end=str(Month.of(item.latest_period.end)),
                ),
                meets_targets=item.meets_targets,
                shortfalls=[ShortfallOut.model_validate(s) for s in item.shortfalls],
                closed_on=closed.get(item.finess),
            )
            for item in result.establishments
        ],
    )


async def _project(session, principal, project_id: int) -> Project:
    project = await repository.visible_project(session, principal, project_id)
    if project is None:
        raise NotFound(f"Project {project_id} not found.")
    return project


@router.get(
    "/{project_id}/compliance",
    dependencies=[requires(*Role)],
    response_model=ComplianceRead,
    summary="Where a project stands for its balance payment (SPEC §6)",
    responses={304: NOT_MODIFIED, 401: _PROBLEM, 404: _PROBLEM},
)
async def get_compliance(
    project_id: RowId, request: Request, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    """Status, the establishments that block the balance with the indicator and gap that
    block them, the balance due (negative: an overpayment to recover) and the indicative
    overdue flag. Kept until the data or the day moves (the overdue flag follows the day);
    the ETag answers If-None-Match with a 304."""

    async def render() -> tuple[bytes, str]:
        found = await repository.visible_project_closures(session, principal, project_id)
        if found is None:
            raise NotFound(f"Project {project_id} not found.")
        project, closed = found
        (standing,) = await payments.standings(session, [project], today())
        read = compliance_read(project.id, standing.compliance, closed)
        return read.model_dump_json().encode(), "application/json"

    return await answer(request, session, principal, render, follows="day")


@router.post(
    "/{project_id}/events",
    dependencies=[requires(Role.ARS, Role.NATIONAL, sees=("project_id", _project))],
    status_code=201,
    response_model=EventRead,
    summary="Record a payment event (notification, convention, advance, statement, balance)",
    responses={401: _PROBLEM, 403: _PROBLEM, 404: _PROBLEM, 422: _PROBLEM},
)
async def create_event(
    project_id: RowId,
    payload: EventCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> EventRead:
    """Events are checked in order: no advance before the convention, no balance decision
    before the expense statement nor while a target is unmet, no payment before the
    decision. A balance decision freezes the measurements it rests on."""
    project = await _project(session, principal, project_id)
    row = await payments.record_event(
        session,
        principal,
        project,
        Event(payload.type, payload.date, payload.amount),
        today(),
    )
    await session.refresh(row)
    return EventRead.model_validate(row)


@router.get(
    "/{project_id}/events",
    dependencies=[requires(*Role)],
    response_model=list[EventRead],
    summary="The payment events of a project",
    responses={401: _PROBLEM, 404: _PROBLEM},
)
async def list_events(
    project_id: RowId, session: SessionDep, principal: CurrentPrincipal
) -> list[EventRead]:
    project = await _project(session, principal, project_id)
    return [EventRead.model_validate(e) for e in await repository.events_of(session, [project.id])]


envelopes_router = APIRouter(
    prefix="/api/v1/envelopes", tags=["projects"], route_class=AuthorisedRoute
)


@envelopes_router.get(
    "",
    dependencies=[requires(Role.ARS, Role.GRADES, Role.NATIONAL)],
    response_model=list[EnvelopeRead],
    summary="Committed aid against each regional envelope (annexe 1)",
    responses={401: _PROBLEM, 403: _PROBLEM},
)
async def list_envelopes(session: SessionDep, principal: CurrentPrincipal) -> list[EnvelopeRead]:
    """A project commits its aid when notified before the engagement deadline; projects
    notified later are listed apart. ARS and GRADeS see their region."""
    campaign = current_campaign()
    projects = await repository.projects_in_scope(session, principal)
    events = await repository.events_of(session, [p.id for p in projects])
    notified = {e.project_id: e.date for e in events if e.type == "notified"}
    lines = envelope_lines(
        (
            Commitment(
                p.id,
                p.reference,
                p.region_code,
                p.guichet or Guichet.REGIONAL,
                p.total or Decimal(0),
                notified.get(p.id),
            )
            for p in projects
        ),
        campaign,
        regions=None if principal.role is Role.NATIONAL else [principal.region_code or ""],
    )
    return [
        EnvelopeRead(
            region=line.region,
            name=line.name,
            envelope=line.envelope,
            committed=line.committed,
            remaining=line.remaining,
            pending=line.pending,
            notified_projects=line.notified_projects,
            late_projects=[
                LateProject(
                    id=c.project_id, reference=c.reference, notified_on=c.notified_on, total=c.total
                )
                for c in line.late
                if c.notified_on is not None  # a late project is a notified one
            ],
        )
        for line in lines
    ]
