"""The latest active measurement of each establishment, kept by the writes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 21:37:12.885391
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "latest_measurement",
        sa.Column("finess", sa.String(length=9), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("first_window", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accompanied_persons", sa.Integer(), nullable=True),
        sa.Column("eligible_persons", sa.Integer(), nullable=True),
        sa.Column("mssante_messages_sent", sa.Integer(), nullable=True),
        sa.Column("dmp_fed_persons", sa.Integer(), nullable=True),
        sa.Column("active_files", sa.Integer(), nullable=True),
        sa.Column("active_files_with_care_project", sa.Integer(), nullable=True),
        sa.Column("active_files_with_agenda_event", sa.Integer(), nullable=True),
        sa.Column("eprescriptions_imported", sa.Integer(), nullable=True),
        sa.Column("eparcours_exchanges", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["finess"],
            ["establishment.finess"],
            name=op.f("fk_latest_measurement_finess_establishment"),
        ),
        sa.PrimaryKeyConstraint("finess", name=op.f("pk_latest_measurement")),
    )
    op.execute(
        """
        INSERT INTO latest_measurement
        SELECT DISTINCT ON (finess) finess, period_start, period_end, revision, first_window,
               received_at, accompanied_persons, eligible_persons, mssante_messages_sent,
               dmp_fed_persons, active_files, active_files_with_care_project,
               active_files_with_agenda_event, eprescriptions_imported, eparcours_exchanges
        FROM measurement WHERE NOT withdrawn
        ORDER BY finess, period_start DESC
        """
    )


def downgrade() -> None:
    op.drop_table("latest_measurement")
