"""SQL of the establishment referential."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.access.scopes import establishment_visible
from app.db import copy_records, raw_connection
from app.projects.models import ProjectEstablishment
from app.referential.models import Establishment


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


_UPSERT = """
INSERT INTO establishment AS e (finess, name, legal_entity_finess, department, region_code,
                                category_code, category_label)
SELECT s.finess, s.name, s.legal_entity_finess, s.department, d.region_code,
       s.category_code, s.category_label
FROM establishment_staging s JOIN department d ON d.code = s.department
ON CONFLICT (finess) DO UPDATE SET
    name = EXCLUDED.name, legal_entity_finess = EXCLUDED.legal_entity_finess,
    department = EXCLUDED.department, region_code = EXCLUDED.region_code,
    category_code = EXCLUDED.category_code, category_label = EXCLUDED.category_label,
    updated_at = now()
WHERE (e.name, e.legal_entity_finess, e.department, e.category_code, e.category_label)
      IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.legal_entity_finess, EXCLUDED.department,
                        EXCLUDED.category_code, EXCLUDED.category_label)
RETURNING (xmax = 0) AS inserted
"""
STAGING_COLUMNS = (
    "finess",
    "name",
    "legal_entity_finess",
    "department",
    "category_code",
    "category_label",
)


async def upsert_establishments(
    session: AsyncSession, records: Iterable[tuple[Any, ...]]
) -> tuple[int, int]:
    """COPY the rows into a staging table, then one upsert. Returns (created, updated)."""
    conn = await raw_connection(session)
    await conn.execute(
        """CREATE TEMP TABLE IF NOT EXISTS establishment_staging (
               finess varchar(9), name text, legal_entity_finess varchar(9),
               department varchar(3), category_code varchar(4), category_label text
           ) ON COMMIT DELETE ROWS"""
    )
    await conn.execute("DELETE FROM establishment_staging")
    await copy_records(conn, "establishment_staging", records, STAGING_COLUMNS)
    written = await conn.fetch(_UPSERT)
    created = sum(1 for r in written if r["inserted"])
    return created, len(written) - created
