"""Controls (instruction 2023/13, annexe 4 C): load what establishments declared and run the
signal rules, draw and store the year's control plan, record controls and the recovery of
what they found unduly paid. Every write is audited."""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal, Role
from app.audit import service as audit
from app.campaigns import current_campaign
from app.clock import Month, to_paris, today
from app.controls import repository
from app.controls.draw import Candidate, Draw, DrawMethod, draw
from app.controls.models import Control, ControlPlan, ControlRecoveryEvent
from app.controls.recovery import (
    ZERO,
    RecoveryEvent,
    RecoveryEventType,
    RecoveryRefused,
    check_event,
    recoverable,
)
from app.controls.risk import score
from app.controls.signals import (
    Declared,
    FrozenAttempt,
    Milestone,
    Period,
    Revision,
    Signal,
    signals,
)
from app.controls.thresholds import current_thresholds
from app.dashboards.filters import Filters
from app.errors import Conflict, FieldError, Forbidden, Invalid, NotFound
from app.extracts.models import REQUIRED_COUNTS
from app.memo import keeper
from app.referential.geography import REGIONS, departments_of_region
from app.referential.models import Establishment
from app.request_context import current_request_id


@dataclass(frozen=True)
class Assessed:
    """One establishment's signals and risk score."""

    finess: str
    name: str
    department: str
    region: str
    project_id: int | None
    project_reference: str | None
    vendor_siren: str | None
    score: int
    signals: list[Signal]


def _counts(row: Any) -> dict[str, int | None]:
    return {name: row[name] for name in REQUIRED_COUNTS}


# A region's (or the country's) assessment reads every declared period of its
# establishments: about 20 s for the country's 40 000. Kept per scope while the data has not
# moved, so the list's pages and every later visit read it from memory.
_assessments = keeper(16)


async def assess_scope(
    session: AsyncSession, principal: Principal, region: str | None, version: int
) -> list[Assessed]:
    """`assess` of a whole region (or of the caller's whole scope), kept in this process
    while the data version and the day are those it was computed at. `version`: the data
    version as the request arrived, read before computing, so what is kept under it holds
    every write of that version."""
    key = (principal.scope_key, region)
    stamp = f"{version}|{today()}"
    found, assessed = _assessments.get(key, stamp)
    if not found:
        assessed = await assess(session, principal, region)
        _assessments.keep(key, stamp, assessed)
    return assessed


async def assess(
    session: AsyncSession,
    principal: Principal,
    region: str | None = None,
    finess: str | None = None,
    project: int | None = None,
) -> list[Assessed]:
    """Signals and risk of the establishments of the caller's scope that declared figures
    (of a region, one establishment or one project), riskiest first. Counts shared with
    establishments of the same vendor or EJ are looked for among all those of the scope."""
    filters = Filters(region=region, project=project)
    wanted = await repository.establishments_with_data(session, principal, filters, finess)
    if not wanted:
        return []
    rows = wanted
    if finess is not None or project is not None:
        vendors = sorted({r["vendor_siren"] for r in wanted if r["vendor_siren"]})
        entities = sorted({r["legal_entity_finess"] for r in wanted})
        rows = await repository.establishments_with_data(
            session, principal, Filters(), peers_of=(vendors, entities)
        )
    numbers = [r["finess"] for r in rows]
    periods: dict[str, list[Period]] = defaultdict(list)
    for p in await repository.periods(session, numbers):
        periods[p["finess"]].append(
            Period(Month.of(p["period_start"]), Month.of(p["period_end"]), _counts(p))
        )
    revisions: dict[str, list[Revision]] = defaultdict(list)
    for r in await repository.revised_periods(session, numbers):
        revisions[r["finess"]].append(
            Revision(
                Month.of(r["period_start"]),
                Month.of(r["period_end"]),
                r["revision"],
                to_paris(r["received_at"]).date(),
                None if r["withdrawn"] else _counts(r),
            )
        )
    milestones: dict[int, list[Milestone]] = defaultdict(list)
    project_ids = sorted({r["project_id"] for r in rows if r["project_id"] is not None})
    for m in await repository.milestones(session, project_ids):
        milestones[m["project_id"]].append(Milestone(m["type"], m["date"]))
    attempts: dict[str, list[FrozenAttempt]] = defaultdict(list)
    for a in await repository.frozen_attempts(session, numbers):
        attempts[a["finess"]].append(
            FrozenAttempt(
                Month.of(a["period_start"]),
                Month.of(a["period_end"]),
                to_paris(a["attempted_at"]).date(),
            )
        )
    declared = [
        Declared(
            finess=r["finess"],
            legal_entity=r["legal_entity_finess"],
            vendor=r["vendor_siren"],
            periods=periods[r["finess"]],
            revisions=revisions[r["finess"]],
            milestones=milestones.get(r["project_id"], []),
            frozen_attempts=attempts[r["finess"]],
        )
        for r in rows
    ]
    thresholds = current_thresholds()
    found = signals(declared, current_campaign().targets, thresholds)
    assessed = [
        Assessed(
            finess=r["finess"],
            name=r["name"],
            department=r["department"],
            region=r["region_code"],
            project_id=r["project_id"],
            project_reference=r["project_reference"],
            vendor_siren=r["vendor_siren"],
            score=score(found[r["finess"]], thresholds.weights),
            signals=found[r["finess"]],
        )
        for r in wanted
    ]
    return sorted(assessed, key=lambda a: (-a.score, a.finess))


