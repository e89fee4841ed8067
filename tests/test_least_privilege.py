"""The service connects to PostgreSQL as an application role that reads and writes data but
can neither change the schema nor rewrite the audit trail; the migrations run as the owner
and grant exactly that (migration 0011), to the tables of later migrations too."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app import migrate
from app.config import get_settings
from app.db import APP_ROLE, resolve_database_url
from tests.conftest import _create_database, _dsn

TAMPERING = [
    ("UPDATE audit_event SET action = 'x'", "permission denied"),
    ("DELETE FROM audit_event", "permission denied"),
    ("TRUNCATE audit_event", "permission denied"),
    ("DROP TRIGGER audit_event_append_only ON audit_event", "must be owner"),
    ("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only", "must be owner"),
    ("ALTER TABLE measurement ADD COLUMN note text", "must be owner"),
    ("DROP TABLE measurement", "must be owner"),
    ("CREATE TABLE scratch (id int)", "permission denied for schema public"),
    ("UPDATE alembic_version SET version_num = '0001'", "permission denied"),
    # the data version moves only with an audited write (migration 0017)
    ("UPDATE data_version SET version = 0", "permission denied"),
    ("SELECT setval('data_version_seq', 1)", "permission denied"),
    ("ALTER TABLE audit_event DISABLE TRIGGER audit_event_bumps_data_version", "must be owner"),
]


async def test_the_service_connects_as_the_application_role(session):
    user, superuser = (
        await session.execute(
            text("SELECT current_user, usesuper FROM pg_user WHERE usename = current_user")
        )
    ).one()
    assert (user, superuser) == (APP_ROLE, False)


@pytest.mark.parametrize(("statement", "refusal"), TAMPERING)
async def test_the_services_own_connection_cannot_change_history_nor_schema(
    client, factory, session, statement, refusal
):
    admin = await factory.token("national")
    created = await client.post(
        "/api/v1/vendors", json={"siren": "732829320", "name": "Éditeur"}, headers=admin
    )
    assert created.status_code == 201  # the service writes, and audits, as that role
    audited = await session.execute(
        text("SELECT count(*) FROM audit_event WHERE action = 'vendor.create'")
    )
    assert audited.scalar_one() >= 1
    with pytest.raises(DBAPIError, match=refusal):
        async with session.begin_nested():
            await session.execute(text(statement))


async def test_tables_of_later_migrations_are_granted_by_default(owner_engine):
    """A table the owner creates after 0011 is readable and writable by the service, and
    nothing more, with no grant of its own."""
    async with owner_engine.connect() as owner, owner.begin() as transaction:
        await owner.execute(text("CREATE TABLE later_table (id serial PRIMARY KEY)"))
        granted = await owner.execute(
            text(
                "SELECT p, has_table_privilege(:r, 'later_table', p) FROM unnest("
                "ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'TRIGGER']) p"
            ),
            {"r": APP_ROLE},
        )
        sequence = await owner.execute(
            text("SELECT has_sequence_privilege(:r, 'later_table_id_seq', 'USAGE')"),
            {"r": APP_ROLE},
        )
        assert dict(granted.all()) == {
            "SELECT": True,
            "INSERT": True,
            "UPDATE": True,
            "DELETE": True,
            "TRUNCATE": False,
            "TRIGGER": False,
        }
        assert sequence.scalar_one() is True
        await transaction.rollback()


async def test_0011_is_reversible(pg_server):
    url = await _create_database(pg_server, "esms_roles")
    await migrate.upgrade(url)
    conn = await asyncpg.connect(_dsn(url, "esms_roles"))
    query = "SELECT has_table_privilege($1, 'measurement', 'INSERT')"
    try:
        assert await conn.fetchval(query, APP_ROLE) is True
        await migrate.downgrade(url, "0010")
        assert await conn.fetchval(query, APP_ROLE) is False
        await migrate.upgrade(url)
        assert await conn.fetchval(query, APP_ROLE) is True
        audit = await conn.fetchval(
            "SELECT array_agg(p ORDER BY p) FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', "
            "'DELETE', 'TRUNCATE']) p WHERE has_table_privilege($1, 'audit_event', p)",
            APP_ROLE,
        )
        assert audit == ["INSERT", "SELECT"]
    finally:
        await conn.close()


def test_the_embedded_server_serves_as_the_application_role(pg_server, monkeypatch):
    """Without DATABASE_URL: the migrations (and the operator's commands) as the owner, the
    service as the application role."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("ESMS_DATABASE_URL", raising=False)
    monkeypatch.setenv("ESMS_RESOLVED_DATABASE_URL", pg_server)  # the server already started
    get_settings.cache_clear()
    try:
        assert resolve_database_url(owner=True) == pg_server
        service = resolve_database_url()
        assert service.startswith(f"postgresql+asyncpg://{APP_ROLE}@/postgres?")
    finally:
        get_settings.cache_clear()
