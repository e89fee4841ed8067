"""Pilots: record applications, select under the lock, follow the payment evidence, ingest
the pilots' Mon espace santé usage. Each function loads, calls the pure rules, stores and
records the write in the audit trail; the request dependency commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal, Role
from app.access.scopes import Scope
from app.audit import service as audit
from app.campaigns import Campaign, current_campaign
from app.errors import Conflict, FieldError, Invalid, NotFound
from app.pilots import repository, rules
from app.pilots.models import PilotApplication, PilotEvent
from app.pilots.rules import ApplicationStatus, EventType
from app.pilots.schemas import PilotApplicationCreate, PilotDecisionCreate
from app.pilots.vocabulary import PILOT_STATUSES
from app.referential.geography import REGIONS
from app.referential.models import Establishment
from app.referential.repository import finess_or_invalid


def campaign_key(campaign: Campaign | None = None) -> str:
    return str((campaign or current_campaign()).year)


def not_for_vendors(principal: Principal) -> None:
    if principal.role is Role.VENDOR:
        raise NotFound("Pilots are not in a vendor's scope.")


def region_in_scope(principal: Principal, region: str | None) -> str | None:
    """The region a read is about: a national caller may name one (or none, for all)."""
    not_for_vendors(principal)
    if region is not None and region not in REGIONS:
        raise Invalid(
            f"{region!r} is not a region.", [FieldError("region", "unknown_region", "INSEE code")]
        )
    if principal.role is Role.NATIONAL:
        return region
    if region is not None and region != principal.region_code:
        raise NotFound(f"Region {region} is not in your scope.")
    return principal.region_code


def application_facts(row: PilotApplication, establishment: Establishment) -> rules.Application:
    """The application as the rules see it, with the establishment's current category."""
    return rules.Application(
        finess=row.finess,
        legal_entity_finess=row.legal_entity_finess,
        region=row.region_code,
        domain=rules.Domain(row.domain),
        category_code=establishment.category_code,
        technical_maturity=rules.Maturity(row.technical_maturity),
        dmp_connection=rules.Connection(row.dmp_connection),
        mssante_connection=rules.Connection(row.mssante_connection),
        applied_on=row.applied_on,
    )


async def application_in_scope(
    session: AsyncSession, principal: Principal, application_id: int, *, pilots_only: bool = False
) -> tuple[PilotApplication, Establishment]:
    found = await repository.visible_application(
        session, principal, application_id, pilots_only=pilots_only
    )
    if found is None:
        kind = "Pilot" if pilots_only else "Pilot application"
        raise NotFound(f"{kind} {application_id} not found.")
    return found


async def record_application(
    session: AsyncSession,
    principal: Principal,
    payload: PilotApplicationCreate,
    today: date,
) -> tuple[PilotApplication, Establishment]:
    """Record an application of an establishment of the referential in the caller's region."""
    finess = finess_or_invalid(payload.finess)
    establishment = await repository.establishment(session, finess)
    if establishment is None:
        raise Invalid(
            f"Establishment {finess} is not in the FINESS referential.",
            [FieldError("finess", "unknown_finess", "register it in the referential first")],
        )
    if not Scope.of(principal).sees_region(establishment.region_code):
        raise NotFound(
            f"Establishment {finess} not found in region {principal.region_code}.",
            [FieldError("finess", "not_in_region", "an ARS records its own region's applications")],
        )
    checked = rules.check_application(
        declared_domain=payload.domain,
        declared_legal_entity=payload.legal_entity_finess,
        referential_legal_entity=establishment.legal_entity_finess,
        category_code=establishment.category_code,
        applied_on=payload.applied_on,
        today=today,
    )
    if checked.errors:
        raise Invalid("The application cannot be recorded.", list(checked.errors))
    assert checked.domain is not None
    key = campaign_key()
    if await repository.application_of(session, key, finess) is not None:
        raise _already_applied(finess)
    row = PilotApplication(
        campaign=key,
        finess=finess,
        legal_entity_finess=checked.legal_entity_finess,
        region_code=establishment.region_code,
        domain=checked.domain.value,
        technical_maturity=payload.technical_maturity,
        dmp_connection=payload.dmp_connection,
        mssante_connection=payload.mssante_connection,
        applied_on=payload.applied_on,
        status=ApplicationStatus.APPLIED.value,
        token_id=principal.token_id,
    )
    session.add(row)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:  # recorded by someone else since we looked
        raise _already_applied(finess) from exc
    await audit.record(
        session,
        principal,
        "pilot.application.create",
        "pilot_application",
        str(row.id),
        payload=payload.model_dump(mode="json"),
        region_code=row.region_code,
        detail={"finess": finess, "domain": row.domain},
    )
    return row, establishment


def _already_applied(finess: str) -> Conflict:
    return Conflict(
        f"Establishment {finess} has already applied in this campaign.",
        [FieldError("finess", "already_applied", "one application per establishment")],
    )


