"""Idempotency-Key: a retry with the same key and body gets the first answer back."""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.errors import Conflict, FieldError, Invalid

REPLAY_HEADER = "Idempotent-Replayed"


def request_hash(method: str, path: str, query: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


async def claim(
    session: AsyncSession, principal: Principal, key: str, fingerprint: str
) -> tuple[int, bytes] | None:
    """Claim `key` for this caller, or return the stored (status, body) of its first use.

    The claim is a row inserted in the request's own transaction: a concurrent request with
    the same key waits on it, then replays the committed answer (or takes over the key if
    the first one rolled back), so a body is never applied twice.
    """
    if not key or len(key) > 200:
        raise Invalid(
            "Idempotency-Key must be 1 to 200 characters.",
            [FieldError("Idempotency-Key", "invalid", "1 to 200 characters")],
        )
    inserted = await session.execute(
        text(
            "INSERT INTO idempotency_key (principal, key, request_hash, status_code, response) "
            "VALUES (:p, :k, :h, 0, '') ON CONFLICT DO NOTHING RETURNING key"
        ),
        {"p": principal.label, "k": key, "h": fingerprint},
    )
    if inserted.scalar_one_or_none() is not None:
        return None
    stored = (
        await session.execute(
            text(
                "SELECT request_hash, status_code, response FROM idempotency_key "
                "WHERE principal = :p AND key = :k"
            ),
            {"p": principal.label, "k": key},
        )
    ).one()
    if stored.request_hash != fingerprint:
        raise Invalid(
            "This Idempotency-Key was already used with another request body.",
            [FieldError("Idempotency-Key", "reused", "use a new key for a new request")],
        )
    if stored.status_code == 0:
        raise Conflict("A request with this Idempotency-Key is still being processed.")
    return stored.status_code, bytes(stored.response)


async def remember(
    session: AsyncSession, principal: Principal, key: str, status_code: int, body: bytes
) -> None:
    await session.execute(
        text(
            "UPDATE idempotency_key SET status_code = :s, response = :r "
            "WHERE principal = :p AND key = :k"
        ),
        {"s": status_code, "r": body, "p": principal.label, "k": key},
    )
