"""ORM classes of the reference data: regions, départements, establishments (FINESS ET)."""

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class RegionRow(Base):
    __tablename__ = "region"

    code: Mapped[str] = mapped_column(String(2), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    corsica_or_overseas: Mapped[bool] = mapped_column(Boolean)


class DepartmentRow(Base):
    __tablename__ = "department"

    code: Mapped[str] = mapped_column(String(3), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)


class Establishment(Base):
    """An ESSMS identified by its FINESS géographique (ET)."""

    __tablename__ = "establishment"

    finess: Mapped[str] = mapped_column(String(9), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    legal_entity_finess: Mapped[str] = mapped_column(String(9), index=True)
    department: Mapped[str] = mapped_column(ForeignKey("department.code"))
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    category_code: Mapped[str | None] = mapped_column(String(4), index=True)
    category_label: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
