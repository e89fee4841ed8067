"""SQL of access tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from asyncpg import Record
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.models import AccessToken
from app.access.principal import Principal, Role, hash_token, new_token
from app.clock import now


async def create_token(
    session: AsyncSession,
    role: Role,
    *,
    vendor_siren: str | None = None,
    region_code: str | None = None,
    name: str = "",
    expires_at: datetime | None = None,
) -> tuple[str, AccessToken]:
    token = new_token()
    row = AccessToken(
        token_hash=hash_token(token),
        role=role.value,
        vendor_siren=vendor_siren,
        region_code=region_code,
        name=name,
        expires_at=expires_at,
    )
    session.add(row)
    await session.flush()
    return token, row


async def principal_for_token(session: AsyncSession, token: str) -> Principal | None:
    row = (
        await session.execute(
            select(AccessToken).where(AccessToken.token_hash == hash_token(token))
        )
    ).scalar_one_or_none()
    return None if row is None else principal_of(row)


def principal_of(row: Any) -> Principal | None:
    """The caller a token stands for, from its row (an AccessToken or a record of its
    columns); None once it is revoked or expired."""
    get = row.get if isinstance(row, Record) else lambda name: getattr(row, name)
    if get("revoked_at") is not None:
        return None
    expires_at = get("expires_at")
    if expires_at is not None and expires_at <= now():
        return None
    return Principal(
        get("id"), Role(get("role")), get("vendor_siren"), get("region_code"), get("name")
    )


async def revoke_token(session: AsyncSession, token_id: int) -> bool:
    result = await session.execute(
        update(AccessToken)
        .where(AccessToken.id == token_id, AccessToken.revoked_at.is_(None))
        .values(revoked_at=now())
        .returning(AccessToken.id)
    )
    return result.scalar_one_or_none() is not None


async def list_tokens(session: AsyncSession) -> list[AccessToken]:
    return list((await session.execute(select(AccessToken).order_by(AccessToken.id))).scalars())
