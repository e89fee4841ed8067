"""Each project's standing kept in a table, and the marks of the projects whose standing a
write may have moved (`app/projects/standings.py` explains the whole).

- `project_standing`: one row per project, what `app.projects.payments.standings` computed for
  it (status, establishments and those meeting the targets, advance paid, balance due, the
  day from which it is overdue, the last period received, the notification date, each
  establishment's latest period and whether it meets the targets) and the campaign it was
  computed under.
- `project_standing_stale`: one row per project a write marked, numbered. Statement-level
  triggers append them, in the write's own transaction, from the transition tables of every
  table the rule reads: `latest_measurement` (through `project_establishment`),
  `project_establishment` (membership), `project_event`, `project` itself, and an
  establishment whose closing date changes. A statement that writes 40 000 rows appends
  one row per project it touched, in one INSERT.

Every existing project is marked, so the first read computes them all. The service role
reads and writes both tables through the default privileges of migration 0011 (the trigger
functions run as the writer). Downgrade drops the triggers, their functions and the two
tables: the standings are derived data, recomputed by the rule on demand.

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Trigger functions: each appends the projects of the rows its statement touched, read from
# the transition tables `changed` (and `before` for updates).
FUNCTIONS = {
    "standing_mark_measured": """
        SELECT DISTINCT pe.project_id FROM changed c
        JOIN project_establishment pe ON pe.finess = c.finess""",
    "standing_mark_members": "SELECT DISTINCT project_id FROM changed",
    "standing_mark_moved_members": """
        SELECT project_id FROM changed UNION SELECT project_id FROM before""",
    "standing_mark_events": "SELECT DISTINCT project_id FROM changed",
    "standing_mark_moved_events": """
        SELECT project_id FROM changed UNION SELECT project_id FROM before""",
    "standing_mark_projects": "SELECT id FROM changed",
    "standing_mark_closed": """
        SELECT DISTINCT pe.project_id
        FROM before b JOIN changed a ON a.finess = b.finess
        JOIN project_establishment pe ON pe.finess = a.finess
        WHERE a.closed_on IS DISTINCT FROM b.closed_on""",
}
NEW = "NEW TABLE AS changed"
OLD = "OLD TABLE AS changed"
BOTH = "OLD TABLE AS before NEW TABLE AS changed"
TRIGGERS = (
    ("latest_measurement", "INSERT", NEW, "standing_mark_measured"),
    ("latest_measurement", "UPDATE", NEW, "standing_mark_measured"),
    ("latest_measurement", "DELETE", OLD, "standing_mark_measured"),
    ("project_establishment", "INSERT", NEW, "standing_mark_members"),
    ("project_establishment", "DELETE", OLD, "standing_mark_members"),
    ("project_establishment", "UPDATE", BOTH, "standing_mark_moved_members"),
    ("project_event", "INSERT", NEW, "standing_mark_events"),
    ("project_event", "DELETE", OLD, "standing_mark_events"),
    ("project_event", "UPDATE", BOTH, "standing_mark_moved_events"),
    ("project", "INSERT", NEW, "standing_mark_projects"),
    ("project", "UPDATE", NEW, "standing_mark_projects"),
    ("establishment", "UPDATE", BOTH, "standing_mark_closed"),
)


def _trigger(table: str, event: str) -> str:
    return f"{table}_{event.lower()}_marks_standing"


def upgrade() -> None:
    op.create_table(
        "project_standing",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("campaign", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("qualifies_for_balance", sa.Boolean(), nullable=False),
        sa.Column("establishments", sa.Integer(), nullable=False),
        sa.Column("establishments_meeting_targets", sa.Integer(), nullable=False),
        sa.Column("advance_paid", sa.Numeric(14, 2), nullable=False),
        sa.Column("balance_due", sa.Numeric(14, 2), nullable=True),
        sa.Column("overdue_from", sa.Date(), nullable=True),
        sa.Column("last_period_end", sa.Date(), nullable=True),
        sa.Column("notified_on", sa.Date(), nullable=True),
        sa.Column("compliance", postgresql.JSONB(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_project_standing_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_project_standing")),
    )
    op.create_table(
        "project_standing_stale",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_standing_stale")),
    )
    for function, projects in FUNCTIONS.items():
        op.execute(
            f"""CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO project_standing_stale (project_id) {projects};
                RETURN NULL;
            END $$"""
        )
    for table, event, tables, function in TRIGGERS:
        op.execute(
            f"CREATE TRIGGER {_trigger(table, event)} AFTER {event} ON {table} "
            f"REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    op.execute("INSERT INTO project_standing_stale (project_id) SELECT id FROM project")


def downgrade() -> None:
    for table, event, _, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER {_trigger(table, event)} ON {table}")
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION {function}()")
    op.drop_table("project_standing_stale")
    op.drop_table("project_standing")
