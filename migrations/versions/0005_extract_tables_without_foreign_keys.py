"""Extract tables without foreign keys to establishment; a trigger guards deletions instead.

Each foreign-key check locked and probed the establishment row for every row written (two
thirds of a batch's index work). Ingestion already refuses unknown FINESS in the same
transaction; what the keys still protected, deleting an establishment that has data, the
trigger refuses.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("measurement", "extract_revision", "latest_measurement")


def upgrade() -> None:
    for table in TABLES:
        op.drop_constraint(f"fk_{table}_finess_establishment", table, type_="foreignkey")
    op.execute(
        """
        CREATE FUNCTION establishment_keeps_its_data() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM extract_revision WHERE finess = OLD.finess) THEN
                RAISE EXCEPTION 'establishment % has extracts: it cannot be deleted',
                    OLD.finess USING ERRCODE = 'foreign_key_violation';
            END IF;
            RETURN OLD;
        END $$;
        """
    )
    op.execute(
        "CREATE TRIGGER establishment_keeps_its_data BEFORE DELETE ON establishment "
        "FOR EACH ROW EXECUTE FUNCTION establishment_keeps_its_data()"
    )
    op.execute(
        "CREATE TRIGGER establishment_keeps_its_finess BEFORE UPDATE OF finess ON establishment "
        "FOR EACH ROW WHEN (OLD.finess IS DISTINCT FROM NEW.finess) "
        "EXECUTE FUNCTION establishment_keeps_its_data()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER establishment_keeps_its_finess ON establishment")
    op.execute("DROP TRIGGER establishment_keeps_its_data ON establishment")
    op.execute("DROP FUNCTION establishment_keeps_its_data()")
    for table in TABLES:
        op.create_foreign_key(
            f"fk_{table}_finess_establishment", table, "establishment", ["finess"], ["finess"]
        )
