"""ORM classes of pilot applications (a selected one is a pilot), their payment events and
their Mon espace santé usage, kept apart from the annexe 2 extract tables."""

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
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
from sqlalchemy.orm import Mapped, mapped_column

from app.columns import Words
from app.db import Base
from app.pilots.vocabulary import (
    PILOT_STATUSES,
    ApplicationStatus,
    Connection,
    Domain,
    EventType,
    Maturity,
)
from app.vocabulary import sql_values

Money = Numeric(14, 2)


class PilotApplication(Base):
    """One establishment's application to the call for pilots; `status` says whether it was
    selected (it is then a pilot, with its flat sum in `amount`)."""

    __tablename__ = "pilot_application"
    __table_args__ = (
        UniqueConstraint("campaign", "finess"),
        CheckConstraint(f"domain IN ({sql_values(Domain)})", name="domain"),
        CheckConstraint(
            f"technical_maturity IN ({sql_values(Maturity)})", name="technical_maturity"
        ),
        CheckConstraint(f"dmp_connection IN ({sql_values(Connection)})", name="dmp_connection"),
        CheckConstraint(
            f"mssante_connection IN ({sql_values(Connection)})", name="mssante_connection"
        ),
        CheckConstraint(f"status IN ({sql_values(ApplicationStatus)})", name="status"),
        CheckConstraint("(status = 'applied') = (decided_on IS NULL)", name="decision_dated"),
        CheckConstraint(
            f"(status IN ({sql_values(ApplicationStatus, PILOT_STATUSES)})) = (amount IS NOT NULL)",
            name="pilot_amount",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign: Mapped[str] = mapped_column(String(8))
    finess: Mapped[str] = mapped_column(ForeignKey("establishment.finess"))
    # The EJ and region as the referential gave them when the application was recorded.
    legal_entity_finess: Mapped[str] = mapped_column(String(9), index=True)
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    domain: Mapped[Domain] = mapped_column(Words(Domain, 16))
    technical_maturity: Mapped[Maturity] = mapped_column(Words(Maturity, 24))
    dmp_connection: Mapped[Connection] = mapped_column(Words(Connection, 12))
    mssante_connection: Mapped[Connection] = mapped_column(Words(Connection, 12))
    applied_on: Mapped[date] = mapped_column(Date)
    status: Mapped[ApplicationStatus] = mapped_column(
        Words(ApplicationStatus, 16), default=ApplicationStatus.APPLIED
    )
    decided_on: Mapped[date | None] = mapped_column(Date)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    amount: Mapped[Decimal | None] = mapped_column(Money)
    token_id: Mapped[int | None] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class PilotEvent(Base):
    """A dated step of a pilot's funding: convention, reports received, payment, withdrawal."""

    __tablename__ = "pilot_event"
    __table_args__ = (
        UniqueConstraint("application_id", "type"),
        CheckConstraint(f"type IN ({sql_values(EventType)})", name="type"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("pilot_application.id"), index=True)
    type: Mapped[EventType] = mapped_column(Words(EventType, 32))
    date: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal | None] = mapped_column(Money)
    token_id: Mapped[int | None] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class _UsageCounts:
    ins_qualified_identities: Mapped[int] = mapped_column(Integer)
    dmp_documents_sent: Mapped[int] = mapped_column(Integer)
    mssante_messages_sent: Mapped[int] = mapped_column(Integer)
    citizen_messages_sent: Mapped[int] = mapped_column(Integer)


class PilotUsage(_UsageCounts, Base):
    """The latest revision of a pilot's Mon espace santé usage for one month."""

    __tablename__ = "pilot_usage"
    __table_args__ = (
        CheckConstraint("EXTRACT(DAY FROM month) = 1", name="first_day_of_month"),
        CheckConstraint(
            "ins_qualified_identities >= 0 AND dmp_documents_sent >= 0 "
            "AND mssante_messages_sent >= 0 AND citizen_messages_sent >= 0",
            name="counts_not_negative",
        ),
    )

    application_id: Mapped[int] = mapped_column(
        ForeignKey("pilot_application.id"), primary_key=True
    )
    month: Mapped[date] = mapped_column(Date, primary_key=True)  # first day of the month
    revision: Mapped[int] = mapped_column(Integer)
    vendor_siren: Mapped[str | None] = mapped_column(String(9))
    sender_role: Mapped[str] = mapped_column(String(16))
    token_id: Mapped[int | None] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class PilotUsageRevision(_UsageCounts, Base):
    """Every revision ever accepted for a pilot and month, with who sent it and when."""

    __tablename__ = "pilot_usage_revision"
    __table_args__ = (UniqueConstraint("application_id", "month", "revision"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("pilot_application.id"))
    month: Mapped[date] = mapped_column(Date)
    revision: Mapped[int] = mapped_column(Integer)
    vendor_siren: Mapped[str | None] = mapped_column(String(9))
    sender_role: Mapped[str] = mapped_column(String(16))
    token_id: Mapped[int | None] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
