"""Response shapes of measurements and their indicators."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.schemas import DisplayNumber


class IndicatorValue(BaseModel):
    value: DisplayNumber | None = Field(
        description="percentage rounded half-up to one decimal (raw count for *_count); "
        "null when the denominator is 0"
    )
    target: DisplayNumber | None
    met: bool | None


class MeasurementRead(BaseModel):
    period_start: str
    period_end: str
    first_window: bool
    revision: int
    received_at: datetime
    counts: dict[str, int | None]
    indicators: dict[str, IndicatorValue]
    meets_targets: bool
    warnings: list[dict[str, str]]


class MeasurementSeries(BaseModel):
    finess: str
    items: list[MeasurementRead]


class SenderPerson(BaseModel):
    issuer: str
    subject: str
    email: str | None


class RevisionRead(BaseModel):
    period_start: str
    period_end: str
    revision: int
    withdrawn: bool
    first_window: bool
    vendor_siren: str | None
    sent_by_token: int | None
    sent_by_person: SenderPerson | None = Field(
        default=None, description="the person who sent it (console, bearer JWT), if not a token"
    )
    request_id: str | None
    received_at: datetime
    counts: dict[str, int | None]
    warnings: list[dict[str, str]]


class RevisionHistory(BaseModel):
    finess: str
    items: list[RevisionRead]
