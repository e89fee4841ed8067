"""SQL of access tokens."""

from __future__ import annotations

from datetime import datetime

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
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= now():
        return None
    return Principal(row.id, Role(row.role), row.vendor_siren, row.region_code, row.name)


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
