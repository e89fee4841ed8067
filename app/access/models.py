"""ORM class of an access token (stored hashed)."""

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class AccessToken(Base):
    __tablename__ = "access_token"
    __table_args__ = (
        CheckConstraint("role IN ('vendor', 'ars', 'grades', 'national')", name="role"),
        CheckConstraint("(role = 'vendor') = (vendor_siren IS NOT NULL)", name="vendor_bound"),
        CheckConstraint(
            "(role IN ('ars', 'grades')) = (region_code IS NOT NULL)", name="region_bound"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    vendor_siren: Mapped[str | None] = mapped_column(ForeignKey("vendor.siren"))
    region_code: Mapped[str | None] = mapped_column(ForeignKey("region.code"))
    name: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RateWindow(Base):
    """Requests counted per caller and minute, shared by every server process; the caller
    is who calls (`app.access.limits.caller_key`), not the bytes of its token."""

    __tablename__ = "rate_window"

    # Named when the limit was per token; kept so that a release rolls out with the previous
    # one still serving (migration 0017).
    caller: Mapped[str] = mapped_column("token_hash", String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    requests: Mapped[int] = mapped_column(Integer)
