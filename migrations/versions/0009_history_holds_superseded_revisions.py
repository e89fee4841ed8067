"""Each revision is stored once: the current one in `measurement`, the ones it superseded in
`extract_revision`.

Until now every revision was written twice, in `measurement` (the current one) and in
`extract_revision` (all of them): for a new month, the row that nearly every extract is,
that was a second heap row, index entry and WAL record to no purpose. Now
`measurement` records who sent its revision (`token_id`, `request_id`, next to
`vendor_siren` and `received_at`), and a row trigger moves a revision into
`extract_revision` when a new one replaces it, in the same statement: a revised count, a
withdrawal (which now clears the counts and warnings of the period, as its history row
did), a re-send after a withdrawal. A revision's history is the union of both tables.

The establishment-deletion guard of 0005 now looks in `measurement`, where every
establishment with data has its periods.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = (
    "accompanied_persons",
    "eligible_persons",
    "mssante_messages_sent",
    "dmp_fed_persons",
    "active_files",
    "active_files_with_care_project",
    "active_files_with_agenda_event",
    "eprescriptions_imported",
    "eparcours_exchanges",
)
# What a revision is, in both tables.
REVISION = (
    "finess",
    "period_start",
    "period_end",
    "revision",
    "withdrawn",
    "first_window",
    "vendor_siren",
    "token_id",
    "request_id",
    "received_at",
    "warnings",
    *COUNTS,
)
SENT = ("vendor_siren", "token_id", "request_id", "received_at", "warnings", *COUNTS)


def _guard(table: str) -> None:
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION establishment_keeps_its_data() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM {table} WHERE finess = OLD.finess) THEN
                RAISE EXCEPTION 'establishment % has extracts: it cannot be deleted',
                    OLD.finess USING ERRCODE = 'foreign_key_violation';
            END IF;
            RETURN OLD;
        END $$;
        """
    )


def upgrade() -> None:
    op.execute("ALTER TABLE measurement ADD COLUMN token_id integer, ADD COLUMN request_id text")
    # The current revision's own row, whose counts and warnings are those of the revision
    # (none for a withdrawal). Counts of active periods do not change: the rollups stay.
    op.execute("ALTER TABLE measurement DISABLE TRIGGER USER")
    op.execute(
        f"""
        UPDATE measurement m SET {", ".join(f"{c} = r.{c}" for c in SENT)}
        FROM extract_revision r
        WHERE r.finess = m.finess AND r.period_start = m.period_start
          AND r.revision = m.revision
        """
    )
    op.execute("ALTER TABLE measurement ENABLE TRIGGER USER")
    op.execute(
        """
        DELETE FROM extract_revision r USING measurement m
        WHERE r.finess = m.finess AND r.period_start = m.period_start
          AND r.revision = m.revision
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION measurement_keeps_history() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO extract_revision ({", ".join(REVISION)})
            VALUES ({", ".join(f"OLD.{c}" for c in REVISION)});
            RETURN NULL;
        END $$;
        """
    )
    op.execute(
        "CREATE TRIGGER measurement_keeps_history AFTER UPDATE ON measurement FOR EACH ROW "
        "WHEN (OLD.revision IS DISTINCT FROM NEW.revision) "
        "EXECUTE FUNCTION measurement_keeps_history()"
    )
    _guard("measurement")


def downgrade() -> None:
    _guard("extract_revision")
    op.execute("DROP TRIGGER measurement_keeps_history ON measurement")
    op.execute("DROP FUNCTION measurement_keeps_history()")
    op.execute(
        f"""
        INSERT INTO extract_revision ({", ".join(REVISION)})
        SELECT {", ".join(REVISION)} FROM measurement
        """
    )
    op.execute("ALTER TABLE measurement DROP COLUMN token_id, DROP COLUMN request_id")
