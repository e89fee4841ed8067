"""ORM class of a console session (table `console_session`, migration 0013)."""

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class ConsoleSession(Base):
    __tablename__ = "console_session"
    __table_args__ = (
        CheckConstraint("kind <> 'token' OR token_id IS NOT NULL", name="token_kind"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    token_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("access_token.id", ondelete="CASCADE")
    )
    subject: Mapped[str | None] = mapped_column(Text)
    label: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pending_upload: Mapped[bytes | None] = mapped_column(LargeBinary)
    pending_upload_name: Mapped[str | None] = mapped_column(Text)
