"""ORM classes of the audit trail and of idempotency keys."""

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, SmallInteger, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class AuditEvent(Base):
    """One write: who, when, what, with which request id. The database refuses updates."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    token_id: Mapped[int | None] = mapped_column(Integer)
    # The person behind the write (console or bearer JWT), as they were at the time.
    person_id: Mapped[int | None] = mapped_column(Integer)
    person_issuer: Mapped[str | None] = mapped_column(Text)
    person_subject: Mapped[str | None] = mapped_column(Text)
    person_email: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    principal: Mapped[str] = mapped_column(Text)
    region_code: Mapped[str | None] = mapped_column(String(2), index=True)
    action: Mapped[str] = mapped_column(Text)
    object_type: Mapped[str] = mapped_column(Text)
    object_id: Mapped[str] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(Text)
    payload_hash: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class IdempotencyKey(Base):
    """The first answer to a request carrying an Idempotency-Key, replayed on retry."""

    __tablename__ = "idempotency_key"

    principal: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(SmallInteger)  # 0 while the request runs
    response: Mapped[bytes] = mapped_column()
    content_type: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
