"""Mon espace santé pilots: applications, payment events, monthly usage and its revisions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COUNTS = (
    "ins_qualified_identities",
    "dmp_documents_sent",
    "mssante_messages_sent",
    "citizen_messages_sent",
)


def _counts() -> list[sa.Column]:
    return [sa.Column(name, sa.Integer(), nullable=False) for name in _COUNTS]


def upgrade() -> None:
    op.create_table(
        "pilot_application",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign", sa.String(length=8), nullable=False),
        sa.Column("finess", sa.String(length=9), nullable=False),
        sa.Column("legal_entity_finess", sa.String(length=9), nullable=False),
        sa.Column("region_code", sa.String(length=2), nullable=False),
        sa.Column("domain", sa.String(length=16), nullable=False),
        sa.Column("technical_maturity", sa.String(length=24), nullable=False),
        sa.Column("dmp_connection", sa.String(length=12), nullable=False),
        sa.Column("mssante_connection", sa.String(length=12), nullable=False),
        sa.Column("applied_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "domain IN ('pa_residential', 'ph_residential', 'home_care')",
            name=op.f("ck_pilot_application_domain"),
        ),
        sa.CheckConstraint(
            "technical_maturity IN ('segur_dui_installing', 'exchange_capable', 'none')",
            name=op.f("ck_pilot_application_technical_maturity"),
        ),
        sa.CheckConstraint(
            "dmp_connection IN ('effective', 'planned', 'none')",
            name=op.f("ck_pilot_application_dmp_connection"),
        ),
        sa.CheckConstraint(
            "mssante_connection IN ('effective', 'planned', 'none')",
            name=op.f("ck_pilot_application_mssante_connection"),
        ),
        sa.CheckConstraint(
            "status IN ('applied', 'selected', 'not_selected', 'withdrawn')",
            name=op.f("ck_pilot_application_status"),
        ),
        sa.CheckConstraint(
            "(status = 'applied') = (decided_on IS NULL)",
            name=op.f("ck_pilot_application_decision_dated"),
        ),
        sa.CheckConstraint(
            "(status IN ('selected', 'withdrawn')) = (amount IS NOT NULL)",
            name=op.f("ck_pilot_application_pilot_amount"),
        ),
        sa.ForeignKeyConstraint(
            ["finess"],
            ["establishment.finess"],
            name=op.f("fk_pilot_application_finess_establishment"),
        ),
        sa.ForeignKeyConstraint(
            ["region_code"], ["region.code"], name=op.f("fk_pilot_application_region_code_region")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pilot_application")),
        sa.UniqueConstraint("campaign", "finess", name=op.f("uq_pilot_application_campaign")),
    )
    op.create_index(
        op.f("ix_pilot_application_legal_entity_finess"),
        "pilot_application",
        ["legal_entity_finess"],
        unique=False,
    )
    op.create_index(
        op.f("ix_pilot_application_region_code"),
        "pilot_application",
        ["region_code"],
        unique=False,
    )
    op.create_table(
        "pilot_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "type IN ('convention_signed', 'intermediate_report_received', "
            "'final_report_received', 'paid', 'withdrawn')",
            name=op.f("ck_pilot_event_type"),
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["pilot_application.id"],
            name=op.f("fk_pilot_event_application_id_pilot_application"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pilot_event")),
        sa.UniqueConstraint("application_id", "type", name=op.f("uq_pilot_event_application_id")),
    )
    op.create_index(
        op.f("ix_pilot_event_application_id"), "pilot_event", ["application_id"], unique=False
    )
    op.create_table(
        "pilot_usage",
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("vendor_siren", sa.String(length=9), nullable=True),
        sa.Column("sender_role", sa.String(length=16), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        *_counts(),
        sa.CheckConstraint(
            "EXTRACT(DAY FROM month) = 1", name=op.f("ck_pilot_usage_first_day_of_month")
        ),
        sa.CheckConstraint(
            "ins_qualified_identities >= 0 AND dmp_documents_sent >= 0 "
            "AND mssante_messages_sent >= 0 AND citizen_messages_sent >= 0",
            name=op.f("ck_pilot_usage_counts_not_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["pilot_application.id"],
            name=op.f("fk_pilot_usage_application_id_pilot_application"),
        ),
        sa.PrimaryKeyConstraint("application_id", "month", name=op.f("pk_pilot_usage")),
    )
    op.create_table(
        "pilot_usage_revision",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("vendor_siren", sa.String(length=9), nullable=True),
        sa.Column("sender_role", sa.String(length=16), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        *_counts(),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["pilot_application.id"],
            name=op.f("fk_pilot_usage_revision_application_id_pilot_application"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pilot_usage_revision")),
        sa.UniqueConstraint(
            "application_id",
            "month",
            "revision",
            name=op.f("uq_pilot_usage_revision_application_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("pilot_usage_revision")
    op.drop_table("pilot_usage")
    op.drop_index(op.f("ix_pilot_event_application_id"), table_name="pilot_event")
    op.drop_table("pilot_event")
    op.drop_index(op.f("ix_pilot_application_region_code"), table_name="pilot_application")
    op.drop_index(op.f("ix_pilot_application_legal_entity_finess"), table_name="pilot_application")
    op.drop_table("pilot_application")
