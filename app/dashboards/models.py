"""ORM class of the dashboard answer cache (safe to lose: it is rebuilt on demand)."""

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, String, Text, func
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
