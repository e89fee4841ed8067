"""Initial schema: referential, vendors, projects, extracts, access, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 21:13:04.570044
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.referential.geography import DEPARTMENTS, REGIONS

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("principal", sa.Text(), nullable=False),
        sa.Column("region_code", sa.String(length=2), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("object_type", sa.Text(), nullable=False),
        sa.Column("object_id", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("payload_hash", sa.String(length=64), nullable=True),
        sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    op.create_index(
        op.f("ix_audit_event_region_code"), "audit_event", ["region_code"], unique=False
    )
    op.create_table(
        "idempotency_key",
        sa.Column("principal", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.SmallInteger(), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("principal", "key", name=op.f("pk_idempotency_key")),
    )
    op.create_table(
        "region",
        sa.Column("code", sa.String(length=2), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("corsica_or_overseas", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_region")),
    )
    op.create_table(
        "vendor",
        sa.Column("siren", sa.String(length=9), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("siren", name=op.f("pk_vendor")),
    )
    op.create_table(
        "access_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("vendor_siren", sa.String(length=9), nullable=True),
        sa.Column("region_code", sa.String(length=2), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(role = 'vendor') = (vendor_siren IS NOT NULL)",
            name=op.f("ck_access_token_vendor_bound"),
        ),
        sa.CheckConstraint(
            "(role IN ('ars', 'grades')) = (region_code IS NOT NULL)",
            name=op.f("ck_access_token_region_bound"),
        ),
        sa.CheckConstraint(
            "role IN ('vendor', 'ars', 'grades', 'national')", name=op.f("ck_access_token_role")
        ),
        sa.ForeignKeyConstraint(
            ["region_code"], ["region.code"], name=op.f("fk_access_token_region_code_region")
        ),
        sa.ForeignKeyConstraint(
            ["vendor_siren"], ["vendor.siren"], name=op.f("fk_access_token_vendor_siren_vendor")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_access_token_token_hash")),
    )
    op.create_table(
        "department",
        sa.Column("code", sa.String(length=3), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("region_code", sa.String(length=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["region_code"], ["region.code"], name=op.f("fk_department_region_code_region")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_department")),
    )
    op.create_index(op.f("ix_department_region_code"), "department", ["region_code"], unique=False)
    op.create_table(
        "project",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("region_code", sa.String(length=2), nullable=False),
        sa.Column("vendor_siren", sa.String(length=9), nullable=False),
        sa.Column("software", sa.Text(), nullable=False),
        sa.Column("funding_case", sa.String(length=16), nullable=False),
        sa.Column("submitted_on", sa.Date(), nullable=False),
        sa.Column("campaign", sa.String(length=8), nullable=False),
        sa.Column("guichet", sa.String(length=16), nullable=True),
        sa.Column("amoa_requested", sa.Boolean(), nullable=False),
        sa.Column("usage", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("software_amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("hardware", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("amoa", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("total", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("advance", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("balance", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("warnings", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "funding_case IN ('acquisition', 'upgrade', 'generalisation')",
            name=op.f("ck_project_funding_case"),
        ),
        sa.ForeignKeyConstraint(
            ["region_code"], ["region.code"], name=op.f("fk_project_region_code_region")
        ),
        sa.ForeignKeyConstraint(
            ["vendor_siren"], ["vendor.siren"], name=op.f("fk_project_vendor_siren_vendor")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project")),
        sa.UniqueConstraint("reference", name=op.f("uq_project_reference")),
    )
    op.create_index(op.f("ix_project_region_code"), "project", ["region_code"], unique=False)
    op.create_index(op.f("ix_project_vendor_siren"), "project", ["vendor_siren"], unique=False)
    op.create_table(
        "establishment",
        sa.Column("finess", sa.String(length=9), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("legal_entity_finess", sa.String(length=9), nullable=False),
        sa.Column("department", sa.String(length=3), nullable=False),
        sa.Column("region_code", sa.String(length=2), nullable=False),
        sa.Column("category_code", sa.String(length=4), nullable=True),
        sa.Column("category_label", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["department"], ["department.code"], name=op.f("fk_establishment_department_department")
        ),
        sa.ForeignKeyConstraint(
            ["region_code"], ["region.code"], name=op.f("fk_establishment_region_code_region")
        ),
        sa.PrimaryKeyConstraint("finess", name=op.f("pk_establishment")),
    )
    op.create_index(
        op.f("ix_establishment_category_code"), "establishment", ["category_code"], unique=False
    )
    op.create_index(
        op.f("ix_establishment_legal_entity_finess"),
        "establishment",
        ["legal_entity_finess"],
        unique=False,
    )
    op.create_index(
        op.f("ix_establishment_region_code"), "establishment", ["region_code"], unique=False
    )
    op.create_table(
        "project_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=24), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_project_event_project_id_project")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_event")),
    )
    op.create_index(
        op.f("ix_project_event_project_id"), "project_event", ["project_id"], unique=False
    )
    op.create_table(
        "extract_revision",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("finess", sa.String(length=9), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("withdrawn", sa.Boolean(), nullable=False),
        sa.Column("first_window", sa.Boolean(), nullable=False),
        sa.Column("vendor_siren", sa.String(length=9), nullable=True),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("warnings", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
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
            name=op.f("fk_extract_revision_finess_establishment"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_extract_revision")),
        sa.UniqueConstraint(
            "finess", "period_start", "revision", name=op.f("uq_extract_revision_finess")
        ),
    )
    op.create_table(
        "measurement",
        sa.Column("finess", sa.String(length=9), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("withdrawn", sa.Boolean(), nullable=False),
        sa.Column("first_window", sa.Boolean(), nullable=False),
        sa.Column("vendor_siren", sa.String(length=9), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("warnings", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("locked_by_event_id", sa.Integer(), nullable=True),
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
            ["finess"], ["establishment.finess"], name=op.f("fk_measurement_finess_establishment")
        ),
        sa.PrimaryKeyConstraint("finess", "period_start", name=op.f("pk_measurement")),
    )
    op.create_table(
        "project_establishment",
        sa.Column("finess", sa.String(length=9), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("funding_case", sa.String(length=16), nullable=False),
        sa.Column("eligible_hours_share", sa.Numeric(precision=6, scale=5), nullable=True),
        sa.Column("hardware_quote", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("usage", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("software_amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("hardware", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.CheckConstraint(
            "eligible_hours_share IS NULL "
            "OR (eligible_hours_share > 0 AND eligible_hours_share <= 1)",
            name=op.f("ck_project_establishment_eligible_hours_share"),
        ),
        sa.ForeignKeyConstraint(
            ["finess"],
            ["establishment.finess"],
            name=op.f("fk_project_establishment_finess_establishment"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_project_establishment_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("finess", name=op.f("pk_project_establishment")),
    )
    op.create_index(
        op.f("ix_project_establishment_project_id"),
        "project_establishment",
        ["project_id"],
        unique=False,
    )

    # The audit trail is append-only: the database itself refuses to change it.
    op.execute(
        """
        CREATE FUNCTION audit_event_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_event is append-only: % refused', TG_OP;
        END $$;
        """
    )
    op.execute(
        "CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
        "ON audit_event FOR EACH STATEMENT EXECUTE FUNCTION audit_event_is_append_only()"
    )

    region = sa.table(
        "region", sa.column("code"), sa.column("name"), sa.column("corsica_or_overseas")
    )
    department = sa.table(
        "department", sa.column("code"), sa.column("name"), sa.column("region_code")
    )
    op.bulk_insert(
        region,
        [
            {"code": r.code, "name": r.name, "corsica_or_overseas": r.corsica_or_overseas}
            for r in REGIONS.values()
        ],
    )
    op.bulk_insert(
        department,
        [
            {"code": d.code, "name": d.name, "region_code": d.region_code}
            for d in DEPARTMENTS.values()
        ],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_project_establishment_project_id"), table_name="project_establishment")
    op.drop_table("project_establishment")
    op.drop_table("measurement")
    op.drop_table("extract_revision")
    op.drop_index(op.f("ix_project_event_project_id"), table_name="project_event")
    op.drop_table("project_event")
    op.drop_index(op.f("ix_establishment_region_code"), table_name="establishment")
    op.drop_index(op.f("ix_establishment_legal_entity_finess"), table_name="establishment")
    op.drop_index(op.f("ix_establishment_category_code"), table_name="establishment")
    op.drop_table("establishment")
    op.drop_index(op.f("ix_project_vendor_siren"), table_name="project")
    op.drop_index(op.f("ix_project_region_code"), table_name="project")
    op.drop_table("project")
    op.drop_index(op.f("ix_department_region_code"), table_name="department")
    op.drop_table("department")
    op.drop_table("access_token")
    op.drop_table("vendor")
    op.drop_table("region")
    op.drop_table("idempotency_key")
    op.drop_index(op.f("ix_audit_event_region_code"), table_name="audit_event")
    op.drop_table("audit_event")
    op.execute("DROP FUNCTION audit_event_is_append_only()")
