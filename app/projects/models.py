"""ORM classes of funded projects, their establishments and their payment events."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.campaigns.loader import FundingCase
from app.columns import Words
from app.db import Base
from app.projects.vocabulary import Guichet, ProjectEventType
from app.vocabulary import sql_values

Money = Numeric(14, 2)


class Project(Base):
    """One funding request: one DUI software from one vendor for a group of establishments."""

    __tablename__ = "project"
    __table_args__ = (
        CheckConstraint(f"funding_case IN ({sql_values(FundingCase)})", name="funding_case"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    vendor_siren: Mapped[str] = mapped_column(ForeignKey("vendor.siren"), index=True)
    software: Mapped[str] = mapped_column(Text)
    funding_case: Mapped[FundingCase] = mapped_column(Words(FundingCase, 16))
    submitted_on: Mapped[date] = mapped_column(Date)
    campaign: Mapped[str] = mapped_column(String(8), default="2023")
    guichet: Mapped[Guichet | None] = mapped_column(Words(Guichet, 16))
    amoa_requested: Mapped[bool] = mapped_column(default=False)
    usage: Mapped[Decimal | None] = mapped_column(Money)
    software_amount: Mapped[Decimal | None] = mapped_column(Money)
    hardware: Mapped[Decimal | None] = mapped_column(Money)
    amoa: Mapped[Decimal | None] = mapped_column(Money)
    total: Mapped[Decimal | None] = mapped_column(Money)
    advance: Mapped[Decimal | None] = mapped_column(Money)
    balance: Mapped[Decimal | None] = mapped_column(Money)
    warnings: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ProjectEstablishment(Base):
    """An establishment of a project; an establishment belongs to at most one project."""

    __tablename__ = "project_establishment"
    __table_args__ = (
        CheckConstraint(
            "eligible_hours_share IS NULL "
            "OR (eligible_hours_share > 0 AND eligible_hours_share <= 1)",
            name="eligible_hours_share",
        ),
    )

    finess: Mapped[str] = mapped_column(ForeignKey("establishment.finess"), primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), index=True
    )
    funding_case: Mapped[FundingCase] = mapped_column(Words(FundingCase, 16))
    eligible_hours_share: Mapped[Decimal | None] = mapped_column(Numeric(6, 5))
    hardware_quote: Mapped[Decimal | None] = mapped_column(Money)
    rank: Mapped[int | None] = mapped_column(Integer)
    usage: Mapped[Decimal | None] = mapped_column(Money)
    software_amount: Mapped[Decimal | None] = mapped_column(Money)
    hardware: Mapped[Decimal | None] = mapped_column(Money)


class ProjectEvent(Base):
    """A dated step of a project's life: notification, convention, payments, decision."""

    __tablename__ = "project_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"), index=True)
    type: Mapped[ProjectEventType] = mapped_column(Words(ProjectEventType, 24))
    date: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal | None] = mapped_column(Money)
    token_id: Mapped[int | None] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


# Each project's standing (migration 0016): derived data, kept by triggers that mark the
# projects a write touches and by app/projects/standings.py, which reads and writes them in
# SQL. Declared here so that the models describe the whole schema (`alembic check`).
project_standing = Table(
    "project_standing",
    Base.metadata,
    Column("project_id", Integer, ForeignKey("project.id", ondelete="CASCADE"), primary_key=True),
    Column("campaign", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("qualifies_for_balance", Boolean, nullable=False),
    Column("establishments", Integer, nullable=False),
    Column("establishments_meeting_targets", Integer, nullable=False),
    Column("advance_paid", Money, nullable=False),
    Column("balance_due", Money),
    Column("overdue_from", Date),
    Column("last_period_end", Date),
    Column("notified_on", Date),
    Column("compliance", JSONB, nullable=False),
)
project_standing_stale = Table(
    "project_standing_stale",
    Base.metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("project_id", Integer, nullable=False),
)
