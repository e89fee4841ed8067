"""The data version that keys dashboard answers is taken when a write commits, not when it
writes its audit entry: two writes committing in the other order than their audit ids never
leave a dashboard answer missing one of them (migration 0017). Real commits on two
connections of the service's role, in a database of this module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from app import migrate
from app.access.principal import Role
from app.access.repository import create_token
from app.db import APP_ROLE, Database, as_role, make_engine, set_database
from app.main import create_app
from app.referential.finess import make_finess
from tests.conftest import _create_database, _dsn

NAME = "esms_data_version"
# A dashboard filtered by category is always aggregated on the fly (no rollup in between).
SUMMARY = "/api/v1/dashboards/summary?category=500"
VERSION = "SELECT version FROM data_version"


@pytest.fixture(scope="module")
async def url(pg_server) -> str:
    url = await _create_database(pg_server, NAME)
    await migrate.upgrade(url)
    return url


@pytest.fixture
async def app_client(url) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """The app on the module's database, committing for real, and a national token."""
    database = Database(make_engine(as_role(url, APP_ROLE), pool_size=2))
    async with database.sessions() as session:
        token, _ = await create_token(session, Role.NATIONAL, name="national")
        await session.commit()
    set_database(database)
    transport = httpx.ASGITransport(app=create_app(database))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client, {"Authorization": f"Bearer {token}"}
    finally:
        set_database(None)
        await database.dispose()


async def connect(url: str) -> asyncpg.Connection:
    """A connection as the service's role, as a write of the service would hold."""
    return await asyncpg.connect(_dsn(as_role(url, APP_ROLE), NAME))


_serial = iter(range(990_000, 999_999))


async def write_establishment(conn: asyncpg.Connection, action: str = "establishment.create"):
    """A write as the service makes it: the row, and its audit entry."""
    finess = make_finess("75", next(_serial))
    await conn.execute(
        "INSERT INTO audit_event (role, principal, action, object_type, object_id, detail) "
        "VALUES ('national', 'test', $1, 'establishment', $2, '{}')",
        action,
        finess,
    )
    await conn.execute(
        "INSERT INTO establishment (finess, name, legal_entity_finess, department, "
        "region_code, category_code) VALUES ($1, 'EHPAD', $2, '75', '11', '500')",
        finess,
        make_finess("75", next(_serial)),
    )


async def test_writes_committing_out_of_audit_order_never_leave_a_stale_answer(url, app_client):
    client, national = app_client
    before = (await client.get(SUMMARY, headers=national)).json()["counts"]["establishments"]
    first, second = await connect(url), await connect(url)
    try:
        a, b = first.transaction(), second.transaction()
        await a.start()
        await b.start()
        await write_establishment(first)  # A takes its audit id first...
        await write_establishment(second)  # ...B a later one,
        await b.commit()  # and B commits first.
        between = await client.get(SUMMARY, headers=national)
        assert between.json()["counts"]["establishments"] == before + 1  # B's, not yet A's
        await a.commit()
    finally:
        await first.close()
        await second.close()
    after = await client.get(SUMMARY, headers=national)
    assert after.headers["x-cache"] == "miss"
    assert after.json()["counts"]["establishments"] == before + 2  # A's write is there too
    polled = await client.get(
        SUMMARY, headers={**national, "If-None-Match": between.headers["etag"]}
    )
    assert polled.status_code == 200  # a dashboard polling since the first answer sees A too


async def test_the_version_moves_once_per_committed_write(url):
    conn, reader = await connect(url), await connect(url)
    try:
        start = await reader.fetchval(VERSION)
        async with conn.transaction():  # a batch: several audit entries, one write
            for _ in range(3):
                await write_establishment(conn)
            assert await reader.fetchval(VERSION) == start  # not before it commits
        assert await reader.fetchval(VERSION) == start + 1
        async with conn.transaction():  # a console sign-in moves no figure
            await conn.execute(
                "INSERT INTO audit_event (role, principal, action, object_type, object_id, detail) "
                "VALUES ('national', 'test', 'console.sign_in', 'console_session', '1', '{}')"
            )
        with pytest.raises(asyncpg.PostgresError):
            async with conn.transaction():  # a write that fails moves nothing
                await write_establishment(conn)
                await conn.execute("SELECT 1 / 0")
        assert await reader.fetchval(VERSION) == start + 1
        # The service's role reads the version and cannot set it.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE data_version SET version = 1")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("SELECT nextval('data_version_seq')")
    finally:
        await conn.close()
        await reader.close()


async def test_0017_starts_above_every_audit_id_and_carries_idempotency_keys_over(pg_server):
    url = await _create_database(pg_server, "esms_migration_0017")
    conn = await asyncpg.connect(_dsn(url, "esms_migration_0017"))
    try:
        await migrate.upgrade(url, "0015")
        token_id = await conn.fetchval(
            "INSERT INTO access_token (token_hash, role, name) "
            "VALUES ('abc', 'national', 'n') RETURNING id"
        )
        await conn.execute(
            "INSERT INTO idempotency_key (principal, key, request_hash, status_code, response) "
            "VALUES ('abc', 'k', 'h', 201, '')"
        )
        for action in ("vendor.create", "console.sign_in"):
            await conn.execute(
                "INSERT INTO audit_event (role, principal, action, object_type, object_id, "
                "detail) VALUES ('national', 'n', $1, 'x', '1', '{}')",
                action,
            )
        await conn.execute(
            "INSERT INTO dashboard_cache (key, version, content_type, body, computed_ms) "
            "VALUES ('k', '2|2026-11', 'application/json', '', 1)"
        )
        await migrate.upgrade(url, "0017")
        # above every version the old rule gave (audit ids), and no answer kept under one
        assert await conn.fetchval(VERSION) == 2**40 + 3
        assert await conn.fetchval("SELECT count(*) FROM dashboard_cache") == 0
        keys = "SELECT principal FROM idempotency_key"
        assert await conn.fetchval(keys) == f"token:{token_id}"
        await migrate.downgrade(url, "0015")
        assert await conn.fetchval(keys) == "abc"
        assert await conn.fetchval("SELECT to_regclass('data_version')") is None
        await conn.execute(
            "INSERT INTO audit_event (role, principal, action, object_type, object_id, detail) "
            "VALUES ('national', 'n', 'vendor.create', 'x', '2', '{}')"
        )
        await migrate.upgrade(url, "0017")
        assert await conn.fetchval(VERSION) == 2**40 + 4  # above every audit id again
    finally:
        await conn.close()
