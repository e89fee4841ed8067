"""Request and response shapes of projects."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas import DisplayNumber, Money

FundingCaseName = Literal["acquisition", "upgrade", "generalisation"]


class ProjectEstablishmentIn(BaseModel):
    finess: str
    funding_case: FundingCaseName | None = None
    eligible_hours_share: Decimal | None = Field(
        default=None, gt=0, le=1, description="share of eligible hours (confort services)"
    )
    hardware_quote: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)


class ProjectCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "reference": "ESMS-2023-IDF-0042",
                    "name": "DUI des EHPAD du groupe Tilleuls",
                    "region": "11",
                    "vendor_siren": "732829320",
                    "software": "DUI Ségur v2",
                    "funding_case": "acquisition",
                    "submitted_on": "2023-03-01",
                    "establishments": [
                        {"finess": "750712184"},
                        {"finess": "750712192", "eligible_hours_share": "0.8"},
                    ],
                }
            ]
        }
    )

    reference: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=300)
    region: str = Field(examples=["11"], description="INSEE code of the ARS's region")
    vendor_siren: str
    software: str = Field(min_length=1, max_length=200)
    funding_case: FundingCaseName
    submitted_on: date
    establishments: list[ProjectEstablishmentIn] = Field(min_length=1, max_length=5000)
    amoa_requested: bool = False
    joins_funded_group: bool = Field(
        default=False, description="joins an already funded group (no minimum size)"
    )


class Funding(BaseModel):
    usage: Money
    software: Money
    hardware: Money
    amoa: Money
    total: Money
    advance: Money
    balance: Money


class IssueOut(BaseModel):
    field: str
    code: str
    message: str


class ProjectEstablishmentRead(BaseModel):
    finess: str
    name: str
    legal_entity_finess: str
    region: str
    funding_case: FundingCaseName
    eligible_hours_share: Decimal | None
    hardware_quote: Money | None
    rank: int | None
    usage: Money | None
    software: Money | None
    hardware: Money | None


class ProjectRead(BaseModel):
    id: int
    reference: str
    name: str
    region: str
    vendor_siren: str
    software: str
    funding_case: FundingCaseName
    submitted_on: date
    guichet: Literal["regional", "national"] | None
    amoa_requested: bool
    funding: Funding | None
    warnings: list[IssueOut] = []
    created_at: datetime
    establishments: list[ProjectEstablishmentRead] = []


class ProjectSummary(BaseModel):
    id: int
    reference: str
    name: str
    region: str
    vendor_siren: str
    funding_case: FundingCaseName
    establishment_count: int
    total: Money | None
    status: Literal["no_data", "in_progress", "targets_met", "eligible", "balance_paid"]


EventType = Literal[
    "notified",
    "convention_signed",
    "started",
    "advance_paid",
    "expense_statement",
    "balance_decision",
    "balance_paid",
]
ProjectStatus = Literal["no_data", "in_progress", "targets_met", "eligible", "balance_paid"]


class EventCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"type": "expense_statement", "date": "2024-06-30", "amount": "330000.00"}]
        }
    )

    type: EventType
    date: date
    amount: Decimal | None = Field(
        default=None,
        max_digits=14,
        decimal_places=2,
        description="euros; declared expenses for expense_statement; defaults to the advance "
        "still due for advance_paid and to the balance due for balance_decision",
    )


class EventRead(BaseModel):
    id: int
    type: EventType
    date: date
    amount: Money | None
    recorded_at: datetime


class PeriodOut(BaseModel):
    start: str
    end: str


class ShortfallOut(BaseModel):
    indicator: str
    value: DisplayNumber | None = Field(
        description="percentage, one decimal; null when not computable"
    )
    target: DisplayNumber
    gap: DisplayNumber | None = Field(description="percentage points missing, rounded up")


class EstablishmentComplianceOut(BaseModel):
    finess: str
    latest_period: PeriodOut | None
    meets_targets: bool
    shortfalls: list[ShortfallOut]


class ComplianceRead(BaseModel):
    project_id: int
    status: ProjectStatus
    qualifies_for_balance: bool
    balance_due: Money | None = Field(
        description="min(total aid, declared expenses) − advance paid; negative: to recover"
    )
    overdue: bool
    establishments: list[EstablishmentComplianceOut]


class LateProject(BaseModel):
    id: int
    reference: str
    notified_on: date
    total: Money


class EnvelopeRead(BaseModel):
    region: str
    name: str
    envelope: Money
    committed: Money
    remaining: Money
    pending: Money = Field(description="aid of projects registered but not notified yet")
    notified_projects: int
    late_projects: list[LateProject] = Field(
        description="notified after the engagement deadline: not committed in the campaign"
    )
