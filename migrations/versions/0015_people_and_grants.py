"""People who sign in with their organisation's OpenID Connect provider, their grants, and
the person named in the audit trail.

`person` knows each person (or client application) by the issuer of its provider and the
subject that provider gives it, with the e-mail shown to the national team. `access_grant`
gives a person a role bound like an API token; at most one grant is in force per person
(partial unique index), and a withdrawn grant stays with who withdrew it. `audit_event`
gains the person behind a write (issuer, subject, e-mail as they were at the time), beside
the API token it already recorded. `sign_in_attempt` keeps a console sign-in under way
(nonce, PKCE verifier) under the hash of its state; `console_sign_in` the provider and ID
token of a console session opened through it, for the sign-out there. Downgrading drops
them all, people's grants included.

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ROLES = "role IN ('vendor', 'ars', 'grades', 'national')"


def upgrade() -> None:
    op.create_table(
        "person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=8), server_default="person", nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("organisation", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('person', 'client')", name="ck_person_kind"),
        sa.PrimaryKeyConstraint("id", name="pk_person"),
        sa.UniqueConstraint("issuer", "subject", name="uq_person_issuer_subject"),
    )
    op.create_table(
        "access_grant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("vendor_siren", sa.String(length=9), nullable=True),
        sa.Column("region_code", sa.String(length=2), nullable=True),
        sa.Column(
            "granted_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("granted_by", sa.Text(), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by", sa.Text(), nullable=True),
        sa.CheckConstraint(_ROLES, name="ck_access_grant_role"),
        sa.CheckConstraint(
            "(role = 'vendor') = (vendor_siren IS NOT NULL)", name="ck_access_grant_vendor_bound"
        ),
        sa.CheckConstraint(
            "(role IN ('ars', 'grades')) = (region_code IS NOT NULL)",
            name="ck_access_grant_region_bound",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name="fk_access_grant_person_id_person"
        ),
        sa.ForeignKeyConstraint(
            ["vendor_siren"], ["vendor.siren"], name="fk_access_grant_vendor_siren_vendor"
        ),
        sa.ForeignKeyConstraint(
            ["region_code"], ["region.code"], name="fk_access_grant_region_code_region"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_access_grant"),
    )
    op.create_index("ix_access_grant_person_id", "access_grant", ["person_id"])
    op.create_index(
        "uq_access_grant_active_person",
        "access_grant",
        ["person_id"],
        unique=True,
        postgresql_where=sa.text("withdrawn_at IS NULL"),
    )
    op.create_table(
        "sign_in_attempt",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("nonce", sa.Text(), nullable=False),
        sa.Column("code_verifier", sa.Text(), nullable=False),
        sa.Column("suite", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("state_hash", name="pk_sign_in_attempt"),
    )
    op.create_index("ix_sign_in_attempt_created_at", "sign_in_attempt", ["created_at"])
    op.create_table(
        "console_sign_in",
        sa.Column("console_session_id", sa.BigInteger(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("id_token", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["console_session_id"],
            ["console_session.id"],
            name="fk_console_sign_in_console_session_id_console_session",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("console_session_id", name="pk_console_sign_in"),
    )
    op.execute(
        "ALTER TABLE audit_event ADD COLUMN person_id integer, ADD COLUMN person_issuer text, "
        "ADD COLUMN person_subject text, ADD COLUMN person_email text"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE audit_event DROP COLUMN person_id, DROP COLUMN person_issuer, "
        "DROP COLUMN person_subject, DROP COLUMN person_email"
    )
    op.drop_table("console_sign_in")
    op.drop_table("sign_in_attempt")
    op.drop_table("access_grant")
    op.drop_table("person")
