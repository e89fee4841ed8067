"""ORM class of the dashboard answer cache (safe to lose: it is rebuilt on demand)."""

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    Identity,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class DashboardCache(Base):
    """A computed dashboard answer, valid while the data version it was computed at holds."""

    __tablename__ = "dashboard_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(Text)
    body: Mapped[bytes] = mapped_column()
    computed_ms: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class DataVersion(Base):
    """The data version: one row, bumped at the commit of every audited write (migration
    0017 says why a version taken at commit time is never stale). Only the owner writes it,
    through the trigger on `audit_event`; the service reads it."""

    __tablename__ = "data_version"
    __table_args__ = (CheckConstraint("id", name="one_row"),)

    id: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default="true")
    version: Mapped[int] = mapped_column(BigInteger)
    # The 64-bit id of the transaction that last bumped it (once per transaction).
    bumped_by: Mapped[int | None] = mapped_column(BigInteger)


# The rollups (migration 0006): derived data, kept by triggers and by the refresh of
# app/dashboards/rollup.py, which reads and writes them in SQL. Declared here so that the
# models describe the whole schema (`alembic check`).
RATE_CODES = ("mssante_rate", "dmp_rate", "active_files_rate", "care_project_rate", "agenda_rate")
BALANCE_MONEY = ("committed", "advanced", "payable", "to_recover", "balance_paid")

monthly_rollup = Table(
    "monthly_rollup",
    Base.metadata,
    Column("scope", String(8), primary_key=True),
    Column("month", Date, primary_key=True),
    Column("targets", Text, nullable=False),
    Column("reporting", Integer, nullable=False),
    Column("all_met", Integer, nullable=False),
    *(Column(f"{code}_met", Integer, nullable=False) for code in RATE_CODES),
    *(Column(f"{code}_q", ARRAY(Float)) for code in RATE_CODES),
)
rollup_stale = Table(
    "rollup_stale",
    Base.metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("month", Date, nullable=False),
)
summary_rollup = Table(
    "summary_rollup",
    Base.metadata,
    Column("scope", String(8), primary_key=True),
    Column("targets", Text, nullable=False),
    Column("last_month", Date, nullable=False),
    *(
        Column(name, Integer, nullable=False)
        for name in (
            "establishments",
            "in_projects",
            "reporting",
            "reported_last_month",
            "meeting_all_targets",
        )
    ),
)
status_rollup = Table(
    "status_rollup",
    Base.metadata,
    Column("scope", String(8), primary_key=True),
    Column("status", String(16), primary_key=True),
    Column("projects", Integer, nullable=False),
    *(Column(name, Numeric(16, 2), nullable=False) for name in BALANCE_MONEY),
)
summary_stale = Table(
    "summary_stale",
    Base.metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
)
