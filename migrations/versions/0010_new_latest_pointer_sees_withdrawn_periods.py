"""A new `latest_measurement` row takes as `newest_start` the newest period stored, withdrawn
ones included.

An establishment whose periods were all withdrawn has no row in `latest_measurement`; when
its series starts again, the write creates one from the batch alone, while later withdrawn
periods may still be stored. This row trigger, fired only when a row is created (never for
the monthly update of an existing one), raises `newest_start` to what `measurement` holds,
so that sending one of those periods again is still read as a revision of it.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION latest_measurement_sees_every_period() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE latest_measurement l SET newest_start = s.newest
            FROM (SELECT max(period_start) AS newest FROM measurement
                  WHERE finess = NEW.finess) s
            WHERE l.finess = NEW.finess AND s.newest > l.newest_start;
            RETURN NULL;
        END $$;
        """
    )
    op.execute(
        "CREATE TRIGGER latest_measurement_sees_every_period AFTER INSERT ON latest_measurement "
        "FOR EACH ROW EXECUTE FUNCTION latest_measurement_sees_every_period()"
    )
    # Pointers created before this migration by a series that started again.
    op.execute(
        """
        UPDATE latest_measurement l SET newest_start = s.newest
        FROM (SELECT finess, max(period_start) AS newest FROM measurement GROUP BY finess) s
        WHERE l.finess = s.finess AND s.newest > l.newest_start
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER latest_measurement_sees_every_period ON latest_measurement")
    op.execute("DROP FUNCTION latest_measurement_sees_every_period()")
