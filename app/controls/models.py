"""ORM classes of controls (annexe 4 C): the yearly plans and their draws, the controls
recorded with their findings, the recovery of what was unduly paid, and the refused
attempts to revise a frozen period."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base

Money = Numeric(14, 2)


class ControlPlan(Base):
    """An ARS's plan of controls for one year: how it was drawn, from which candidates, with
    which seed, so that anyone can replay the draw."""

    __tablename__ = "control_plan"
    __table_args__ = (
        UniqueConstraint("region_code", "year", name="uq_control_plan_region_year"),
        CheckConstraint("method IN ('random', 'risk', 'mixed')", name="method"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"))
    year: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(8))
    seed: Mapped[int] = mapped_column(BigInteger)
    per_department: Mapped[int] = mapped_column(Integer)
    extra: Mapped[int] = mapped_column(Integer)
    # [[finess, département, risk score], ...] as they were when the plan was drawn.
    candidates: Mapped[list[list[Any]]] = mapped_column(JSONB)
    uncovered: Mapped[list[str]] = mapped_column(JSONB)
    token_id: Mapped[int | None] = mapped_column(Integer)
    drawn_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ControlPlanLine(Base):
    """An establishment drawn in a plan, and why."""

    __tablename__ = "control_plan_line"

    plan_id: Mapped[int] = mapped_column(
        ForeignKey("control_plan.id", ondelete="CASCADE"), primary_key=True
    )
    finess: Mapped[str] = mapped_column(ForeignKey("establishment.finess"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    department: Mapped[str] = mapped_column(String(3))
    risk_score: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(20))
    draw_key: Mapped[str] = mapped_column(String(64))


class Control(Base):
    """A control on documents or on site (contrôle sur pièces, sur place) and its outcome."""

    __tablename__ = "control"
    __table_args__ = (
        CheckConstraint("kind IN ('documents', 'on_site')", name="kind"),
        CheckConstraint("unduly_paid >= 0", name="unduly_paid_positive"),
        CheckConstraint("NOT (compliant AND unduly_paid > 0)", name="compliant_owes_nothing"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    finess: Mapped[str] = mapped_column(ForeignKey("establishment.finess"), index=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("project.id"))
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("control_plan.id"))
    kind: Mapped[str] = mapped_column(String(10))
    controlled_on: Mapped[date] = mapped_column(Date)
    findings: Mapped[str] = mapped_column(Text)
    compliant: Mapped[bool] = mapped_column(Boolean)
    unduly_paid: Mapped[Decimal] = mapped_column(Money)
    token_id: Mapped[int | None] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class ControlRecoveryEvent(Base):
    """A step of the recovery of what a control found unduly paid (notified, recovered)."""

    __tablename__ = "control_recovery_event"
    __table_args__ = (
        CheckConstraint("type IN ('notified', 'recovered')", name="type"),
        CheckConstraint(
            "(type = 'recovered') = (amount IS NOT NULL AND amount > 0)", name="amount"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    control_id: Mapped[int] = mapped_column(ForeignKey("control.id"), index=True)
    type: Mapped[str] = mapped_column(String(10))
    date: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal | None] = mapped_column(Money)
    proof_reference: Mapped[str] = mapped_column(Text)
    token_id: Mapped[int | None] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class FrozenRevisionAttempt(Base):
    """A revision of a period frozen by a balance decision, refused by ingestion and kept
    here, because insisting on a frozen period is itself a signal for the ARS."""

    __tablename__ = "frozen_revision_attempt"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    finess: Mapped[str] = mapped_column(String(9), index=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    vendor_siren: Mapped[str | None] = mapped_column(String(9))
    token_id: Mapped[int | None] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(Text)
    attempted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
