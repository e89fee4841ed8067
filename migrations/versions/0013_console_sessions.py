"""Console sessions: a person signed in to the web console, by cookie.

Revision ID: 0013
Revises: 0012

A session is opened when someone signs in to the console (today by pasting an API token;
later through OpenID Connect). The cookie holds a random key; only its SHA-256 is stored,
as for tokens, so the table cannot be used to sign in. Each session carries its own CSRF
token, an expiry, and its end when the person signs out. `kind` says how the session
resolves to a principal at each request (`token`: the token it was opened with, read again
so that a revoked or expired token ends the session at once); `subject` is free for other
kinds (a person's identifier). `pending_upload` keeps a vendor's file between its dry run
and its confirmation. Downgrade drops the table: everyone is signed out.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_session",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("label", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pending_upload", sa.LargeBinary(), nullable=True),
        sa.Column("pending_upload_name", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind <> 'token' OR token_id IS NOT NULL", name=op.f("ck_console_session_token_kind")
        ),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["access_token.id"],
            name=op.f("fk_console_session_token_id_access_token"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_session")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_console_session_key_hash")),
    )


def downgrade() -> None:
    op.drop_table("console_session")
