"""Each establishment's series bounds in `latest_measurement`; `extract_revision` keyed by
what identifies a revision.

`latest_measurement` gains, per establishment:
- `first_start`, `first_end`: its first window, the oldest active period;
- `newest_start`: the start of the newest period stored, withdrawn or not.
With them, a month pushed after everything stored (nearly every row of a monthly batch)
is checked from this one row: no stored period can have its start, and its first window
and previous period are known. Only the other rows search `measurement`.

`extract_revision` loses its surrogate `id`, which nothing read: (finess, period_start,
revision), already unique, becomes the primary key, and each revision written updates one
index fewer (and no sequence).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = (
    "accompanied_persons, eligible_persons, mssante_messages_sent, dmp_fed_persons, "
    "active_files, active_files_with_care_project, active_files_with_agenda_event, "
    "eprescriptions_imported, eparcours_exchanges"
)


def upgrade() -> None:
    op.execute("ALTER TABLE extract_revision DROP CONSTRAINT pk_extract_revision")
    op.execute("ALTER TABLE extract_revision DROP COLUMN id")
    op.execute("ALTER TABLE extract_revision DROP CONSTRAINT uq_extract_revision_finess")
    op.execute(
        "ALTER TABLE extract_revision ADD CONSTRAINT pk_extract_revision "
        "PRIMARY KEY (finess, period_start, revision)"
    )

    op.execute(
        "ALTER TABLE latest_measurement ADD COLUMN first_start date, "
        "ADD COLUMN first_end date, ADD COLUMN newest_start date"
    )
    # Rebuilt whole from measurement (it is derived from it), as the app rebuilds it.
    op.execute("TRUNCATE latest_measurement")
    op.execute(
        f"""
        INSERT INTO latest_measurement (finess, period_start, period_end, revision, first_window,
                                        received_at, {COUNTS}, first_start, first_end,
                                        newest_start)
        SELECT m.finess, m.period_start, m.period_end, m.revision, m.first_window,
               m.received_at, {", ".join(f"m.{c.strip()}" for c in COUNTS.split(","))},
               f.period_start, f.period_end, s.newest_start
        FROM (
            SELECT finess,
                   min(period_start) FILTER (WHERE NOT withdrawn) AS first_start,
                   max(period_start) FILTER (WHERE NOT withdrawn) AS latest_start,
                   max(period_start) AS newest_start
            FROM measurement GROUP BY finess
        ) s
        JOIN measurement m ON m.finess = s.finess AND m.period_start = s.latest_start
        JOIN measurement f ON f.finess = s.finess AND f.period_start = s.first_start
        """
    )
    for column in ("first_start", "first_end", "newest_start"):
        op.execute(f"ALTER TABLE latest_measurement ALTER COLUMN {column} SET NOT NULL")


def downgrade() -> None:
    for column in ("first_start", "first_end", "newest_start"):
        op.execute(f"ALTER TABLE latest_measurement DROP COLUMN {column}")
    op.execute("ALTER TABLE extract_revision DROP CONSTRAINT pk_extract_revision")
    op.execute(
        "ALTER TABLE extract_revision ADD CONSTRAINT uq_extract_revision_finess "
        "UNIQUE (finess, period_start, revision)"
    )
    op.execute("ALTER TABLE extract_revision ADD COLUMN id bigserial")
    op.execute("ALTER TABLE extract_revision ADD CONSTRAINT pk_extract_revision PRIMARY KEY (id)")
