"""HTTP endpoints of controls (annexe 4 C): signals and risk, the yearly plan, controls and
the recovery of what they found unduly paid. An ARS sees and acts for its region, the
national team reads everything, GRADeS and vendors have no access (403)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.dependencies import AuthorisedRoute, CurrentPrincipal, requires
from app.access.principal import Principal, Role
from app.access.scopes import establishment_visible, project_visible
from app.answers import data_version
from app.clock import today
from app.controls import repository, service
from app.controls.draw import Draw
from app.controls.models import ControlPlan
from app.controls.recovery import RecoveryEvent, RecoveryEventType, RecoveryStatus, status
from app.controls.risk import project_risk
from app.controls.schemas import (
    ControlCreate,
    ControlList,
    ControlRead,
    EstablishmentRisk,
    PlanCreate,
    PlanLine,
    PlanRead,
    ProjectRiskRead,
    RecoveryEventCreate,
    RecoveryEventRead,
    ReplayRead,
    RiskList,
    SignalOut,
)
from app.db import SessionDep
from app.errors import NotFound
from app.projects.models import Project
from app.referential.models import Establishment
from app.referential.repository import finess_or_not_found
from app.schemas import RowId

router = APIRouter(prefix="/api/v1/controls", tags=["controls"], route_class=AuthorisedRoute)
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
_READ: dict[int | str, dict[str, Any]] = {401: _PROBLEM, 403: _PROBLEM, 404: _PROBLEM}
_WRITE: dict[int | str, dict[str, Any]] = {
    401: _PROBLEM,
    403: _PROBLEM,
    404: _PROBLEM,
    409: _PROBLEM,
    422: _PROBLEM,
}


async def _control_in_scope(session: AsyncSession, principal: Principal, control_id: int) -> None:
    if not await repository.controls(session, service.visible_regions(principal), control_id):
        raise NotFound(f"Control {control_id} not found.")


# Controls are the ARS's, for its region, and the national team's to read (annexe 4 C).
READERS = requires(Role.ARS, Role.NATIONAL)
WRITERS = requires(Role.ARS)


def _region_in_scope(principal: Principal, region: str | None) -> None:
    if principal.role is Role.ARS and region not in (None, principal.region_code):
        raise NotFound(f"Region {region} is not in your scope.")


def _plain(value: Any) -> Any:
    """Figures as JSON: counts and displayed rates as numbers, dates as ISO text."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _risk_out(item: service.Assessed) -> EstablishmentRisk:
    return EstablishmentRisk(
        finess=item.finess,
        name=item.name,
        department=item.department,
        region=item.region,
        project_id=item.project_id,
        project_reference=item.project_reference,
        vendor_siren=item.vendor_siren,
        risk_score=item.score,
        signals=[
            SignalOut(
                code=s.code, reason=s.reason, months=list(s.months), figures=_plain(dict(s.figures))
            )
            for s in item.signals
        ],
    )


