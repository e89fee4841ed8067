"""Controls after payment (instruction 2023/13, annexe 4 C): the ARS's yearly control plans
with the draw that chose their establishments (method, seed and the candidates as they were,
so the draw can be replayed), the controls recorded with their findings and the amount
unduly paid, the steps of its recovery (notified, recovered, with the reference of the
proof), and the refused attempts to revise a period frozen by a balance decision.

New tables only: the downgrade drops them.

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _recorded(name: str) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "control_plan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(length=2), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("per_department", sa.Integer(), nullable=False),
        sa.Column("extra", sa.Integer(), nullable=False),
        sa.Column("candidates", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("uncovered", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=True),
        _recorded("drawn_at"),
        sa.CheckConstraint(
            "method IN ('random', 'risk', 'mixed')", name=op.f("ck_control_plan_method")
        ),
        sa.ForeignKeyConstraint(
            ["region_code"], ["region.code"], name=op.f("fk_control_plan_region_code_region")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_control_plan")),
        sa.UniqueConstraint("region_code", "year", name="uq_control_plan_region_year"),
    )
    op.create_table(
        "control_plan_line",
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("finess", sa.String(length=9), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("department", sa.String(length=3), nullable=False),
        sa.Column("risk_score", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("draw_key", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["control_plan.id"],
            name=op.f("fk_control_plan_line_plan_id_control_plan"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["finess"],
            ["establishment.finess"],
            name=op.f("fk_control_plan_line_finess_establishment"),
        ),
        sa.PrimaryKeyConstraint("plan_id", "finess", name=op.f("pk_control_plan_line")),
    )
    op.create_table(
        "control",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(length=2), nullable=False),
        sa.Column("finess", sa.String(length=9), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("controlled_on", sa.Date(), nullable=False),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("compliant", sa.Boolean(), nullable=False),
        sa.Column("unduly_paid", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=True),
        _recorded("recorded_at"),
        sa.CheckConstraint("kind IN ('documents', 'on_site')", name=op.f("ck_control_kind")),
        sa.CheckConstraint("unduly_paid >= 0", name=op.f("ck_control_unduly_paid_positive")),
        sa.CheckConstraint(
            "NOT (compliant AND unduly_paid > 0)", name=op.f("ck_control_compliant_owes_nothing")
        ),
        sa.ForeignKeyConstraint(
            ["region_code"], ["region.code"], name=op.f("fk_control_region_code_region")
        ),
        sa.ForeignKeyConstraint(
            ["finess"], ["establishment.finess"], name=op.f("fk_control_finess_establishment")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_control_project_id_project")
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["control_plan.id"], name=op.f("fk_control_plan_id_control_plan")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_control")),
    )
    op.create_index(op.f("ix_control_region_code"), "control", ["region_code"])
    op.create_index(op.f("ix_control_finess"), "control", ["finess"])
    op.create_table(
        "control_recovery_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("control_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("proof_reference", sa.Text(), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=True),
        _recorded("recorded_at"),
        sa.CheckConstraint(
            "type IN ('notified', 'recovered')", name=op.f("ck_control_recovery_event_type")
        ),
        sa.CheckConstraint(
            "(type = 'recovered') = (amount IS NOT NULL AND amount > 0)",
            name=op.f("ck_control_recovery_event_amount"),
        ),
        sa.ForeignKeyConstraint(
            ["control_id"],
            ["control.id"],
            name=op.f("fk_control_recovery_event_control_id_control"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_control_recovery_event")),
    )
    op.create_index(
        op.f("ix_control_recovery_event_control_id"), "control_recovery_event", ["control_id"]
    )
    op.create_table(
        "frozen_revision_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("finess", sa.String(length=9), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("vendor_siren", sa.String(length=9), nullable=True),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=True),
        _recorded("attempted_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_frozen_revision_attempt")),
    )
    op.create_index(
        op.f("ix_frozen_revision_attempt_finess"), "frozen_revision_attempt", ["finess"]
    )


def downgrade() -> None:
    op.drop_table("frozen_revision_attempt")
    op.drop_table("control_recovery_event")
    op.drop_table("control")
    op.drop_table("control_plan_line")
    op.drop_table("control_plan")
