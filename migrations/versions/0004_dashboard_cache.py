"""Dashboard answer cache, rate-limit windows, content type of idempotent answers.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # UNLOGGED: a cache is rebuilt on demand, so it need not survive a crash nor be replicated.
    op.create_table(
        "dashboard_cache",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("computed_ms", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_dashboard_cache")),
        prefixes=["UNLOGGED"],
    )
    # Rate-limit counters: shared by every process, safe to lose.
    op.create_table(
        "rate_window",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash", "window_start", name=op.f("pk_rate_window")),
        prefixes=["UNLOGGED"],
    )
    op.add_column(
        "idempotency_key",
        sa.Column("content_type", sa.Text(), server_default="", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("idempotency_key", "content_type")
    op.drop_table("rate_window")
    op.drop_table("dashboard_cache")
