"""ORM classes of people (and client applications) known by their provider, and of the
grants that give them a role."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class Person(Base):
    """Someone (or a client application, for the client-credentials flow) known by the
    issuer of its provider and the subject that provider gives it."""

    __tablename__ = "person"
    __table_args__ = (
        UniqueConstraint("issuer", "subject", name="uq_person_issuer_subject"),
        CheckConstraint("kind IN ('person', 'client')", name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(8), server_default="person")
    email: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    organisation: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AccessGrant(Base):
    """A role given to a person, bound like an API token (a vendor, a region, or all); a
    withdrawn grant stays, with who withdrew it and when."""

    __tablename__ = "access_grant"
    __table_args__ = (
        CheckConstraint("role IN ('vendor', 'ars', 'grades', 'national')", name="role"),
        CheckConstraint("(role = 'vendor') = (vendor_siren IS NOT NULL)", name="vendor_bound"),
        CheckConstraint(
            "(role IN ('ars', 'grades')) = (region_code IS NOT NULL)", name="region_bound"
        ),
        # One grant in force per person: a person's rights are never a guess between two.
        Index(
            "uq_access_grant_active_person",
            "person_id",
            unique=True,
            postgresql_where=text("withdrawn_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    vendor_siren: Mapped[str | None] = mapped_column(ForeignKey("vendor.siren"))
    region_code: Mapped[str | None] = mapped_column(ForeignKey("region.code"))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    granted_by: Mapped[str] = mapped_column(Text)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    withdrawn_by: Mapped[str | None] = mapped_column(Text)


class SignInAttempt(Base):
    """A console sign-in under way, between the redirect to the provider and the return:
    found by the hash of its `state`, used once, forgotten after ten minutes."""

    __tablename__ = "sign_in_attempt"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str] = mapped_column(Text)
    code_verifier: Mapped[str] = mapped_column(Text)
    suite: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )


class ConsoleSignIn(Base):
    """The provider a console session was opened through, and its ID token (the hint the
    provider asks for at sign-out)."""

    __tablename__ = "console_sign_in"

    console_session_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("console_session.id", ondelete="CASCADE"), primary_key=True
    )
    provider: Mapped[str] = mapped_column(Text)
    id_token: Mapped[str] = mapped_column(Text)
