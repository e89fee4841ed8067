"""HTTP endpoints of the Mon espace santé pilots under /api/v1/pilots.

Access: `ars` records applications, selections and payment events of its own region and
reads it; `grades` reads its region; `national` reads and acts everywhere; a `vendor` sees no
pilot (404) except to push and read back the usage of the pilots in its projects. A write a
role can never do answers 403; anything outside the caller's scope, including a region other
than its own, answers 404.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.dependencies import AuthorisedRoute, CurrentPrincipal, requires
from app.access.principal import Principal, Role
from app.batches import batch_request_body, read_batch
from app.campaigns import current_campaign
from app.clock import Month, to_paris, today
from app.db import SessionDep
from app.errors import FieldError, Invalid, NotFound
from app.ingestion import BatchOptions, ingest
from app.ingestion.schemas import FieldMessage
from app.pilots import repository, rules, service
from app.pilots.models import PilotApplication, PilotEvent, PilotUsage
from app.pilots.schemas import (
    ApplicationStatusName,
    DomainName,
    PaymentStatusName,
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
    PilotRegionalUsage,
    PilotRegionalUsagePoint,
    PilotRegionLine,
    PilotsSummary,
    PilotUsageBatch,
    PilotUsageImportSummary,
    PilotUsagePoint,
    PilotUsageRevisionHistory,
    PilotUsageRevisionRead,
    PilotUsageSeries,
)
from app.pilots.usage.ingestion import PILOT_USAGE
from app.queries import FromQuery, ToQuery, month_bounds
from app.referential.geography import REGIONS
from app.referential.models import Establishment
from app.schemas import Page, RowId

router = APIRouter(prefix="/api/v1/pilots", tags=["pilots"], route_class=AuthorisedRoute)
_PROBLEM = {"content": {"application/problem+json": {}}}
RegionQuery = Annotated[
    str | None, Query(max_length=2, description="INSEE region code; default: the caller's")
]


def _messages(issues: list[FieldError]) -> list[FieldMessage]:
    return [FieldMessage(**issue.as_dict()) for issue in issues]


def _not_for_vendors(principal: Principal) -> None:
    if principal.role is Role.VENDOR:
        raise NotFound("Pilots are not in a vendor's scope.")


def _region_in_scope(principal: Principal, region: str | None) -> str | None:
    """The region a read is about: a national caller may name one (or none, for all)."""
    _not_for_vendors(principal)
    if region is not None and region not in REGIONS:
        raise Invalid(
            f"{region!r} is not a region.", [FieldError("region", "unknown_region", "INSEE code")]
        )
    if principal.role is Role.NATIONAL:
        return region
    if region is not None and region != principal.region_code:
        raise NotFound(f"Region {region} is not in your scope.")
    return principal.region_code


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
    status: ApplicationStatusName | None = None,
    domain: DomainName | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,  # a SQL OFFSET: bounded
) -> Page[PilotApplicationRead]:
    region = _region_in_scope(principal, region)
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
    _not_for_vendors(principal)
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
    region = _region_in_scope(principal, region)
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


@router.post(
    "/usage",
    dependencies=[requires(Role.VENDOR, Role.ARS, Role.NATIONAL)],
    summary="Push the pilots' monthly Mon espace santé usage",
    response_model=PilotUsageImportSummary,
    openapi_extra=batch_request_body(
        PilotUsageBatch,
        "finess,month,ins_qualified_identities,dmp_documents_sent,mssante_messages_sent,"
        "citizen_messages_sent\n750712184,2024-03,61,140,85,12\n",
    ),
    responses={
        400: _PROBLEM,
        401: _PROBLEM,
        403: _PROBLEM,
        409: _PROBLEM,
        413: _PROBLEM,
        422: _PROBLEM,
    },
)
async def push_usage(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    dry_run: Annotated[bool, Query(description="validate and report, store nothing")] = False,
    atomic: Annotated[bool, Query(description="store all rows or none")] = False,
) -> Response:
    """One row per pilot (FINESS ET) and completed month, the four counts integers ≥ 0. A
    vendor sends for the pilots in its projects, an ARS for its region's pilots. Re-sending a
    month creates a new revision (the latest is used, every one is kept); identical counts
    change nothing. `dry_run`, `atomic` and `Idempotency-Key` work as for /extracts."""
    rows, body, text_cells = await read_batch(request, "usage")
    summary = await ingest(
        session,
        principal,
        rows,
        BatchOptions(dry_run=dry_run, atomic=atomic),
        PILOT_USAGE,
        payload=body,
        text_cells=text_cells,
    )
    return Response(orjson.dumps(summary), media_type="application/json")


def _counts(row: Any) -> dict[str, int]:
    return {name: getattr(row, name) for name in rules.USAGE_COUNTS}


@router.get(
    "/usage",
    dependencies=[requires(*Role)],
    response_model=PilotRegionalUsage,
    summary="Monthly totals of the pilots' Mon espace santé usage per region (no targets)",
    responses={401: _PROBLEM, 404: _PROBLEM, 422: _PROBLEM},
)
async def regional_usage(
    session: SessionDep,
    principal: CurrentPrincipal,
    region: RegionQuery = None,
    from_: FromQuery = None,
    to: ToQuery = None,
) -> PilotRegionalUsage:
    """Sums over the region's pilots for each month, with the number of pilots that reported.
    National callers without `region` get every region."""
    region = _region_in_scope(principal, region)
    start, end = month_bounds(from_, to)
    records = await repository.regional_usage(
        session,
        service.campaign_key(),
        region,
        start.first_day if start else None,
        end.first_day if end else None,
    )
    return PilotRegionalUsage(
        region=region,
        items=[
            PilotRegionalUsagePoint(
                region=r["region_code"],
                month=str(Month.of(r["month"])),
                pilots_reporting=r["pilots_reporting"],
                counts={name: r[name] for name in rules.USAGE_COUNTS},
            )
            for r in records
        ],
    )


def _event_read(event: PilotEvent) -> PilotEventRead:
    return PilotEventRead(
        id=event.id,
        type=event.type,
        date=event.date,
        amount=event.amount,
        recorded_at=event.recorded_at,
    )


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
        events=[_event_read(e) for e in view.events],
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
    status: PaymentStatusName | None = None,
    domain: DomainName | None = None,
    late: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[PilotListItem]:
    """`status`: `awaiting_convention`, `in_pilot`, `payable`, `paid`, `withdrawn`; `late`
    keeps the pilots with a step past its deadline."""
    region = _region_in_scope(principal, region)
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
    _not_for_vendors(principal)
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
    return _event_read(event)


async def _usage_pilot(
    session: AsyncSession, principal: Principal, pilot_id: int
) -> PilotApplication:
    """A pilot whose usage the caller may read: a vendor, those in its projects."""
    application, _ = await service.application_in_scope(
        session, principal, pilot_id, pilots_only=True
    )
    return application


def _usage_point(row: PilotUsage) -> dict[str, Any]:
    return {
        "month": str(Month.of(row.month)),
        "revision": row.revision,
        "counts": _counts(row),
        "vendor_siren": row.vendor_siren,
        "sender_role": row.sender_role,
        "received_at": to_paris(row.received_at),
    }


@router.get(
    "/{pilot_id}/usage",
    dependencies=[requires(*Role)],
    response_model=PilotUsageSeries,
    summary="Time series of a pilot's Mon espace santé usage (latest revision of each month)",
    responses={401: _PROBLEM, 404: _PROBLEM, 422: _PROBLEM},
)
async def get_pilot_usage(
    pilot_id: RowId,
    session: SessionDep,
    principal: CurrentPrincipal,
    from_: FromQuery = None,
    to: ToQuery = None,
) -> PilotUsageSeries:
    application = await _usage_pilot(session, principal, pilot_id)
    start, end = month_bounds(from_, to)
    rows = await repository.usage_series(
        session, pilot_id, start.first_day if start else None, end.first_day if end else None
    )
    return PilotUsageSeries(
        pilot_id=pilot_id,
        finess=application.finess,
        items=[PilotUsagePoint(**_usage_point(r)) for r in rows],
    )


@router.get(
    "/{pilot_id}/usage/revisions",
    dependencies=[requires(*Role)],
    response_model=PilotUsageRevisionHistory,
    summary="Every revision of a pilot's usage, with who sent it and when",
    responses={401: _PROBLEM, 404: _PROBLEM, 422: _PROBLEM},
)
async def get_pilot_usage_revisions(
    pilot_id: RowId,
    session: SessionDep,
    principal: CurrentPrincipal,
    from_: FromQuery = None,
    to: ToQuery = None,
) -> PilotUsageRevisionHistory:
    application = await _usage_pilot(session, principal, pilot_id)
    start, end = month_bounds(from_, to)
    rows = await repository.usage_revisions(
        session, pilot_id, start.first_day if start else None, end.first_day if end else None
    )
    return PilotUsageRevisionHistory(
        pilot_id=pilot_id,
        finess=application.finess,
        items=[
            PilotUsageRevisionRead(
                **_usage_point(r),  # type: ignore[arg-type]
                sent_by_token=r.token_id,
                request_id=r.request_id,
            )
            for r in rows
        ],
    )
