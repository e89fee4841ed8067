"""Abuse limits: request size and time (413, 400), and a per-token rate limit (429).

The rate limit counts requests per token and minute in PostgreSQL (an UNLOGGED table), so
every server process enforces the same limit; a lost counter only forgives a minute.
"""

from __future__ import annotations

import asyncio
import math
import time

from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.access.principal import bearer_token_hash
from app.config import get_settings
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


class RateLimitMiddleware:
    """At most ESMS_RATE_LIMIT_PER_MINUTE requests per token and minute."""

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
        async with get_database().engine.begin() as connection:
            count = (
                await connection.execute(
                    text(
                        """INSERT INTO rate_window (token_hash, window_start, requests)
                           VALUES (:t, to_timestamp(:w), 1)
                           ON CONFLICT (token_hash, window_start)
                           DO UPDATE SET requests = rate_window.requests + 1
                           RETURNING requests"""
                    ),
                    {"t": token, "w": window},
                )
            ).scalar_one()
            if count == 1 and int(now) % 7 == 0:  # now and then, forget old windows
                await connection.execute(
                    text("DELETE FROM rate_window WHERE window_start < now() - interval '1 hour'")
                )
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
        await self.app(scope, receive, send)
