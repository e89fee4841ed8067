"""Schema migrations (Alembic) applied once, under an advisory lock."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# Any constant will do; two processes starting together queue on it.
_LOCK_ID = 72_630_001


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def schema_behind(current: str | None) -> bool:
    """True when the database lacks migrations this code needs. A schema ahead of the code
    (a newer release migrated it during a rolling update) still serves this code."""
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    if current == head:
        return False
    if current is None:
        return True
    known = {rev.revision for rev in script.walk_revisions()}
    return current in known


async def upgrade(url: str, target: str = "head") -> None:
    cfg = alembic_config()

    def _run(sync_connection: Connection) -> None:
        cfg.attributes["connection"] = sync_connection
        command.upgrade(cfg, target)

    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _LOCK_ID})
            try:
                await connection.run_sync(_run)
                await connection.commit()
            except BaseException:
                # Leave the failed transaction, so that the unlock below runs and the
                # migration's own error is the one reported.
                await connection.rollback()
                raise
            finally:
                await connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _LOCK_ID})
                await connection.commit()
    finally:
        await engine.dispose()


async def downgrade(url: str, target: str) -> None:
    cfg = alembic_config()

    def _run(sync_connection: Connection) -> None:
        cfg.attributes["connection"] = sync_connection
        command.downgrade(cfg, target)

    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


async def current_revision(url: str) -> str | None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda c: MigrationContext.configure(c).get_current_revision()
            )
    finally:
        await engine.dispose()
