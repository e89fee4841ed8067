"""SQL of the establishment referential."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.access.scopes import establishment_visible
from app.db import copy_records
from app.errors import FieldError, Invalid, NotFound
from app.projects.models import ProjectEstablishment
from app.referential.finess import InvalidFiness, check_finess
from app.referential.models import Establishment, ReferentialImport


def finess_or_not_found(raw: str) -> str:
    """The FINESS number of the establishment a request acts on (in its path, or the
    establishment a control is recorded for): an invalid one is not found, as an unknown
    one."""
    try:
        return check_finess(raw)
    except InvalidFiness as exc:
        raise NotFound(f"Establishment {raw} not found ({exc}).") from exc


def finess_or_invalid(raw: str) -> str:
    """The FINESS number of a request's `finess` field: an invalid one is refused (422)
    naming the field."""
    try:
        return check_finess(raw)
    except InvalidFiness as exc:
        raise Invalid(str(exc), [FieldError("finess", "invalid_finess", str(exc))]) from exc


async def visible_establishment(
    session: AsyncSession, principal: Principal, finess: str
) -> Establishment | None:
    return (
        await session.execute(
            select(Establishment).where(
                Establishment.finess == finess, establishment_visible(principal)
            )
        )
    ).scalar_one_or_none()


async def project_of(session: AsyncSession, finess: str) -> int | None:
    return (
        await session.execute(
            select(ProjectEstablishment.project_id).where(ProjectEstablishment.finess == finess)
        )
    ).scalar_one_or_none()


async def existing_finess(
    session: AsyncSession, numbers: Sequence[str]
) -> dict[str, Establishment]:
    rows = (
        await session.execute(select(Establishment).where(Establishment.finess.in_(numbers)))
    ).scalars()
    return {row.finess: row for row in rows}


STAGING_COLUMNS = (
    "ordinal",
    "place",
    "finess",
    "name",
    "legal_entity_finess",
    "department",
    "category_code",
    "category_label",
    "closed_on",
)


async def start_staging(conn: asyncpg.Connection) -> None:
    """An empty staging table for the establishments of one file (temporary, this session's)."""
    await conn.execute(
        """CREATE TEMP TABLE IF NOT EXISTS establishment_staging (
               ordinal bigint, place text, finess varchar(9), name text,
               legal_entity_finess varchar(9), department varchar(3), category_code varchar(4),
               category_label text, closed_on date
           ) ON COMMIT DELETE ROWS"""
    )
    await conn.execute("TRUNCATE establishment_staging")


async def stage(conn: asyncpg.Connection, records: Sequence[tuple[Any, ...]]) -> None:
    await copy_records(conn, "establishment_staging", records, STAGING_COLUMNS)


async def staged_duplicates(conn: asyncpg.Connection, limit: int) -> tuple[list[Any], int]:
    """The first `limit` FINESS numbers staged more than once (with their places in the file,
    in file order) and how many there are."""
    rows = await conn.fetch(
        """SELECT finess, array_agg(place ORDER BY ordinal) AS places, count(*) OVER () AS total
           FROM establishment_staging GROUP BY finess HAVING count(*) > 1
           ORDER BY min(ordinal) LIMIT $1""",
        limit,
    )
    return list(rows), (rows[0]["total"] if rows else 0)


# The first occurrence of a number wins. Counts come back, not rows: a national file writes
# hundreds of thousands of them.
_UPSERT_STAGED = """
WITH chosen AS (
    SELECT DISTINCT ON (finess) * FROM establishment_staging ORDER BY finess, ordinal
), written AS (
    INSERT INTO establishment AS e (finess, name, legal_entity_finess, department, region_code,
                                    category_code, category_label, closed_on)
    SELECT c.finess, c.name, c.legal_entity_finess, c.department, d.region_code,
           c.category_code, c.category_label, c.closed_on
    FROM chosen c JOIN department d ON d.code = c.department
    ON CONFLICT (finess) DO UPDATE SET
        name = EXCLUDED.name, legal_entity_finess = EXCLUDED.legal_entity_finess,
        department = EXCLUDED.department, region_code = EXCLUDED.region_code,
        category_code = EXCLUDED.category_code, category_label = EXCLUDED.category_label,
        closed_on = EXCLUDED.closed_on, updated_at = now()
    WHERE (e.name, e.legal_entity_finess, e.department, e.category_code, e.category_label,
           e.closed_on)
          IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.legal_entity_finess, EXCLUDED.department,
                            EXCLUDED.category_code, EXCLUDED.category_label, EXCLUDED.closed_on)
    RETURNING (xmax = 0) AS inserted, e.closed_on
)
SELECT (SELECT count(*) FROM chosen) AS kept,
       count(*) FILTER (WHERE inserted) AS created,
       count(*) FILTER (WHERE NOT inserted) AS updated,
       count(*) FILTER (WHERE closed_on IS NOT NULL) AS closed
FROM written
"""


async def upsert_staged(conn: asyncpg.Connection) -> asyncpg.Record:
    """Store the staged establishments: (kept, created, updated, closed) counts."""
    return await conn.fetchrow(_UPSERT_STAGED)


async def add_import(session: AsyncSession, job: ReferentialImport) -> ReferentialImport:
    session.add(job)
    await session.flush()
    return job


async def get_import(session: AsyncSession, job_id: int) -> ReferentialImport | None:
    return await session.get(ReferentialImport, job_id)


async def update_import(session: AsyncSession, job_id: int, **values: Any) -> None:
    await session.execute(
        update(ReferentialImport).where(ReferentialImport.id == job_id).values(**values)
    )
