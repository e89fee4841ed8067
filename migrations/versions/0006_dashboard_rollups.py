"""Rollups of the dashboards, kept by triggers: one row per scope and month (monthly
series), one row per scope (summary counts) and per scope and balance status (funding).

`monthly_rollup` holds, per scope (`N` national, `R:84` a region's establishments, `A:84`
what an ARS of region 84 sees, `D:69` a département) and month, who reported, how many meet
each target and all of them, and the quartiles of each rate. It is derived data: the
triggers below append to `rollup_stale` the months a write touches, in the same transaction
as the write, and the dashboards recompute those months (and only those) before reading.

`summary_rollup` and `status_rollup` hold the current figures of each scope (counts of
establishments and reports; projects and funding by balance status); any write to
the tables they derive from appends a row to `summary_stale`, and they are recomputed whole
(one set-based pass for every scope) before the next read.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RATES = ("mssante_rate", "dmp_rate", "active_files_rate", "care_project_rate", "agenda_rate")

# Trigger functions: each appends to `rollup_stale` the months of the measurements its
# statement touched, read from the transition tables `changed` (and `before` for updates).
FUNCTIONS = {
    "rollup_mark_months": "SELECT DISTINCT period_end FROM changed",
    "rollup_mark_establishments": """
        SELECT DISTINCT m.period_end FROM measurement m
        WHERE m.finess IN (SELECT finess FROM changed)""",
    # An establishment that moves to another département (and so region).
    "rollup_mark_moved_establishments": """
        SELECT DISTINCT m.period_end
        FROM before b JOIN changed a ON a.finess = b.finess
        JOIN measurement m ON m.finess = a.finess
        WHERE (a.department, a.region_code) IS DISTINCT FROM (b.department, b.region_code)""",
    # A membership that moves from one project to another (an ARS sees its projects).
    "rollup_mark_moved_members": """
        SELECT DISTINCT m.period_end
        FROM before b JOIN changed a ON a.finess = b.finess
        JOIN measurement m ON m.finess = a.finess
        WHERE a.project_id IS DISTINCT FROM b.project_id""",
    # A project that changes region.
    "rollup_mark_moved_projects": """
        SELECT DISTINCT m.period_end
        FROM before b JOIN changed a ON a.id = b.id
        JOIN project_establishment pe ON pe.project_id = a.id
        JOIN measurement m ON m.finess = pe.finess
        WHERE a.region_code IS DISTINCT FROM b.region_code""",
}
NEW = "NEW TABLE AS changed"
OLD = "OLD TABLE AS changed"
BOTH = "OLD TABLE AS before NEW TABLE AS changed"
TRIGGERS = (
    ("measurement", "INSERT", NEW, "rollup_mark_months"),
    ("measurement", "UPDATE", NEW, "rollup_mark_months"),
    ("measurement", "DELETE", OLD, "rollup_mark_months"),
    ("project_establishment", "INSERT", NEW, "rollup_mark_establishments"),
    ("project_establishment", "DELETE", OLD, "rollup_mark_establishments"),
    ("project_establishment", "UPDATE", BOTH, "rollup_mark_moved_members"),
    ("establishment", "UPDATE", BOTH, "rollup_mark_moved_establishments"),
    ("project", "UPDATE", BOTH, "rollup_mark_moved_projects"),
)


# The tables the current figures derive from.
SUMMARY_SOURCES = (
    "establishment",
    "project",
    "project_establishment",
    "project_event",
    "latest_measurement",
)
MONEY = ("committed", "advanced", "payable", "to_recover", "balance_paid")


def _trigger(table: str, event: str) -> str:
    return f"{table}_{event.lower()}_marks_rollup"


def upgrade() -> None:
    op.create_table(
        "monthly_rollup",
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("targets", sa.Text(), nullable=False),
        sa.Column("reporting", sa.Integer(), nullable=False),
        sa.Column("all_met", sa.Integer(), nullable=False),
        *(sa.Column(f"{code}_met", sa.Integer(), nullable=False) for code in RATES),
        *(sa.Column(f"{code}_q", postgresql.ARRAY(sa.Float())) for code in RATES),
        sa.PrimaryKeyConstraint("scope", "month", name=op.f("pk_monthly_rollup")),
    )
    op.create_table(
        "rollup_stale",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollup_stale")),
    )
    op.create_table(
        "summary_rollup",
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("targets", sa.Text(), nullable=False),
        sa.Column("last_month", sa.Date(), nullable=False),
        *(
            sa.Column(name, sa.Integer(), nullable=False)
            for name in (
                "establishments",
                "in_projects",
                "reporting",
                "reported_last_month",
                "meeting_all_targets",
            )
        ),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_summary_rollup")),
    )
    op.create_table(
        "status_rollup",
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("projects", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Numeric(16, 2), nullable=False) for name in MONEY),
        sa.PrimaryKeyConstraint("scope", "status", name=op.f("pk_status_rollup")),
    )
    op.create_table(
        "summary_stale",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_summary_stale")),
    )
    op.execute(
        """CREATE FUNCTION rollup_mark_summary() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO summary_stale DEFAULT VALUES;
            RETURN NULL;
        END $$"""
    )
    for table in SUMMARY_SOURCES:
        op.execute(
            f"CREATE TRIGGER {table}_marks_summary AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION rollup_mark_summary()"
        )
    for function, months in FUNCTIONS.items():
        op.execute(
            f"""CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO rollup_stale (month) {months};
                RETURN NULL;
            END $$"""
        )
    for table, event, tables, function in TRIGGERS:
        op.execute(
            f"CREATE TRIGGER {_trigger(table, event)} AFTER {event} ON {table} "
            f"REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    # The months already stored are computed on the first read.
    op.execute("INSERT INTO rollup_stale (month) SELECT DISTINCT period_end FROM measurement")


def downgrade() -> None:
    for table in SUMMARY_SOURCES:
        op.execute(f"DROP TRIGGER {table}_marks_summary ON {table}")
    op.execute("DROP FUNCTION rollup_mark_summary()")
    for table in ("summary_stale", "status_rollup", "summary_rollup"):
        op.drop_table(table)
    for table, event, _, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER {_trigger(table, event)} ON {table}")
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION {function}()")
    op.drop_table("rollup_stale")
    op.drop_table("monthly_rollup")
