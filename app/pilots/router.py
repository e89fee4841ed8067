"""HTTP endpoints of the Mon espace santé pilots under /api/v1/pilots.

Access: `ars` records applications, selections and payment events of its own region and
reads it; `grades` reads its region; `national` reads and acts everywhere; a `vendor` sees no
pilot (404) except to push and read back the usage of the pilots in its projects. A write a
role can never do answers 403; anything outside the caller's scope, including a region other
than its own, answers 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from app.access.dependencies import AuthorisedRoute, CurrentPrincipal, requires
from app.access.principal import Principal, Role
from app.campaigns import current_campaign
from app.clock import today
from app.db import SessionDep
from app.errors import FieldError
from app.ingestion.schemas import FieldMessage
from app.pilots import repository, rules, service
from app.pilots.models import PilotApplication
from app.pilots.schemas import (
    PilotApplicationCounts,
    PilotApplicationCreate,
    PilotApplicationRead,
    PilotBudget,
    PilotDeadline,
    PilotDecisionCreate,
    PilotDomainShare,
    PilotEventCreate,
    PilotEventRead,
    PilotListItem,
    PilotPaymentCounts,
    PilotRead,
    PilotRegionLine,
    PilotsSummary,
)
from app.pilots.usage.router import router as usage_router
from app.pilots.vocabulary import ApplicationStatus, Domain, PaymentStatus
from app.queries import RegionQuery
from app.referential.geography import REGIONS
from app.referential.models import Establishment
from app.schemas import Page, RowId

router = APIRouter(prefix="/api/v1/pilots", tags=["pilots"], route_class=AuthorisedRoute)
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


def _messages(issues: list[FieldError]) -> list[FieldMessage]:
    return [FieldMessage(**issue.as_dict()) for issue in issues]


def application_read(
    row: PilotApplication, establishment: Establishment, warnings: list[FieldError] | None = None
) -> PilotApplicationRead:
    issues = rules.eligibility(
        service.application_facts(row, establishment), current_campaign().pilots
    )
    return PilotApplicationRead(
        id=row.id,
        campaign=row.campaign,
        finess=row.finess,
        name=establishment.name,
        legal_entity_finess=row.legal_entity_finess,
        region=row.region_code,
        category_code=establishment.category_code,
        domain=row.domain,
        technical_maturity=row.technical_maturity,
        dmp_connection=row.dmp_connection,
        mssante_connection=row.mssante_connection,
        applied_on=row.applied_on,
        status=row.status,
        decided_on=row.decided_on,
        decision_reason=row.decision_reason,
        eligible=not issues,
        eligibility=_messages(issues),
        warnings=_messages(warnings or []),
        recorded_at=row.recorded_at,
    )


async def _application(session, principal: Principal, application_id: int) -> None:
    await service.application_in_scope(session, principal, application_id)


async def _pilot(session, principal: Principal, pilot_id: int) -> None:
    await service.application_in_scope(session, principal, pilot_id, pilots_only=True)


@router.post(
    "/applications",
    dependencies=[requires(Role.ARS, Role.NATIONAL)],
    status_code=201,
    response_model=PilotApplicationRead,
    summary="Record an establishment's application to the call for pilots",
    responses={401: _PROBLEM, 403: _PROBLEM, 404: _PROBLEM, 409: _PROBLEM, 422: _PROBLEM},
)
async def create_application(
    payload: PilotApplicationCreate,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> PilotApplicationRead:
    """The EJ and the domain come from the FINESS referential (a declared one must agree).
    An application that breaks an eligibility rule (maturity, call window...) is recorded
    with its `eligibility` issues: it cannot be selected."""
    row, establishment = await service.record_application(session, principal, payload, today())
    await session.refresh(row)
    return application_read(row, establishment)


@router.get(
    "/applications",
    dependencies=[requires(*Role)],
    response_model=Page[PilotApplicationRead],
    summary="Applications of the caller's region (national: all), by region",
    responses={401: _PROBLEM, 404: _PROBLEM, 422: _PROBLEM},
)
async def list_applications(
    session: SessionDep,
    principal: CurrentPrincipal,
    region: RegionQuery = None,
    status: ApplicationStatus | None = None,
    domain: Domain | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,  # a SQL OFFSET: bounded
) -> Page[PilotApplicationRead]:
    region = service.region_in_scope(principal, region)
    found, total = await repository.list_applications(
        session,
        principal,
        service.campaign_key(),
        region=region,
        statuses=[status] if status else None,
        domain=domain,
        limit=limit,
        offset=offset,
    )
    return Page[PilotApplicationRead](
        items=[application_read(row, establishment) for row, establishment in found],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/applications/{application_id}",
    dependencies=[requires(*Role)],
    response_model=PilotApplicationRead,
    summary="One application",
    responses={401: _PROBLEM, 404: _PROBLEM},
)
async def get_application(
    application_id: RowId, session: SessionDep, principal: CurrentPrincipal
) -> PilotApplicationRead:
    service.not_for_vendors(principal)
    row, establishment = await service.application_in_scope(session, principal, application_id)
    return application_read(row, establishment)


@router.post(
    "/applications/{application_id}/decision",
    dependencies=[requires(Role.ARS, Role.NATIONAL, sees=("application_id", _application))],
    response_model=PilotApplicationRead,
    summary="Select an application as a pilot, or record that it is not selected",
    responses={401: _PROBLEM, 403: _PROBLEM, 404: _PROBLEM, 422: _PROBLEM},
)
async def decide(
    application_id: RowId,
    payload: PilotDecisionCreate,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> PilotApplicationRead:
    """A selection is refused with every rule it breaks, each named by its code:
    `national_cap`, `regional_quota`, `legal_entity_limit`, `outside_call_window`,
    `after_selection_deadline`, `not_eligible_domain`, `not_technically_ready`,
    `dmp_not_planned`, `mssante_not_planned`, `before_application`, `future_date`,
    `already_selected`. The 35/35/30 split only warns (`domain_above_target`)."""
    row, establishment, warnings = await service.decide(
        session, principal, application_id, payload, today()
    )
    await session.refresh(row)
    return application_read(row, establishment, warnings)


@router.get(
    "/summary",
    dependencies=[requires(*Role)],
    response_model=PilotsSummary,
    summary="Pilots against the cap and quotas, domain split, budget committed and paid",
    responses={401: _PROBLEM, 404: _PROBLEM, 422: _PROBLEM},
)
async def get_summary(
    session: SessionDep, principal: CurrentPrincipal, region: RegionQuery = None
) -> PilotsSummary:
    """National callers see the country (or one region with `region`); ARS and GRADeS see
    their region. Withdrawn pilots free their place and their aid."""
    region = service.region_in_scope(principal, region)
    campaign = current_campaign()
    result = await service.summary(session, principal, region, today())
    return PilotsSummary(
        campaign=str(campaign.year),
        instruction=campaign.pilots.instruction,
        scope=region or "national",
        selected=result.selected,
        cap=result.cap,
        applications=PilotApplicationCounts(**result.applications),
        domains=[
            PilotDomainShare(domain=d.domain, pilots=d.pilots, share=d.share, target=d.target)
            for d in result.domains
        ],
        regions=[
            PilotRegionLine(
                region=line.region,
                name=REGIONS[line.region].name,
                quota=line.quota,
                selected=line.selected,
                remaining=line.remaining,
                applications=line.applications,
                envelope=line.envelope,
                committed=line.committed,
                paid=line.paid,
                late=line.late,
            )
            for line in result.regions
        ],
        budget=PilotBudget(
            budget=result.budget,
            selected=result.selected_amount,
            committed=result.committed,
            paid=result.paid,
            remaining=result.remaining,
        ),
        payments=PilotPaymentCounts(**result.payments, late=result.late),
    )


# Before the routes under /{pilot_id}, which would take "usage" for an id.
router.include_router(usage_router)


def _list_item(view: service.PilotView) -> dict[str, Any]:
    application, standing = view.application, view.standing
    return {
        "id": application.id,
        "finess": application.finess,
        "name": view.establishment.name,
        "legal_entity_finess": application.legal_entity_finess,
        "region": application.region_code,
        "domain": application.domain,
        "selected_on": application.decided_on,
        "amount": application.amount,
        "status": standing.status.value,
        "payable": standing.payable,
        "late": standing.late,
        "missing_evidence": list(standing.missing_evidence),
    }


def pilot_read(view: service.PilotView) -> PilotRead:
    standing = view.standing
    return PilotRead(
        **_list_item(view),
        deadlines=[
            PilotDeadline(step=d.step, due_by=d.due_by, done_on=d.done_on, late=d.late)
            for d in standing.deadlines
        ],
        paid_amount=standing.paid_amount,
        paid_on=standing.paid_on,
        events=[PilotEventRead.model_validate(e) for e in view.events],
    )


@router.get(
    "",
    dependencies=[requires(*Role)],
    response_model=Page[PilotListItem],
    summary="Pilots of the caller's region (national: all) and where their payment stands",
    responses={401: _PROBLEM, 404: _PROBLEM, 422: _PROBLEM},
)
async def list_pilots(
    session: SessionDep,
    principal: CurrentPrincipal,
    region: RegionQuery = None,
    status: PaymentStatus | None = None,
    domain: Domain | None = None,
    late: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[PilotListItem]:
    """`status`: `awaiting_convention`, `in_pilot`, `payable`, `paid`, `withdrawn`; `late`
    keeps the pilots with a step past its deadline."""
    region = service.region_in_scope(principal, region)
    views = await service.pilots_in_scope(session, principal, today(), region=region, domain=domain)
    if status is not None:
        views = [v for v in views if v.standing.status.value == status]
    if late is not None:
        views = [v for v in views if v.standing.late is late]
    return Page[PilotListItem](
        items=[PilotListItem(**_list_item(v)) for v in views[offset : offset + limit]],
        total=len(views),
        limit=limit,
        offset=offset,
    )


@router.get(
    "/{pilot_id}",
    dependencies=[requires(*Role)],
    response_model=PilotRead,
    summary="One pilot: its evidence, deadlines and payment",
    responses={401: _PROBLEM, 404: _PROBLEM},
)
async def get_pilot(pilot_id: RowId, session: SessionDep, principal: CurrentPrincipal) -> PilotRead:
    service.not_for_vendors(principal)
    return pilot_read(await service.pilot_view(session, principal, pilot_id, today()))


@router.post(
    "/{pilot_id}/events",
    dependencies=[requires(Role.ARS, Role.NATIONAL, sees=("pilot_id", _pilot))],
    status_code=201,
    response_model=PilotEventRead,
    summary="Record a funding step: convention, reports received, payment, withdrawal",
    responses={401: _PROBLEM, 403: _PROBLEM, 404: _PROBLEM, 409: _PROBLEM, 422: _PROBLEM},
)
async def create_event(
    pilot_id: RowId,
    payload: PilotEventCreate,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> PilotEventRead:
    """Steps come in order: `convention_signed`, `intermediate_report_received`,
    `final_report_received`, then `paid` (the flat sum, once the pilot period is over and all
    the evidence is recorded: `missing_evidence` otherwise). `withdrawn` frees the pilot's
    place. Steps past their deadline are recorded and flagged late."""
    event = await service.record_event(
        session,
        principal,
        pilot_id,
        rules.Event(payload.type, payload.date, payload.amount),
        today(),
    )
    await session.refresh(event)
    return PilotEventRead.model_validate(event)
