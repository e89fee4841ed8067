"""Request and response shapes of controls: signals, risk, plans, controls, recoveries."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.controls.draw import DrawMethod, PickReason
from app.controls.recovery import RecoveryEventType, RecoveryStatus
from app.controls.signals import SignalCode
from app.schemas import Money


class ControlKind(StrEnum):
    DOCUMENTS = "documents"  # contrôle sur pièces
    ON_SITE = "on_site"  # contrôle sur place


class SignalOut(BaseModel):
    code: SignalCode
    reason: str = Field(description="why the figures deserve a look, in plain words")
    months: list[str] = Field(description="the months (YYYY-MM) the signal rests on")
    figures: dict[str, Any] = Field(description="the declared figures behind the signal")


class EstablishmentRisk(BaseModel):
    finess: str
    name: str
    department: str
    region: str
    project_id: int | None
    project_reference: str | None
    vendor_siren: str | None
    risk_score: int = Field(ge=0, le=100)
    signals: list[SignalOut]


class RiskList(BaseModel):
    region: str | None
    establishments_with_data: int
    flagged: int
    items: list[EstablishmentRisk]
    total: int
    limit: int
    offset: int


class ProjectRiskRead(BaseModel):
    project_id: int
    risk_score: int = Field(ge=0, le=100, description="the score of its riskiest establishment")
    establishments_with_data: int
    flagged: int
    establishments: list[EstablishmentRisk]


class PlanCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"region": "11", "year": 2025, "method": "mixed", "seed": 20250101}]
        }
    )

    region: str = Field(examples=["11"], description="INSEE code of the ARS's region")
    year: int = Field(ge=2023, le=2100)
    method: DrawMethod = DrawMethod.MIXED
    seed: int | None = Field(
        default=None,
        ge=0,
        le=2**53,
        description="the seed of the random part; drawn and recorded when not given",
    )
    extra: int = Field(
        default=0,
        ge=0,
        le=1000,
        description="establishments to draw beyond the minimum per département",
    )


class PlanLine(BaseModel):
    finess: str
    name: str
    department: str
    project_id: int | None
    risk_score: int
    reason: PickReason
    draw_key: str = Field(description='SHA-256 of "<seed>:<FINESS>", hexadecimal')
    controlled: bool


class PlanRead(BaseModel):
    id: int | None = Field(description="null for a draw not stored (dry_run)")
    region: str
    year: int
    method: DrawMethod
    seed: int
    per_department: int
    extra: int
    candidates: int
    uncovered_departments: list[str] = Field(
        description="départements of the region without any funded establishment"
    )
    drawn_at: datetime | None
    establishments: list[PlanLine]


class ReplayRead(BaseModel):
    plan_id: int
    seed: int
    matches: bool = Field(description="the replay gives the establishments stored, in order")
    establishments: list[str]


class ControlCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "finess": "750712184",
                    "kind": "on_site",
                    "controlled_on": "2025-03-12",
                    "findings": "Matériel facturé mais absent de l'établissement",
                    "compliant": False,
                    "unduly_paid": "2500.00",
                }
            ]
        }
    )

    finess: str = Field(min_length=9, max_length=9)
    kind: ControlKind
    controlled_on: date
    findings: str = Field(min_length=1, max_length=10_000)
    compliant: bool
    unduly_paid: Decimal = Field(
        default=Decimal("0.00"),
        ge=0,
        max_digits=14,
        decimal_places=2,
        description="euros found unduly paid (trop versé) to recover; 0 when none",
    )
    plan_id: int | None = Field(default=None, ge=1, le=2**31 - 1)


class RecoveryEventCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"type": "notified", "date": "2025-03-20", "proof_reference": "AR 2025-117"}
            ]
        }
    )

    type: RecoveryEventType
    date: date
    amount: Decimal | None = Field(
        default=None,
        gt=0,
        max_digits=14,
        decimal_places=2,
        description="for `recovered`: euros recovered; all that remains when not given",
    )
    proof_reference: str = Field(
        min_length=1,
        max_length=300,
        description="reference of the proof: letter to the ESSMS, titre de recette…",
    )


class RecoveryEventRead(BaseModel):
    id: int
    type: RecoveryEventType
    date: date
    amount: Money | None
    proof_reference: str
    recorded_at: datetime


class ControlRead(BaseModel):
    id: int
    region: str
    finess: str
    name: str
    project_id: int | None
    plan_id: int | None
    kind: ControlKind
    controlled_on: date
    findings: str
    compliant: bool
    unduly_paid: Money
    recovered: Money
    remaining: Money
    recovery_status: RecoveryStatus
    recovery_events: list[RecoveryEventRead]
    recorded_at: datetime


class ControlList(BaseModel):
    items: list[ControlRead]
    total: int
    limit: int
    offset: int
    remaining_to_recover: Money = Field(
        description="what the listed controls still have to recover"
    )
