"""Abuse limits: request size and time (413, 400), and a per-token rate limit (429).

The rate limit counts requests per token and minute in PostgreSQL (an UNLOGGED table), so
every server process enforces the same limit; a lost counter only forgives a minute.
"""

from __future__ import annotations

import asyncio
import math
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.access.principal import bearer_token_hash
from app.access.repository import principal_of
from app.config import get_settings
from app.dashboards.repository import DATA_VERSION_SQL
from app.db import get_database
from app.errors import DomainError, FieldError, TooLarge, send_problem

WINDOW_SECONDS = 60
IMPORTS_PATH = "/api/v1/referential/imports"  # FINESS files: ESMS_MAX_IMPORT_BYTES


class BodyTimeout(DomainError):
    status, title, code = 400, "Bad request", "body_timeout"


class BodyLimitMiddleware:
    """Refuse a body larger than ESMS_MAX_BODY_BYTES (413) or slower than
    ESMS_BODY_TIMEOUT_SECONDS to arrive (400), before the app spends anything on it."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        settings = get_settings()
        limit, timeout = settings.max_body_bytes, settings.body_timeout_seconds
        if scope["path"] == IMPORTS_PATH:  # a whole FINESS file, streamed to disk
            limit, timeout = settings.max_import_bytes, settings.import_body_timeout_seconds
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await send_problem(
                    send,
                    scope,
                    413,
                    "Payload too large",
                    f"The body exceeds {limit} bytes; split the batch.",
                    "too_large",
                )
                return
        deadline = time.monotonic() + timeout
        received = 0

        async def guarded() -> Message:
            nonlocal received
            try:
                async with asyncio.timeout_at(
                    asyncio.get_running_loop().time() + max(0.0, deadline - time.monotonic())
                ):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(
                    f"The body did not arrive within {timeout:g} s.",
                    [FieldError("body", "body_timeout", "send the whole body at once")],
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise TooLarge(f"The body exceeds {limit} bytes; split the batch.")
            return message

        await self.app(scope, guarded, send)


# One statement, one round trip, in its own transaction (the connection is in autocommit):
# count the request in the token's minute, and read what the request will need anyway, the
# token's row (who calls) and the data version (what the dashboards' answers are keyed by).
ADMIT = f"""
WITH hit AS (
    INSERT INTO rate_window (token_hash, window_start, requests)
    VALUES ($1, to_timestamp($2), 1)
    ON CONFLICT (token_hash, window_start)
    DO UPDATE SET requests = rate_window.requests + 1
    RETURNING requests
)
SELECT hit.requests, t.id, t.role, t.vendor_siren, t.region_code, t.name, t.revoked_at,
       t.expires_at, ({DATA_VERSION_SQL}) AS data_version
FROM hit LEFT JOIN access_token t ON t.token_hash = $1
"""
FORGET = "DELETE FROM rate_window WHERE window_start < now() - interval '1 hour'"


class RateLimitMiddleware:
    """At most ESMS_RATE_LIMIT_PER_MINUTE requests per token and minute.

    The same round trip authenticates the token (the route's dependency then finds the
    caller in the request's state) and reads the data version at the request's arrival.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = bearer_token_hash(scope) if scope["type"] == "http" else None
        if token is None:
            await self.app(scope, receive, send)
            return
        limit = get_settings().rate_limit_per_minute
        now = time.time()
        window = math.floor(now / WINDOW_SECONDS) * WINDOW_SECONDS
        async with get_database().driver() as raw:
            row = await raw.fetchrow(ADMIT, token, window)
            if row["requests"] == 1 and int(now) % 7 == 0:  # now and then, forget old windows
                await raw.execute(FORGET)
        count = row["requests"]
        if count > limit:
            retry = str(max(1, math.ceil(window + WINDOW_SECONDS - now)))
            await send_problem(
                send,
                scope,
                429,
                "Too many requests",
                f"At most {limit} requests per minute per token; retry in {retry} s.",
                "rate_limited",
                headers=[(b"retry-after", retry.encode())],
            )
            return
        state = scope.setdefault("state", {})
        state["data_version"] = row["data_version"]
        if row["id"] is not None:
            principal = principal_of(row)
            if principal is not None:
                state["principal"] = principal
        await self.app(scope, receive, send)
