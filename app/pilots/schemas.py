"""Request and response shapes of the Mon espace santé pilots."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.config import get_settings
from app.ingestion import Outcome
from app.ingestion.schemas import FieldMessage, ImportSummaryBase
from app.pilots.vocabulary import (
    ApplicationStatus,
    Connection,
    Domain,
    EventType,
    Maturity,
    PaymentStatus,
)
from app.schemas import Day, DisplayNumber, Money

MONTH = r"^[1-9]\d{3}-(0[1-9]|1[0-2])$"


class PilotApplicationCreate(BaseModel):
    """An establishment's application to the call for pilots, as the ARS records it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "finess": "750712184",
                    "technical_maturity": "segur_dui_installing",
                    "dmp_connection": "effective",
                    "mssante_connection": "planned",
                    "applied_on": "2023-09-20",
                }
            ]
        }
    )

    finess: str = Field(examples=["750712184"], description="FINESS géographique (ET)")
    legal_entity_finess: str | None = Field(
        default=None,
        description="FINESS juridique (EJ); taken from the referential, checked when given",
    )
    domain: Domain | None = Field(
        default=None,
        description="taken from the establishment's FINESS category when the service knows "
        "it; required otherwise",
    )
    technical_maturity: Maturity = Field(
        description="segur_dui_installing: a Ségur-referenced DUI being installed; "
        "exchange_capable: software already exchanging with DMP, MSSanté and the citizen "
        "messaging of Mon espace santé"
    )
    dmp_connection: Connection
    mssante_connection: Connection
    applied_on: Day = Field(description="date of the application (Démarches simplifiées)")


class PilotApplicationRead(BaseModel):
    id: int
    campaign: str
    finess: str
    name: str
    legal_entity_finess: str
    region: str
    category_code: str | None
    domain: Domain
    technical_maturity: Maturity
    dmp_connection: Connection
    mssante_connection: Connection
    applied_on: date
    status: ApplicationStatus
    decided_on: date | None
    decision_reason: str | None
    eligible: bool = Field(description="no eligibility rule stops its selection")
    eligibility: list[FieldMessage] = Field(
        description="why it cannot be selected whatever the counts (domain, maturity, dates)"
    )
    warnings: list[FieldMessage] = Field(
        default=[], description="returned with a selection: e.g. domain_above_target"
    )
    recorded_at: datetime


class PilotDecisionCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"decision": "selected", "decided_on": "2023-12-01"}]}
    )

    decision: Literal["selected", "not_selected"]
    decided_on: Day
    reason: str | None = Field(default=None, max_length=2000)


class PilotEventCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"type": "convention_signed", "date": "2024-01-10"}]}
    )

    type: EventType
    date: Day
    amount: Decimal | None = Field(
        default=None,
        max_digits=14,
        decimal_places=2,
        description="paid only: the flat sum, which is also the default",
    )


class PilotEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    type: EventType
    date: date
    amount: Money | None
    recorded_at: datetime


class PilotDeadline(BaseModel):
    step: str
    due_by: date = Field(description="last day on time")
    done_on: date | None
    late: bool


class PilotListItem(BaseModel):
    id: int = Field(description="the application's id")
    finess: str
    name: str
    legal_entity_finess: str
    region: str
    domain: Domain
    selected_on: date
    amount: Money
    status: PaymentStatus
    payable: bool
    late: bool
    missing_evidence: list[str]


class PilotRead(PilotListItem):
    deadlines: list[PilotDeadline]
    paid_amount: Money | None
    paid_on: date | None
    events: list[PilotEventRead]


class PilotDomainShare(BaseModel):
    domain: Domain
    pilots: int
    share: DisplayNumber | None = Field(description="percent of the pilots, one decimal")
    target: DisplayNumber | None = Field(description="proposed percent (annexe 1 2))")


class PilotRegionLine(BaseModel):
    region: str
    name: str
    quota: int
    selected: int
    remaining: int
    applications: int
    envelope: Money = Field(description="quota x flat sum")
    committed: Money = Field(description="flat sums of the pilots whose convention is signed")
    paid: Money
    late: int = Field(description="pilots with a step past its deadline")


class PilotApplicationCounts(BaseModel):
    applied: int
    selected: int
    not_selected: int
    withdrawn: int
    total: int


class PilotBudget(BaseModel):
    budget: Money = Field(description="national budget, or the region's envelope")
    selected: Money = Field(description="flat sums of the selected pilots")
    committed: Money
    paid: Money
    remaining: Money = Field(description="budget − committed")


class PilotPaymentCounts(BaseModel):
    awaiting_convention: int
    in_pilot: int
    payable: int
    paid: int
    withdrawn: int
    late: int


class PilotsSummary(BaseModel):
    campaign: str
    instruction: str
    scope: str = Field(description="'national' or the region's code")
    selected: int
    cap: int = Field(description="national cap, or the region's quota")
    applications: PilotApplicationCounts
    domains: list[PilotDomainShare]
    regions: list[PilotRegionLine]
    budget: PilotBudget
    payments: PilotPaymentCounts


class PilotUsageIn(BaseModel):
    """One pilot x one month of Mon espace santé usage (documentation of the batch rows)."""

    finess: str = Field(examples=["750712184"], description="FINESS ET of the pilot")
    month: str = Field(pattern=MONTH, examples=["2024-03"])
    ins_qualified_identities: int = Field(
        ge=0, description="persons accompanied with a qualified INS identity at month end"
    )
    dmp_documents_sent: int = Field(ge=0, description="documents sent to the DMP in the month")
    mssante_messages_sent: int = Field(ge=0, description="MSSanté messages sent in the month")
    citizen_messages_sent: int = Field(
        ge=0, description="messages sent to the persons' Mon espace santé messaging"
    )


class PilotUsageBatch(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "usage": [
                        {
                            "finess": "750712184",
                            "month": "2024-03",
                            "ins_qualified_identities": 61,
                            "dmp_documents_sent": 140,
                            "mssante_messages_sent": 85,
                            "citizen_messages_sent": 12,
                        }
                    ]
                }
            ]
        }
    )

    usage: list[PilotUsageIn] = Field(max_length=get_settings().max_batch_rows)


class PilotUsageRowResult(BaseModel):
    index: int
    finess: str | None
    month: str | None
    outcome: Outcome
    revision: int | None
    errors: list[FieldMessage]
    warnings: list[FieldMessage]


class PilotUsageImportSummary(ImportSummaryBase):
    results: list[PilotUsageRowResult]


class PilotUsagePoint(BaseModel):
    month: str
    revision: int
    counts: dict[str, int]
    vendor_siren: str | None
    sender_role: str
    received_at: datetime


class PilotUsageSeries(BaseModel):
    pilot_id: int
    finess: str
    items: list[PilotUsagePoint]


class PilotUsageRevisionRead(PilotUsagePoint):
    sent_by_token: int | None
    request_id: str | None


class PilotUsageRevisionHistory(BaseModel):
    pilot_id: int
    finess: str
    items: list[PilotUsageRevisionRead]


class PilotRegionalUsagePoint(BaseModel):
    region: str
    month: str
    pilots_reporting: int
    counts: dict[str, int]


class PilotRegionalUsage(BaseModel):
    region: str | None = Field(description="the region asked for; null: every region")
    items: list[PilotRegionalUsagePoint]
