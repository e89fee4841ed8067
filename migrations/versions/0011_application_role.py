"""The service connects as an application role that reads and writes data and nothing more.

Migrations run as the owner of the schema; the service runs as `esms_app`, which may read and
write the rows of every table, but neither change the schema (no CREATE on it, and it owns
nothing, so it can neither ALTER nor DROP a table or a trigger, nor disable one) nor rewrite
history: on `audit_event` it may only read and append (no UPDATE, DELETE or TRUNCATE), and it
only reads `alembic_version`. Default privileges grant the same on the tables and sequences
that later migrations create, so that a new table is usable by the service at once.

The role is created here when it does not exist and the owner may create roles (the embedded
server); where the owner may not (CloudNativePG), the cluster declares it as a managed role
with its password (deploy/k8s/postgres-cluster.yaml). Roles belong to the whole server, so
the downgrade revokes what this database grants and leaves the role itself in place.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLE = "esms_app"


def upgrade() -> None:
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                CREATE ROLE {ROLE} LOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created meanwhile by the migration of another database of the server
        END $$
        """
    )
    op.execute(f"GRANT CONNECT ON DATABASE {_database()} TO {ROLE}")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {ROLE}")
    op.execute(f"REVOKE UPDATE, DELETE ON audit_event FROM {ROLE}")
    op.execute(f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {ROLE}")
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {ROLE}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {ROLE}"
    )


def downgrade() -> None:
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES FROM {ROLE}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {ROLE}"
    )
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {ROLE}")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {ROLE}")
    op.execute(f"REVOKE CONNECT ON DATABASE {_database()} FROM {ROLE}")


def _database() -> str:
    name = op.get_bind().exec_driver_sql("SELECT current_database()").scalar_one()
    return '"' + name.replace('"', '""') + '"'
