"""ORM classes of extract revisions (every one kept) and of current measurements."""

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base

COUNT_FIELDS = (
    "accompanied_persons",
    "eligible_persons",
    "mssante_messages_sent",
    "dmp_fed_persons",
    "active_files",
    "active_files_with_care_project",
    "active_files_with_agenda_event",
    "eprescriptions_imported",
    "eparcours_exchanges",
)
REQUIRED_COUNTS = COUNT_FIELDS[:7]
# What a revision is, in both tables that hold revisions: measurement (the current one of
# each period) and extract_revision (those it replaced).
REVISION_FIELDS = (
    "finess",
    "period_start",
    "period_end",
    "revision",
    "withdrawn",
    "first_window",
    "vendor_siren",
    "token_id",
    "request_id",
    "received_at",
    "warnings",
    *COUNT_FIELDS,
)


class _Counts:
    accompanied_persons: Mapped[int | None] = mapped_column(Integer)
    eligible_persons: Mapped[int | None] = mapped_column(Integer)
    mssante_messages_sent: Mapped[int | None] = mapped_column(Integer)
    dmp_fed_persons: Mapped[int | None] = mapped_column(Integer)
    active_files: Mapped[int | None] = mapped_column(Integer)
    active_files_with_care_project: Mapped[int | None] = mapped_column(Integer)
    active_files_with_agenda_event: Mapped[int | None] = mapped_column(Integer)
    eprescriptions_imported: Mapped[int | None] = mapped_column(Integer)
    eparcours_exchanges: Mapped[int | None] = mapped_column(Integer)


class ExtractRevision(_Counts, Base):
    """Every revision of an establishment-period that a later one superseded (a revised
    count, a withdrawal, a re-send after a withdrawal), moved here by a trigger of
    `measurement` when it is replaced. With the current revision, in `measurement`, it is
    the whole history: every revision accepted, each stored once."""

    __tablename__ = "extract_revision"

    # No foreign key on the hot tables: ingestion checks the referential in the same
    # transaction, and a trigger keeps establishments with data from being deleted.
    finess: Mapped[str] = mapped_column(String(9), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    period_end: Mapped[date] = mapped_column(Date)
    revision: Mapped[int] = mapped_column(Integer, primary_key=True)
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    first_window: Mapped[bool] = mapped_column(Boolean)
    vendor_siren: Mapped[str | None] = mapped_column(String(9))
    token_id: Mapped[int | None] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    warnings: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)


class Measurement(_Counts, Base):
    """The latest revision of each establishment-period: what indicators are computed from."""

    __tablename__ = "measurement"

    finess: Mapped[str] = mapped_column(String(9), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    period_end: Mapped[date] = mapped_column(Date)
    revision: Mapped[int] = mapped_column(Integer)
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)
    first_window: Mapped[bool] = mapped_column(Boolean)
    vendor_siren: Mapped[str | None] = mapped_column(String(9))
    token_id: Mapped[int | None] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    warnings: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    # Set when a balance decision rests on this measurement: later revisions are refused.
    locked_by_event_id: Mapped[int | None] = mapped_column(Integer)


class LatestMeasurement(_Counts, Base):
    """The latest active measurement of each establishment, kept by the writes themselves,
    so that compliance and dashboards read one row per establishment whatever the history."""

    __tablename__ = "latest_measurement"

    finess: Mapped[str] = mapped_column(String(9), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    revision: Mapped[int] = mapped_column(Integer)
    first_window: Mapped[bool] = mapped_column(Boolean)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The bounds of the series, withdrawn periods aside: the first window (the oldest active
    # period), and the start of the newest period stored, withdrawn or not.
    first_start: Mapped[date] = mapped_column(Date)
    first_end: Mapped[date] = mapped_column(Date)
    newest_start: Mapped[date] = mapped_column(Date)
