"""Response shapes of the dashboards and of the ARS monthly report."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from app.schemas import DisplayNumber, Money


class ScopeOut(BaseModel):
    region: str | None = None
    department: str | None = None
    category: str | None = None
    vendor: str | None = None
    project: int | None = None
    start: str | None = Field(default=None, description="first month, YYYY-MM")
    end: str | None = Field(default=None, description="last month, YYYY-MM")


class EstablishmentCounts(BaseModel):
    establishments: int = Field(description="in the referential, within the filters")
    in_projects: int = Field(description="part of a funded project")
    projects: int
    reporting: int = Field(description="with at least one measurement")
    reported_last_month: int = Field(description="with a measurement ending last month")
    meeting_all_targets: int = Field(description="whose latest measurement meets all five")


class FundingTotals(BaseModel):
    envelope: Money = Field(description="annexe 1 envelopes of the regions in scope")
    committed: Money = Field(description="aid of projects notified before the deadline")
    advanced: Money = Field(description="advances paid")
    payable: Money = Field(description="balances due of eligible projects not yet decided")
    to_recover: Money = Field(
        description="overpayments of eligible projects and, for ARS and national tokens, what "
        "controls found unduly paid and is not recovered yet (positive)"
    )
    balance_paid: Money


class PilotFigures(BaseModel):
    """Mon espace santé pilots of the scope (instruction 2023/120); details at
    /api/v1/pilots/summary."""

    selected: int
    cap: int = Field(description="national cap, or the region's quota")
    budget: Money
    committed: Money
    paid: Money
    payable: int = Field(description="pilots with all the evidence, not paid yet")
    late: int = Field(description="pilots with a late convention or report")


class DashboardSummary(BaseModel):
    scope: ScopeOut
    last_completed_month: str
    counts: EstablishmentCounts
    share_meeting_all_targets: DisplayNumber | None = Field(
        description="% of reporting establishments whose latest measurement meets all targets"
    )
    projects_by_status: dict[str, int]
    funding: FundingTotals
    pilots: PilotFigures | None = Field(
        default=None, description="absent for vendors and for narrower filters than a region"
    )


class Quartiles(BaseModel):
    q1: DisplayNumber | None
    median: DisplayNumber | None
    q3: DisplayNumber | None


class MonthPoint(BaseModel):
    month: str
    reporting: int = Field(description="establishments with a measurement ending this month")
    meeting: dict[str, int] = Field(description="per indicator, establishments meeting it")
    share_meeting: dict[str, DisplayNumber | None] = Field(description="per indicator, in %")
    meeting_all_targets: int
    share_meeting_all_targets: DisplayNumber | None
    quartiles: dict[str, Quartiles] = Field(description="per indicator, in %")


class MonthlySeries(BaseModel):
    scope: ScopeOut
    items: list[MonthPoint]


class BreakdownRow(BaseModel):
    key: str | None
    label: str | None
    establishments: int
    in_projects: int
    reported_last_month: int
    meeting_all_targets: int
    share_meeting_all_targets: DisplayNumber | None


class Breakdown(BaseModel):
    by: str
    scope: ScopeOut
    items: list[BreakdownRow]


class MissingReport(BaseModel):
    finess: str
    name: str
    region: str
    department: str
    category_code: str | None
    project_id: int
    project_reference: str
    vendor_siren: str
    last_period: str | None = Field(description="last month received, YYYY-MM; null: never")


class ReportRow(BaseModel):
    """One project in the ARS monthly report."""

    project_id: int
    reference: str
    name: str
    region: str
    vendor_siren: str
    funding_case: str
    establishments: int
    establishments_meeting_targets: int
    total_aid: Money
    advance_paid: Money
    balance_due: Money | None
    status: str
    overdue: bool
    last_period_received: str | None
    notified_on: date | None
