"""Room in `latest_measurement`'s pages for the monthly update of each row.

Every batch moves each establishment's latest period: one UPDATE per row, on columns no
index covers. With free space on the page PostgreSQL keeps the new version there (a HOT
update) and writes no new index entry; a packed table makes every update a new index entry
and later vacuum work. The table is rewritten so that existing pages get the room too.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE latest_measurement SET (fillfactor = 50)")
    op.execute("CLUSTER latest_measurement USING pk_latest_measurement")


def downgrade() -> None:
    op.execute("ALTER TABLE latest_measurement RESET (fillfactor)")
    op.execute("CLUSTER latest_measurement USING pk_latest_measurement")
