"""Idempotency-Key on every POST: a retry with the same key and body gets the first answer.

The key is claimed in its own committed statement before the request runs, so a retry that
arrives while the first is still running gets a 409; once the first answered, retries get
its stored answer back (`Idempotent-Replayed: true`) and nothing is written again. The same
key with another body is refused with 422. A request that ends in a server error releases
its key, so the retry is processed; when the database itself went away (503), the key is
released as soon as it answers again. A claim left by a process that died mid-request is
taken over after ten minutes. Keys are kept 48 hours.

Keys belong to who calls, as the rate limit counts them (`state["caller"]`, set by
`app.access.limits` on arrival): an API token by its id, a person or client application of
an OpenID Connect provider by its issuer and subject, so a client that refreshes its
short-lived access token between a request and its retry still gets its first answer. Only
a caller authenticated on arrival holds keys: a revoked token, or an identity whose grant
was withdrawn, gets its 401 or 403 rather than an answer given before.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db import get_database
from app.errors import FieldError, send_problem

REPLAY_HEADER = "Idempotent-Replayed"
KEPT = "48 hours"
ABANDONED = "10 minutes"
ABANDONED_SECONDS = 600
log = logging.getLogger("esms.idempotency")

FORGET = f"DELETE FROM idempotency_key WHERE created_at < now() - interval '{KEPT}'"
# Claim the key; a claim left by a request that died is taken over once abandoned.
CLAIM = f"""
INSERT INTO idempotency_key (principal, key, request_hash, status_code, response, content_type)
VALUES ($1, $2, $3, 0, '', '') ON CONFLICT (principal, key) DO UPDATE
SET request_hash = EXCLUDED.request_hash, created_at = now()
WHERE idempotency_key.status_code = 0
  AND idempotency_key.request_hash = EXCLUDED.request_hash
  AND idempotency_key.created_at < now() - interval '{ABANDONED}'
RETURNING key
"""
STORED = (
    "SELECT request_hash, status_code, response, content_type "
    "FROM idempotency_key WHERE principal = $1 AND key = $2"
)
SETTLE = (
    "UPDATE idempotency_key SET status_code = $1, response = $2, content_type = $3 "
    "WHERE principal = $4 AND key = $5"
)
RELEASE = "DELETE FROM idempotency_key WHERE principal = $1 AND key = $2"


def request_hash(method: str, path: str, query: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return value.decode("latin-1")
    return None


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, b"idempotency-key") if scope["type"] == "http" else None
        state = scope.get("state", {}) if key is not None else {}
        caller = state.get("caller") if state.get("principal") is not None else None
        if key is None or scope["method"] != "POST" or caller is None:
            await self.app(scope, receive, send)
            return
        if not 1 <= len(key) <= 200:
            await send_problem(
                send,
                scope,
                422,
                "Invalid request",
                "Idempotency-Key: 1 to 200 characters.",
                "invalid",
                [FieldError("Idempotency-Key", "invalid", "1 to 200 characters")],
            )
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        fingerprint = request_hash(
            "POST", scope["path"], scope.get("query_string", b"").decode(), body
        )

        # Each statement commits on its own: the claim is visible to a retry at once.
        async with get_database().driver() as raw:
            if random.random() < 0.01:
                await raw.execute(FORGET)
            claimed = await raw.fetchrow(CLAIM, caller, key, fingerprint)
            stored = None if claimed is not None else await raw.fetchrow(STORED, caller, key)
        if stored is not None:
            if stored["request_hash"] != fingerprint:
                await send_problem(
                    send,
                    scope,
                    422,
                    "Invalid request",
                    "This Idempotency-Key was already used with another request.",
                    "reused",
                    [FieldError("Idempotency-Key", "reused", "use a new key for a new request")],
                )
            elif stored["status_code"] == 0:
                await send_problem(
                    send,
                    scope,
                    409,
                    "Conflict",
                    "A request with this Idempotency-Key is still being processed; retry later.",
                    "in_progress",
                    [
                        FieldError(
                            "Idempotency-Key",
                            "in_progress",
                            "the first request has not answered yet",
                        )
                    ],
                )
            else:
                await send(
                    {
                        "type": "http.response.start",
                        "status": stored["status_code"],
                        "headers": [
                            (b"content-type", stored["content_type"].encode()),
                            (REPLAY_HEADER.lower().encode(), b"true"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": bytes(stored["response"])})
            return

        replayed = False

        async def replay_body() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status, content_type, parts = 500, "", []

        async def capture(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name == b"content-type":
                        content_type = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_body, capture)
        finally:
            await self._settle(caller, key, status, content_type, b"".join(parts))

    async def _settle(
        self, caller: str, key: str, status: int, content_type: str, body: bytes
    ) -> None:
        try:
            await _write_settlement(caller, key, status, content_type, body)
        except Exception:  # the database went away: settle as soon as it is back
            log.warning("could not settle idempotency key; retrying in the background")
            task = asyncio.create_task(_settle_when_back(caller, key, status, content_type, body))
            _SETTLING.add(task)
            task.add_done_callback(_SETTLING.discard)


async def _write_settlement(
    caller: str, key: str, status: int, content_type: str, body: bytes
) -> None:
    """Store the answer for retries, or release the key after a server error."""
    async with get_database().driver() as raw:
        if status >= 500:
            await raw.execute(RELEASE, caller, key)
        else:
            await raw.execute(SETTLE, status, body, content_type, caller, key)


# Settlements waiting for the database; kept referenced so that they are not collected.
_SETTLING: set[asyncio.Task[None]] = set()


async def _settle_when_back(
    caller: str, key: str, status: int, content_type: str, body: bytes
) -> None:
    """Settle a key whose request ended while the database was away (typically its 503):
    left claimed, the client's retries would get 409 until the claim is abandoned. Try again
    every second until the database answers; past ABANDONED the claim is taken over anyway."""
    deadline = time.monotonic() + ABANDONED_SECONDS
    while time.monotonic() < deadline:
        await asyncio.sleep(1)
        try:
            await _write_settlement(caller, key, status, content_type, body)
        except Exception:
            continue
        log.info("idempotency key settled once the database answered again")
        return
