"""Closed establishments, and FINESS imports run as jobs.

- `establishment.closed_on`: the date FINESS+ gives a closed structure (`dateFermeture`).
  A closed establishment stays in the referential (its history and its project's compliance
  need it) but is no longer expected to report after that date. Null: open.
- `referential_import`: one row per FINESS file uploaded through the API, imported in the
  background: its state, its progress (bytes read of the file's size) and, at the end, its
  report or the error that stopped it, readable later by any server process.

Downgrade drops both: closing dates and import reports are lost, establishments are kept.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("establishment", sa.Column("closed_on", sa.Date(), nullable=True))
    op.create_table(
        "referential_import",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("bytes_read", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rows_read", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("report", postgresql.JSONB(), nullable=True),
        sa.Column("error", postgresql.JSONB(), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed')",
            name=op.f("ck_referential_import_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referential_import")),
    )


def downgrade() -> None:
    op.drop_table("referential_import")
    op.drop_column("establishment", "closed_on")
