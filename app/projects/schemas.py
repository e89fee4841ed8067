"""Request and response shapes of projects."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from app.campaigns import FundingCase
from app.projects.vocabulary import BalanceStatus, Guichet, ProjectEventType
from app.schemas import Day, DisplayNumber, Money


class ProjectEstablishmentIn(BaseModel):
    finess: str
    funding_case: FundingCase | None = None
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
    funding_case: FundingCase
    submitted_on: Day
    establishments: list[ProjectEstablishmentIn] = Field(min_length=1, max_length=5000)
    amoa_requested: bool = False
    joins_funded_group: bool = Field(
        default=False, description="joins an already funded group (no minimum size)"
    )


class Funding(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # read from the project itself

    usage: Money
    software: Money = Field(validation_alias=AliasChoices("software_amount", "software"))
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
    funding_case: FundingCase
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
    funding_case: FundingCase
    submitted_on: date
    guichet: Guichet | None
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
    funding_case: FundingCase
    establishment_count: int
    total: Money | None
    status: BalanceStatus


class EventCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"type": "expense_statement", "date": "2024-06-30", "amount": "330000.00"}]
        }
    )

    type: ProjectEventType
    date: Day
    amount: Decimal | None = Field(
        default=None,
        max_digits=14,
        decimal_places=2,
        description="euros; declared expenses for expense_statement; defaults to the advance "
        "still due for advance_paid and to the balance due for balance_decision",
    )


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    type: ProjectEventType
    date: date
    amount: Money | None
    recorded_at: datetime


class PeriodOut(BaseModel):
    start: str
    end: str


class ShortfallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

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
    closed_on: date | None = Field(
        default=None,
        description="closing date from FINESS: the establishment stays in the project but is "
        "not expected to report after it; null while open",
    )


class ComplianceRead(BaseModel):
    project_id: int
    status: BalanceStatus
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
