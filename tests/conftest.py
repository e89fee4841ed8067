"""Test fixtures: one embedded PostgreSQL built by the migrations, a rolled-back
transaction per test, and an httpx client on the app."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import migrate
from app.db import (
    APP_ROLE,
    Database,
    as_role,
    make_engine,
    set_database,
    start_embedded_postgres,
)
from app.main import create_app
from tests.factories import Factory

VERSION_MOVES_AT_ONCE = "SET CONSTRAINTS audit_event_bumps_data_version IMMEDIATE"


@pytest.fixture(scope="session")
def pg_server() -> str:
    """An embedded PostgreSQL for the whole run; stopped and deleted at the end."""
    root = Path(tempfile.mkdtemp(prefix="esms-test-"))
    url = start_embedded_postgres(root)
    yield url
    from app.db import stop_embedded_postgres

    stop_embedded_postgres()
    shutil.rmtree(root, ignore_errors=True)


def _dsn(url: str, database: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://").replace(
        "/postgres?", f"/{database}?"
    )


async def _create_database(server_url: str, name: str) -> str:
    conn = await asyncpg.connect(_dsn(server_url, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
        # Durability is not under test: skip fsync to keep the suite fast.
        await conn.execute("ALTER SYSTEM SET fsync = off")
        await conn.execute("ALTER SYSTEM SET synchronous_commit = off")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()
    return server_url.replace("/postgres?", f"/{name}?")


@pytest.fixture(scope="session")
async def database_url(pg_server: str) -> str:
    """A database whose schema is built by the migrations, run as its owner, as in
    production; its owner's URL."""
    url = await _create_database(pg_server, "esms_test")
    await migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
async def engine(database_url: str):
    """The service's engine: it connects as the application role, as in production."""
    engine = make_engine(as_role(database_url, APP_ROLE), pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def owner_engine(database_url: str):
    """The schema owner's engine, for what only the owner may do."""
    engine = make_engine(database_url, pool_size=1)
    yield engine
    await engine.dispose()


@pytest.fixture
async def db(engine) -> AsyncIterator[Database]:
    """The app's database, inside one transaction rolled back after the test: the app's
    commits become savepoints, so nothing a test writes outlives it."""
    connection = await engine.connect()
    transaction = await connection.begin()
    # The data version moves when a write commits (a deferred trigger, migration 0017); this
    # transaction never commits, so the trigger fires at each audited write instead.
    await connection.execute(text(VERSION_MOVES_AT_ONCE))
    database = Database(engine)
    database.sessions = async_sessionmaker(
        bind=connection,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )
    set_database(database)
    try:
        yield database
    finally:
        set_database(None)
        await transaction.rollback()
        await connection.close()


@pytest.fixture
async def session(db: Database) -> AsyncIterator[AsyncSession]:
    async with db.sessions() as session:
        yield session


@pytest.fixture
async def client(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
async def factory(session: AsyncSession, client: httpx.AsyncClient) -> Factory:
    return Factory(session, client)


os.environ.setdefault("ESMS_LOG_LEVEL", "warning")


def app_url(url: str) -> str:
    """The plain postgresql:// URL (DATABASE_URL) by which a server process reaches the
    database of `url`: as the application role, as in production."""
    return as_role(url, APP_ROLE).replace("postgresql+asyncpg://", "postgresql://")