async def record_frozen_attempts(
    session: AsyncSession, principal: Principal, rows: Iterable[Any]
) -> None:
    """Keep the rows of a batch that ingestion refused because they revise a frozen period
    (error `period_locked`): they feed the `frozen_period_revision` signal."""
    attempts = [
        (row.finess, row.start.first_day, row.end.first_day)
        for row in rows
        if row.errors and any(e.code == "period_locked" for e in row.errors)
    ]
    if not attempts:
        return
    request_id = current_request_id()
    await repository.record_frozen_attempts(
        session, attempts, principal.vendor_siren, principal.token_id, request_id
    )
    await audit.record(
        session,
        principal,
        "extracts.frozen_revision_refused",
        "extract_batch",
        request_id or "",
        detail={"periods": [f"{f}/{Month.of(s)}" for f, s, _ in attempts][:100]},
    )


@dataclass(frozen=True)
class PlanDraw:
    region: str
    year: int
    method: DrawMethod
    seed: int
    per_department: int
    extra: int
    candidates: list[Candidate]
    result: Draw


async def compute_draw(
    session: AsyncSession,
    principal: Principal,
    region: str,
    year: int,
    method: DrawMethod,
    seed: int | None,
    extra: int,
) -> PlanDraw:
    """The draw over the region's funded establishments, with their risk scores now."""
    if region not in REGIONS:
        raise NotFound(f"Region {region} does not exist.")
    scores = {a.finess: a.score for a in await assess(session, principal, region)}
    candidates = [
        Candidate(row["finess"], row["department"], scores.get(row["finess"], 0))
        for row in await repository.plan_candidates(session, region, year)
    ]
    seed = secrets.randbelow(10**12) if seed is None else seed
    per_department = current_thresholds().per_department
    departments = [d.code for d in departments_of_region(region)]
    result = draw(candidates, departments, method, seed, per_department, extra)
    return PlanDraw(region, year, method, seed, per_department, extra, candidates, result)


async def store_plan(session: AsyncSession, principal: Principal, drawn: PlanDraw) -> ControlPlan:
    if await repository.plan_of(session, drawn.region, drawn.year) is not None:
        raise Conflict(
            f"Region {drawn.region} already has its {drawn.year} control plan.",
            [FieldError("year", "plan_exists", "one plan per region and year")],
        )
    plan = ControlPlan(
        region_code=drawn.region,
        year=drawn.year,
        method=drawn.method.value,
        seed=drawn.seed,
        per_department=drawn.per_department,
        extra=drawn.extra,
        candidates=[[c.finess, c.department, c.risk_score] for c in drawn.candidates],
        uncovered=list(drawn.result.uncovered),
        token_id=principal.token_id,
    )
    lines = [
        {
            "finess": p.finess,
            "position": position,
            "department": p.department,
            "risk_score": p.risk_score,
            "reason": p.reason.value,
            "draw_key": p.draw_key,
        }
        for position, p in enumerate(drawn.result.picks, start=1)
    ]
    try:
        async with session.begin_nested():
            await repository.add_plan(session, plan, lines)
    except IntegrityError as exc:
        raise Conflict(
            f"Region {drawn.region}'s {drawn.year} control plan was just drawn.",
            [FieldError("year", "plan_exists", "one plan per region and year")],
        ) from exc
    await audit.record(
        session,
        principal,
        "controls.plan_draw",
        "control_plan",
        str(plan.id),
        region_code=drawn.region,
        detail={
            "year": drawn.year,
            "method": drawn.method.value,
            "seed": drawn.seed,
            "extra": drawn.extra,
            "candidates": len(drawn.candidates),
            "establishments": [p.finess for p in drawn.result.picks],
        },
    )
    return plan


def replay(plan: ControlPlan) -> Draw:
    """The draw again, from the candidates and seed stored with the plan."""
    candidates = [Candidate(f, d, s) for f, d, s in plan.candidates]
    departments = [d.code for d in departments_of_region(plan.region_code)]
    return draw(
        candidates, departments, DrawMethod(plan.method), plan.seed, plan.per_department, plan.extra
    )