async def decide(
    session: AsyncSession,
    principal: Principal,
    application_id: int,
    payload: PilotDecisionCreate,
    today: date,
) -> tuple[PilotApplication, Establishment, list[FieldError]]:
    """Select an application (every rule of annexe 1 2), under the national lock) or record
    that it is not selected. Returns the application and the selection's warnings."""
    _, establishment = await application_in_scope(session, principal, application_id)
    campaign = current_campaign()
    warnings: list[FieldError] = []
    if payload.decision == "selected":
        # Lock first, then read: the counts include every selection committed before ours.
        await repository.lock_selection(session, campaign.year)
        row = await repository.application_for_update(session, application_id)
        facts = application_facts(row, establishment)
        counts = await repository.selected_counts(
            session, row.campaign, row.region_code, row.legal_entity_finess, row.domain
        )
        errors = rules.check_selection(
            facts, ApplicationStatus(row.status), payload.decided_on, counts, campaign.pilots, today
        )
        if errors:
            raise Invalid("The application cannot be selected.", errors)
        warnings = rules.selection_warnings(facts, counts, campaign.pilots)
        row.amount = campaign.pilots.amount_per_pilot
    else:
        row = await repository.application_for_update(session, application_id)
        errors = rules.check_decline(
            ApplicationStatus(row.status), row.applied_on, payload.decided_on, today
        )
        if errors:
            raise Invalid("The decision cannot be recorded.", errors)
    row.status = ApplicationStatus(payload.decision)
    row.decided_on = payload.decided_on
    row.decision_reason = payload.reason
    await session.flush()
    await audit.record(
        session,
        principal,
        f"pilot.application.{payload.decision}",
        "pilot_application",
        str(row.id),
        payload=payload.model_dump(mode="json"),
        region_code=row.region_code,
        detail={
            "finess": row.finess,
            "decided_on": str(payload.decided_on),
            "amount": None if row.amount is None else str(row.amount),
        },
    )
    return row, establishment, warnings


@dataclass(frozen=True)
class PilotView:
    application: PilotApplication
    establishment: Establishment
    events: tuple[PilotEvent, ...]
    standing: rules.PilotStanding


def _history(events: Sequence[PilotEvent]) -> list[rules.Event]:
    return [rules.Event(e.type, e.date, e.amount) for e in events]


async def pilots_in_scope(
    session: AsyncSession,
    principal: Principal,
    today: date,
    *,
    region: str | None = None,
    domain: str | None = None,
) -> list[PilotView]:
    """Selected and withdrawn pilots of the caller's scope with where they stand (at most the
    national cap, so the rules run per pilot)."""
    found, _ = await repository.list_applications(
        session,
        principal,
        campaign_key(),
        region=region,
        statuses=PILOT_STATUSES,
        domain=domain,
    )
    return await _views(session, found, today)


async def _views(
    session: AsyncSession, found: Sequence[tuple[PilotApplication, Establishment]], today: date
) -> list[PilotView]:
    events = await repository.events_of(session, [a.id for a, _ in found])
    calendar = current_campaign().pilots.calendar
    return [
        PilotView(
            application,
            establishment,
            tuple(events.get(application.id, [])),
            rules.standing(_history(events.get(application.id, [])), calendar, today),
        )
        for application, establishment in found
    ]


async def pilot_view(
    session: AsyncSession, principal: Principal, pilot_id: int, today: date
) -> PilotView:
    found = await application_in_scope(session, principal, pilot_id, pilots_only=True)
    return (await _views(session, [found], today))[0]


async def record_event(
    session: AsyncSession,
    principal: Principal,
    pilot_id: int,
    new: rules.Event,
    today: date,
) -> PilotEvent:
    """Check the event against the pilot's history and the calendar, store it; a withdrawal
    frees the pilot's place."""
    await application_in_scope(session, principal, pilot_id, pilots_only=True)
    # Two events at once for the same pilot are checked one after the other.
    row = await repository.application_for_update(session, pilot_id)
    events = (await repository.events_of(session, [pilot_id])).get(pilot_id, [])
    assert row.decided_on is not None and row.amount is not None
    pilots = current_campaign().pilots
    errors = rules.check_event(
        new,
        _history(events),
        rules.PilotFacts(selected_on=row.decided_on, amount=row.amount),
        pilots.calendar,
        today,
    )
    if errors:
        raise Invalid(f"The {new.type} event cannot be recorded.", errors)
    event = PilotEvent(
        application_id=pilot_id,
        type=new.type,
        date=new.date,
        amount=row.amount if new.type == EventType.PAID else None,
        token_id=principal.token_id,
    )
    session.add(event)
    if new.type == EventType.WITHDRAWN:
        row.status = ApplicationStatus.WITHDRAWN
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"{new.type} was just recorded for this pilot.",
            [FieldError("type", "already_recorded", f"{new.type} is already recorded")],
        ) from exc
    await audit.record(
        session,
        principal,
        f"pilot.event.{new.type}",
        "pilot_application",
        str(pilot_id),
        region_code=row.region_code,
        detail={
            "type": new.type,
            "date": str(new.date),
            "amount": None if event.amount is None else str(event.amount),
        },
    )
    return event


async def summary(
    session: AsyncSession, principal: Principal, region: str | None, today: date
) -> rules.Summary:
    """The national view (national caller, no region) or one region's."""
    return (await summaries(session, principal, [region], today))[region]


async def summaries(
    session: AsyncSession, principal: Principal, regions: Sequence[str | None], today: date
) -> dict[str | None, rules.Summary]:
    """`summary` of each of `regions` (None: the national view) from one read of the
    applications and pilots."""
    named = sorted({region for region in regions if region is not None})
    wanted = None if None in regions else named
    key = campaign_key()
    counts = await repository.application_counts(session, key, wanted)
    only = wanted[0] if wanted is not None and len(wanted) == 1 else None
    views = await pilots_in_scope(session, principal, today, region=only)
    lines = [
        rules.PilotLine(
            view.application.region_code,
            view.application.domain,
            view.application.amount,
            view.standing,
        )
        for view in views
        if view.application.amount is not None
    ]
    pilots = current_campaign().pilots
    return {
        region: rules.summarise(lines, counts, pilots, None if region is None else [region])
        for region in regions
    }