@router.get(
    "/risk",
    dependencies=[READERS],
    response_model=RiskList,
    summary="Establishments by risk, riskiest first, with their signals",
    responses=_READ,
)
async def risk_list(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    region: Annotated[str | None, Query(max_length=2)] = None,
    flagged_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> RiskList:
    """Signals on the figures each establishment declared (rates held at their target, a
    jump to the targets before the expense statement, repeated or shared counts, MSSanté
    far above the eligible persons, active files equal to accompanied persons, late passing
    revisions, revisions of frozen periods). They inform the ARS's risk analysis and never
    block anything. An ARS sees its region; another region answers 404."""
    _region_in_scope(principal, region)
    version = await data_version(request, session)
    assessed = await service.assess_scope(session, principal, region, version)
    flagged = [a for a in assessed if a.score > 0]
    shown = flagged if flagged_only else assessed
    return RiskList(
        region=region or (principal.region_code if principal.role is Role.ARS else None),
        establishments_with_data=len(assessed),
        flagged=len(flagged),
        items=[_risk_out(a) for a in shown[offset : offset + limit]],
        total=len(shown),
        limit=limit,
        offset=offset,
    )


@router.get(
    "/establishments/{finess}",
    dependencies=[READERS],
    response_model=EstablishmentRisk,
    summary="One establishment's signals and risk score",
    responses=_READ,
)
async def establishment_risk(
    finess: str, session: SessionDep, principal: CurrentPrincipal
) -> EstablishmentRisk:
    number = finess_or_not_found(finess)
    found = await service.assess(session, principal, finess=number)
    if found:
        return _risk_out(found[0])
    establishment = (
        await session.execute(
            select(Establishment).where(
                Establishment.finess == number, establishment_visible(principal)
            )
        )
    ).scalar_one_or_none()
    if establishment is None:
        raise NotFound(f"Establishment {finess} not found.")
    return EstablishmentRisk(
        finess=establishment.finess,
        name=establishment.name,
        department=establishment.department,
        region=establishment.region_code,
        project_id=None,
        project_reference=None,
        vendor_siren=None,
        risk_score=0,
        signals=[],
    )


@router.get(
    "/projects/{project_id}",
    dependencies=[READERS],
    response_model=ProjectRiskRead,
    summary="A project's risk score and its establishments' signals",
    responses=_READ,
)
async def project_risk_read(
    project_id: RowId, session: SessionDep, principal: CurrentPrincipal
) -> ProjectRiskRead:
    project = (
        await session.execute(
            select(Project.id).where(Project.id == project_id, project_visible(principal))
        )
    ).scalar_one_or_none()
    if project is None:
        raise NotFound(f"Project {project_id} not found.")
    assessed = await service.assess(session, principal, project=project_id)
    summary = project_risk([a.score for a in assessed])
    return ProjectRiskRead(
        project_id=project_id,
        risk_score=summary.score,
        establishments_with_data=summary.establishments,
        flagged=summary.flagged,
        establishments=[_risk_out(a) for a in assessed],
    )


def _plan_read(
    plan: ControlPlan | None, drawn: service.PlanDraw | None, lines: list[Any]
) -> PlanRead:
    if plan is not None:
        head: dict[str, Any] = {
            "id": plan.id,
            "region": plan.region_code,
            "year": plan.year,
            "method": plan.method,
            "seed": plan.seed,
            "per_department": plan.per_department,
            "extra": plan.extra,
            "candidates": len(plan.candidates),
            "uncovered_departments": plan.uncovered,
            "drawn_at": plan.drawn_at,
        }
    else:
        assert drawn is not None
        head = {
            "id": None,
            "region": drawn.region,
            "year": drawn.year,
            "method": drawn.method,
            "seed": drawn.seed,
            "per_department": drawn.per_department,
            "extra": drawn.extra,
            "candidates": len(drawn.candidates),
            "uncovered_departments": list(drawn.result.uncovered),
            "drawn_at": None,
        }
    return PlanRead(**head, establishments=[PlanLine(**line) for line in lines])


async def _preview_lines(session, result: Draw) -> list[dict[str, Any]]:
    names = dict(
        (
            await session.execute(
                select(Establishment.finess, Establishment.name).where(
                    Establishment.finess.in_([p.finess for p in result.picks])
                )
            )
        ).all()
    )
    projects = {}
    for pick in result.picks:
        found = await repository.project_of(session, pick.finess)
        projects[pick.finess] = found[0] if found else None
    return [
        {
            "finess": p.finess,
            "name": names.get(p.finess, ""),
            "department": p.department,
            "project_id": projects[p.finess],
            "risk_score": p.risk_score,
            "reason": p.reason,
            "draw_key": p.draw_key,
            "controlled": False,
        }
        for p in result.picks
    ]


@router.post(
    "/plans",
    dependencies=[WRITERS],
    status_code=201,
    response_model=PlanRead,
    summary="Draw and store the year's control plan of the ARS's region",
    responses={
        **_WRITE,
        200: {"model": PlanRead, "description": "dry_run=true: the draw, not stored"},
    },
)
async def create_plan(
    payload: PlanCreate,
    response: Response,
    session: SessionDep,
    principal: CurrentPrincipal,
    dry_run: bool = False,
) -> PlanRead:
    """At least one funded establishment per département of the region (annexe 4 C 2), plus
    `extra` more: `random` (the smallest SHA-256 of "<seed>:<FINESS>"), `risk` (the highest
    risk score, ties by the same key) or `mixed` (one per département at random, the extra
    ones by risk). The seed, method and candidates are stored with the plan, so the draw can
    be replayed. One plan per region and year (409 for a second); `dry_run=true` answers the
    draw (200) without storing it."""
    _region_in_scope(principal, payload.region)
    drawn = await service.compute_draw(
        session,
        principal,
        payload.region,
        payload.year,
        payload.method,
        payload.seed,
        payload.extra,
    )
    if dry_run:
        response.status_code = 200
        return _plan_read(None, drawn, await _preview_lines(session, drawn.result))
    plan = await service.store_plan(session, principal, drawn)
    await session.refresh(plan)
    return _plan_read(plan, None, await repository.plan_lines(session, plan.id))


@router.get(
    "/plans",
    dependencies=[READERS],
    response_model=list[PlanRead],
    summary="The control plans of the caller's scope",
    responses=_READ,
)
async def list_plans(
    session: SessionDep,
    principal: CurrentPrincipal,
    year: Annotated[int | None, Query(ge=2023, le=2100)] = None,
) -> list[PlanRead]:
    plans = await repository.plans(session, service.visible_regions(principal), year)
    return [_plan_read(p, None, await repository.plan_lines(session, p.id)) for p in plans]


@router.get(
    "/plans/{plan_id}",
    dependencies=[READERS],
    response_model=PlanRead,
    summary="One control plan and the establishments drawn",
    responses=_READ,
)
async def get_plan(plan_id: RowId, session: SessionDep, principal: CurrentPrincipal) -> PlanRead:
    plan = await service.visible_plan(session, principal, plan_id)
    return _plan_read(plan, None, await repository.plan_lines(session, plan.id))


@router.get(
    "/plans/{plan_id}/replay",
    dependencies=[READERS],
    response_model=ReplayRead,
    summary="Replay a plan's draw from its stored seed and candidates",
    responses=_READ,
)
async def replay_plan(
    plan_id: RowId, session: SessionDep, principal: CurrentPrincipal
) -> ReplayRead:
    plan = await service.visible_plan(session, principal, plan_id)
    again = [p.finess for p in service.replay(plan).picks]
    stored = [line["finess"] for line in await repository.plan_lines(session, plan.id)]
    return ReplayRead(
        plan_id=plan.id, seed=plan.seed, matches=again == stored, establishments=again
    )


async def control_reads(session, rows: list[Any]) -> list[ControlRead]:
    events = await repository.recovery_events(session, [r["id"] for r in rows])
    by_control: dict[int, list] = {}
    for event in events:
        by_control.setdefault(event.control_id, []).append(event)
    reads = []
    for row in rows:
        mine = by_control.get(row["id"], [])
        reads.append(
            ControlRead(
                id=row["id"],
                region=row["region_code"],
                finess=row["finess"],
                name=row["name"],
                project_id=row["project_id"],
                plan_id=row["plan_id"],
                kind=row["kind"],
                controlled_on=row["controlled_on"],
                findings=row["findings"],
                compliant=row["compliant"],
                unduly_paid=row["unduly_paid"],
                recovered=row["recovered"],
                remaining=service.remaining_of(row),
                recovery_status=status(row["unduly_paid"], service._events(mine)),
                recovery_events=[
                    RecoveryEventRead(
                        id=e.id,
                        type=RecoveryEventType(e.type),
                        date=e.date,
                        amount=e.amount,
                        proof_reference=e.proof_reference,
                        recorded_at=e.recorded_at,
                    )
                    for e in mine
                ],
                recorded_at=row["recorded_at"],
            )
        )
    return reads


@router.post(
    "",
    dependencies=[WRITERS],
    status_code=201,
    response_model=ControlRead,
    summary="Record a control on documents or on site and its outcome",
    responses=_WRITE,
)
async def create_control(
    payload: ControlCreate, session: SessionDep, principal: CurrentPrincipal
) -> ControlRead:
    """An amount found unduly paid (`unduly_paid` > 0, so not compliant) is to be recovered:
    follow it with `POST /api/v1/controls/{id}/recovery`. What remains to recover adds to
    the dashboards' `to_recover`."""
    number = finess_or_not_found(payload.finess)
    control = await service.record_control(
        session,
        principal,
        service.NewControl(
            finess=number,
            kind=payload.kind.value,
            controlled_on=payload.controlled_on,
            findings=payload.findings,
            compliant=payload.compliant,
            unduly_paid=payload.unduly_paid,
            plan_id=payload.plan_id,
        ),
        today(),
    )
    rows = await repository.controls(session, None, control.id)
    return (await control_reads(session, rows))[0]


@router.get(
    "",
    dependencies=[READERS],
    response_model=ControlList,
    summary="Controls of the caller's scope, newest first",
    responses=_READ,
)
async def list_controls(
    session: SessionDep,
    principal: CurrentPrincipal,
    recovery_status: RecoveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ControlList:
    rows = await repository.controls(session, service.visible_regions(principal))
    reads = await control_reads(session, rows)
    if recovery_status is not None:
        reads = [r for r in reads if r.recovery_status is recovery_status]
    return ControlList(
        items=reads[offset : offset + limit],
        total=len(reads),
        limit=limit,
        offset=offset,
        remaining_to_recover=sum((r.remaining for r in reads), Decimal("0.00")),
    )


@router.get(
    "/{control_id}",
    dependencies=[READERS],
    response_model=ControlRead,
    summary="One control, its outcome and the recovery of what it found unduly paid",
    responses=_READ,
)
async def get_control(
    control_id: RowId, session: SessionDep, principal: CurrentPrincipal
) -> ControlRead:
    rows = await repository.controls(session, service.visible_regions(principal), control_id)
    if not rows:
        raise NotFound(f"Control {control_id} not found.")
    return (await control_reads(session, rows))[0]


@router.post(
    "/{control_id}/recovery",
    dependencies=[requires(Role.ARS, sees=("control_id", _control_in_scope))],
    status_code=201,
    response_model=RecoveryEventRead,
    summary="Record a recovery step: notified, then recovered (with the proof's reference)",
    responses=_WRITE,
)
async def create_recovery_event(
    control_id: RowId,
    payload: RecoveryEventCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> RecoveryEventRead:
    """Annexe 4 C 3: the recovery starts as soon as the overpayment is known and its proof
    (letter to the ESSMS, titre de recette) is kept. Notify first, then record each amount
    recovered (all that remains when `amount` is left out) until nothing remains."""
    row = await service.record_recovery(
        session,
        principal,
        control_id,
        RecoveryEvent(payload.type, payload.date, payload.amount, payload.proof_reference),
        today(),
    )
    await session.refresh(row)
    return RecoveryEventRead(
        id=row.id,
        type=RecoveryEventType(row.type),
        date=row.date,
        amount=row.amount,
        proof_reference=row.proof_reference,
        recorded_at=row.recorded_at,
    )