def visible_regions(principal: Principal) -> list[str] | None:
    """Regions whose plans and controls the caller sees (None: all)."""
    if principal.role is Role.NATIONAL:
        return None
    if principal.role is Role.ARS and principal.region_code:
        return [principal.region_code]
    raise Forbidden("Controls are for ars and national tokens.")


async def visible_plan(session: AsyncSession, principal: Principal, plan_id: int) -> ControlPlan:
    plan = await session.get(ControlPlan, plan_id)
    regions = visible_regions(principal)
    if plan is None or (regions is not None and plan.region_code not in regions):
        raise NotFound(f"Control plan {plan_id} not found.")
    return plan


@dataclass(frozen=True)
class NewControl:
    finess: str
    kind: str
    controlled_on: date
    findings: str
    compliant: bool
    unduly_paid: Decimal
    plan_id: int | None


async def record_control(
    session: AsyncSession,
    principal: Principal,
    new: NewControl,
    today: date,
) -> Control:
    if principal.role is not Role.ARS:
        raise Forbidden("Only ars tokens record controls.")
    region = principal.region_code or ""
    establishment = await session.get(Establishment, new.finess)
    project = await repository.project_of(session, new.finess)
    if establishment is None or (
        establishment.region_code != region and (project is None or project[1] != region)
    ):
        raise NotFound(f"Establishment {new.finess} not found.")
    if new.plan_id is not None:
        plan = await visible_plan(session, principal, new.plan_id)
        if plan.region_code != region:
            raise NotFound(f"Control plan {new.plan_id} not found.")
    errors = []
    if new.controlled_on > today:
        errors.append(
            FieldError("controlled_on", "in_the_future", f"{new.controlled_on} is after today")
        )
    if new.compliant and new.unduly_paid > 0:
        errors.append(
            FieldError(
                "unduly_paid",
                "compliant_owes_nothing",
                "a control that finds an amount unduly paid is not compliant",
            )
        )
    if new.unduly_paid > 0 and not errors:
        ceiling = ZERO
        if project is not None:
            ceiling = recoverable(*await repository.paid_and_found(session, project[0]))
        if new.unduly_paid > ceiling:
            errors.append(
                FieldError(
                    "unduly_paid",
                    "above_what_was_paid",
                    f"at most {ceiling} € can be found unduly paid: what the project was paid "
                    "(advances and balance), less what earlier controls already found"
                    if project is not None
                    else "this establishment belongs to no funded project: nothing was paid",
                )
            )
    if errors:
        raise Invalid("The control cannot be recorded.", errors)
    control = Control(
        region_code=region,
        finess=new.finess,
        project_id=project[0] if project else None,
        plan_id=new.plan_id,
        kind=new.kind,
        controlled_on=new.controlled_on,
        findings=new.findings,
        compliant=new.compliant,
        unduly_paid=new.unduly_paid,
        token_id=principal.token_id,
    )
    session.add(control)
    await session.flush()
    await audit.record(
        session,
        principal,
        "controls.record",
        "control",
        str(control.id),
        region_code=region,
        detail={
            "finess": new.finess,
            "kind": new.kind,
            "compliant": new.compliant,
            "unduly_paid": str(new.unduly_paid),
        },
    )
    return control


def _events(rows: Iterable[ControlRecoveryEvent]) -> list[RecoveryEvent]:
    return [
        RecoveryEvent(RecoveryEventType(r.type), r.date, r.amount, r.proof_reference) for r in rows
    ]


async def record_recovery(
    session: AsyncSession,
    principal: Principal,
    control_id: int,
    event: RecoveryEvent,
    today: date,
) -> ControlRecoveryEvent:
    if principal.role is not Role.ARS:
        raise Forbidden("Only ars tokens record recoveries.")
    control = await repository.lock_control(session, control_id)
    if control is None or control.region_code != principal.region_code:
        raise NotFound(f"Control {control_id} not found.")
    recorded = _events(await repository.recovery_events(session, [control.id]))
    try:
        amount = check_event(
            event,
            unduly_paid=control.unduly_paid,
            controlled_on=control.controlled_on,
            events=recorded,
            today=today,
        )
    except RecoveryRefused as refused:
        error = FieldError(refused.field, refused.code, str(refused))
        if refused.conflict:
            raise Conflict(str(refused), [error]) from refused
        raise Invalid(str(refused), [error]) from refused
    row = ControlRecoveryEvent(
        control_id=control.id,
        type=event.type.value,
        date=event.on,
        amount=amount,
        proof_reference=event.proof_reference.strip(),
        token_id=principal.token_id,
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        principal,
        f"controls.recovery_{event.type.value}",
        "control",
        str(control.id),
        region_code=control.region_code,
        detail={
            "amount": None if amount is None else str(amount),
            "proof_reference": row.proof_reference,
        },
    )
    return row


def remaining_of(row: Any) -> Decimal:
    return Decimal(row["unduly_paid"]) - Decimal(row["recovered"])
