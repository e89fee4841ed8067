"""Dashboards: SQL aggregates, shaped for GRADeS and ARS; project figures from the rules."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal, Role
from app.campaigns import current_campaign
from app.clock import Month, today
from app.controls import repository as controls_repository
from app.dashboards import repository, rollup
from app.dashboards.filters import Filters, rollup_scope, scope_sql
from app.dashboards.schemas import (
    Breakdown,
    BreakdownRow,
    DashboardSummary,
    EstablishmentCounts,
    FundingTotals,
    MissingReport,
    MonthlySeries,
    MonthPoint,
    PilotFigures,
    Quartiles,
    ReportRow,
    ScopeOut,
)
from app.db import get_database
from app.errors import NotFound
from app.indicators.rules import RATES, Ratio, display
from app.pilots.rules import Summary as PilotSummary
from app.pilots.service import summaries as pilot_summaries
from app.pilots.service import summary as pilot_summary
from app.projects import standings as project_standings
from app.projects.payments import ProjectStanding, standings_of
from app.projects.standings import ListQuery
from app.projects.vocabulary import BalanceStatus
from app.referential.geography import REGIONS

ZERO = Decimal(0)
DEFAULT_MONTHS = 12
STATUSES = tuple(BalanceStatus)


def last_completed_month() -> Month:
    return Month.current().plus(-1)


def share(part: int, whole: int) -> Decimal | None:
    return display(Ratio(part, whole)) if whole else None


def one_decimal(value: float | None) -> Decimal | None:
    if value is None:
        return None
    return Decimal(repr(value)).quantize(Decimal("0.1"), rounding="ROUND_HALF_UP")


def scope_out(filters: Filters) -> ScopeOut:
    return ScopeOut(
        region=filters.region,
        department=filters.department,
        category=filters.category,
        vendor=filters.vendor,
        project=filters.project,
        start=str(filters.start) if filters.start else None,
        end=str(filters.end) if filters.end else None,
    )


def _params(principal: Principal, filters: Filters) -> tuple[str, dict[str, Any]]:
    scope, params = scope_sql(principal, filters)
    params |= repository.target_params(dict(current_campaign().targets))
    params["last"] = last_completed_month().first_day
    return scope, params


async def _standings(
    session: AsyncSession, scope: str, params: dict[str, Any]
) -> list[ProjectStanding]:
    ids = await repository.project_ids(session, scope, params)
    return await standings_of(session, ids, today())


def _envelope(principal: Principal, filters: Filters) -> Decimal:
    envelopes = current_campaign().regional_envelopes
    region = filters.region or (
        principal.region_code if principal.role is not Role.NATIONAL else None
    )
    if region:
        return envelopes.get(region, ZERO)
    return sum(envelopes.values(), ZERO)


def funding_totals(items: list[ProjectStanding], envelope: Decimal) -> FundingTotals:
    deadline = current_campaign().engagement_deadline
    committed = advanced = payable = to_recover = paid = ZERO
    for item in items:
        notified = next((e.date for e in item.events if e.type == "notified"), None)
        if notified is not None and notified < deadline:
            committed += item.project.total or ZERO
        advanced += sum((e.amount or ZERO for e in item.events if e.type == "advance_paid"), ZERO)
        paid += sum((e.amount or ZERO for e in item.events if e.type == "balance_paid"), ZERO)
        due = item.compliance.balance_due
        decided = any(e.type == "balance_decision" for e in item.events)
        if item.compliance.qualifies_for_balance and due is not None and not decided:
            if due >= 0:
                payable += due
            else:
                to_recover -= due
    return FundingTotals(
        envelope=envelope,
        committed=committed,
        advanced=advanced,
        payable=payable,
        to_recover=to_recover,
        balance_paid=paid,
    )


def assemble(
    filters: Filters,
    counts: dict[str, Any],
    statuses: list[Any],
    envelope: Decimal,
    controls_to_recover: Decimal,
    pilots: PilotFigures | None,
) -> DashboardSummary:
    """A dashboard summary from its gathered figures: the establishments' counts, the
    projects and funding by balance status, what controls still have to recover."""
    by_status = {row["status"]: row for row in statuses}

    def total(name: str) -> Decimal:
        return sum((Decimal(row[name]) for row in by_status.values()), ZERO)

    return DashboardSummary(
        scope=scope_out(filters),
        last_completed_month=str(last_completed_month()),
        counts=EstablishmentCounts(**counts),
        share_meeting_all_targets=share(counts["meeting_all_targets"], counts["reporting"]),
        projects_by_status={
            status: by_status[status]["projects"] if status in by_status else 0
            for status in STATUSES
        },
        funding=FundingTotals(
            envelope=envelope,
            committed=total("committed"),
            advanced=total("advanced"),
            payable=total("payable"),
            to_recover=total("to_recover") + controls_to_recover,
            balance_paid=total("balance_paid"),
        ),
        pilots=pilots,
    )


async def _fresh_summaries(session: AsyncSession) -> rollup.Basis:
    """The basis of the summary rollups, refreshed first if a write is not in them yet."""
    basis = rollup.current_basis()
    if not await rollup.summary_fresh(session, basis):
        await rollup.refresh_stale(get_database(), basis, months=False)
    return basis


async def summary(
    session: AsyncSession, principal: Principal, filters: Filters
) -> DashboardSummary:
    rolled = rollup_scope(principal, filters)
    if rolled == rollup.NATIONAL_SCOPE:
        # the whole country: one pass for every scope costs less than its own aggregate
        basis, fresh = await _fresh_summaries(session), True
    else:
        basis = rollup.current_basis()
        fresh = rolled is not None and await rollup.summary_fresh(session, basis)
    if rolled is not None and fresh:
        counts, statuses = await rollup.summary(session, rolled, basis)
    else:
        scope, params = _params(principal, filters)
        counts = await repository.summary(session, scope, params)
        statuses = await repository.project_figures(
            session, scope, params, current_campaign().engagement_deadline
        )
    return assemble(
        filters,
        counts,
        statuses,
        _envelope(principal, filters),
        await _controls_to_recover(session, principal, filters),
        await _pilots(session, principal, filters),
    )


async def summaries_by_region(
    session: AsyncSession, principal: Principal
) -> dict[str | None, DashboardSummary]:
    """The national team's `summary` of every region (by its code) and of the country (None),
    gathered once for all of them: one read of each rollup, of the controls' remaining
    amounts and of the pilots."""
    if principal.role is not Role.NATIONAL:
        raise NotFound("Every region's summary is for the national team.")
    regions: list[str | None] = [None, *REGIONS]
    basis = await _fresh_summaries(session)
    rolled: dict[str | None, str] = {}
    for code in regions:
        scope = rollup_scope(principal, Filters(region=code))
        assert scope is not None  # a region or the country: always a rollup scope
        rolled[code] = scope
    gathered = await rollup.summaries(session, list(rolled.values()), basis)
    where, params = scope_sql(principal, Filters())
    controls = await controls_repository.remaining_to_recover_by_region(session, where, params)
    pilots = await pilot_summaries(session, principal, regions, today())
    result = {}
    for code in regions:
        filters = Filters(region=code)
        counts, statuses = gathered[rolled[code]]
        to_recover = sum(controls.values(), ZERO) if code is None else controls.get(code, ZERO)
        result[code] = assemble(
            filters,
            counts,
            statuses,
            _envelope(principal, filters),
            to_recover,
            pilot_figures(pilots[code]),
        )
    return result


async def _controls_to_recover(
    session: AsyncSession, principal: Principal, filters: Filters
) -> Decimal:
    """What controls found unduly paid and is not recovered yet (annexe 4 C 3), for the
    establishments of the scope: an ARS's own controls, every one for the national team.
    Controls are not shown to GRADeS and vendors."""
    if principal.role not in (Role.ARS, Role.NATIONAL):
        return ZERO
    scope, params = scope_sql(principal, filters)
    region = principal.region_code if principal.role is Role.ARS else None
    return await controls_repository.remaining_to_recover(session, scope, params, region)


def pilot_figures(result: PilotSummary) -> PilotFigures:
    return PilotFigures(
        selected=result.selected,
        cap=result.cap,
        budget=result.budget,
        committed=result.committed,
        paid=result.paid,
        payable=result.payments.get("payable", 0),
        late=result.late,
    )


async def _pilots(
    session: AsyncSession, principal: Principal, filters: Filters
) -> PilotFigures | None:
    """The pilots of a national or regional scope (they are not followed by category,
    vendor or project)."""
    if principal.role is Role.VENDOR or any(
        (filters.department, filters.category, filters.vendor, filters.project)
    ):
        return None
    region = filters.region or (
        principal.region_code if principal.role is not Role.NATIONAL else None
    )
    return pilot_figures(await pilot_summary(session, principal, region, today()))


async def monthly(session: AsyncSession, principal: Principal, filters: Filters) -> MonthlySeries:
    end = filters.end or last_completed_month()
    start = filters.start or end.plus(1 - DEFAULT_MONTHS)
    first, last = start.first_day, end.first_day
    rolled = rollup_scope(principal, filters)
    rows: list[Any] = []
    stale: list[date] | None = None
    if rolled is not None:
        rows, stale = await rollup.monthly(session, rolled, rollup.current_basis(), first, last)
    if rolled is None or stale is None or stale:
        # what the rollup cannot answer yet, or at all, is aggregated on the fly
        scope, params = _params(principal, filters)
        rows = sorted(
            [*rows, *await repository.monthly(session, scope, params, first, last, stale)],
            key=lambda row: row["month"],
        )
    items = []
    for row in rows:
        reporting = row["reporting"]
        meeting = {code: row[f"{code}_met"] for code in RATES}
        quartiles = {}
        for code in RATES:
            q = row[f"{code}_q"] or [None, None, None]
            quartiles[code] = Quartiles(
                q1=one_decimal(q[0]), median=one_decimal(q[1]), q3=one_decimal(q[2])
            )
        items.append(
            MonthPoint(
                month=str(Month.of(row["month"])),
                reporting=reporting,
                meeting=meeting,
                share_meeting={code: share(n, reporting) for code, n in meeting.items()},
                meeting_all_targets=row["all_met"],
                share_meeting_all_targets=share(row["all_met"], reporting),
                quartiles=quartiles,
            )
        )
    return MonthlySeries(
        scope=scope_out(Filters(**{**filters.__dict__, "start": start, "end": end})), items=items
    )


async def breakdown(
    session: AsyncSession, principal: Principal, filters: Filters, by: str
) -> Breakdown:
    scope, params = _params(principal, filters)
    if by == "project_status":
        items = await _standings(session, scope, params)
        groups: dict[str, list[ProjectStanding]] = {}
        for item in items:
            groups.setdefault(item.compliance.status.value, []).append(item)
        lines: list[BreakdownRow] = []
        for status in STATUSES:
            members = groups.get(status, [])
            establishments = sum(len(m.compliance.establishments) for m in members)
            meeting = sum(
                1 for m in members for e in m.compliance.establishments if e.meets_targets
            )
            reported = sum(
                1
                for m in members
                for e in m.compliance.establishments
                if e.latest_period and Month.of(e.latest_period.end) == last_completed_month()
            )
            lines.append(
                BreakdownRow(
                    key=status,
                    label=f"{len(members)} projects",
                    establishments=establishments,
                    in_projects=establishments,
                    reported_last_month=reported,
                    meeting_all_targets=meeting,
                    share_meeting_all_targets=share(meeting, establishments),
                )
            )
        return Breakdown(by=by, scope=scope_out(filters), items=lines)
    rows = await repository.breakdown(session, by, scope, params)
    return Breakdown(
        by=by,
        scope=scope_out(filters),
        items=[
            BreakdownRow(
                **{
                    k: row[k]
                    for k in (
                        "key",
                        "label",
                        "establishments",
                        "in_projects",
                        "reported_last_month",
                        "meeting_all_targets",
                    )
                },
                share_meeting_all_targets=share(row["meeting_all_targets"], row["establishments"]),
            )
            for row in rows
        ],
    )


async def missing_reports(
    session: AsyncSession, principal: Principal, filters: Filters, limit: int, offset: int
) -> tuple[list[MissingReport], int]:
    scope, params = _params(principal, filters)
    rows, total = await repository.missing_reports(session, scope, params, limit, offset)
    return [
        MissingReport(
            finess=r["finess"],
            name=r["name"],
            region=r["region"],
            department=r["department"],
            category_code=r["category_code"],
            project_id=r["project_id"],
            project_reference=r["project_reference"],
            vendor_siren=r["vendor_siren"],
            last_period=str(Month.of(r["last_period"])) if r["last_period"] else None,
        )
        for r in rows
    ], total


def report_row(row: Any) -> ReportRow:
    last = row["last_period_end"]
    return ReportRow(
        project_id=row["project_id"],
        reference=row["reference"],
        name=row["name"],
        region=row["region_code"],
        vendor_siren=row["vendor_siren"],
        funding_case=row["funding_case"],
        establishments=row["establishments"],
        establishments_meeting_targets=row["establishments_meeting_targets"],
        total_aid=row["total_aid"],
        advance_paid=row["advance_paid"],
        balance_due=row["balance_due"],
        status=row["status"],
        overdue=row["overdue"],
        last_period_received=str(Month.of(last)) if last else None,
        notified_on=row["notified_on"],
    )


async def report_page(
    session: AsyncSession, principal: Principal, filters: Filters, query: ListQuery
) -> tuple[list[ReportRow], int]:
    """Rows of the ARS monthly report, filtered, sorted and paged in SQL over the kept
    standings (`app.projects.standings`); how many rows match."""
    scope, params = scope_sql(principal, filters)
    rows, total = await project_standings.in_establishment_scope(
        session, scope, params, query, today()
    )
    return [report_row(row) for row in rows], total


async def monthly_report(
    session: AsyncSession, principal: Principal, filters: Filters
) -> list[ReportRow]:
    """The ARS monthly report: one row per project of the scope, in the projects' order."""
    rows, _ = await report_page(session, principal, filters, ListQuery(sort="id"))
    return rows
