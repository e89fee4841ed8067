"""Abuse limits: request size and time (413, 400), and a per-caller rate limit (429).

The rate limit counts requests per caller (an API token, or a person or client application
of an OpenID Connect provider, whatever access token it presents) and minute in PostgreSQL
(an UNLOGGED table), so every server process enforces the same limit; a lost counter only
forgives a minute.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.access.principal import PersonRef, Role, bearer_token, hash_token
from app.access.repository import principal_of
from app.config import get_settings
from app.dashboards.repository import DATA_VERSION_SQL
from app.db import get_database
from app.errors import DomainError, FieldError, TooLarge, send_problem
from app.identity.providers import directory
from app.identity.service import person_principal
from app.identity.tokens import VerifiedToken, looks_like_jwt, verify

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


def identity_key(issuer: str, subject: str) -> str:
    """The caller key of an OpenID Connect identity (a person, or a client application of
    the client-credentials flow): the same across the access tokens it is given."""
    digest = hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()
    return f"oidc:{digest[:32]}"


# One statement, one round trip, in its own transaction (the connection is in autocommit):
# count the request in its caller's minute, and read what the request will need anyway: who
# calls (an API token's row, or the person behind a verified JWT with their grant in force)
# and the data version (what the dashboards' answers are keyed by).
#
# The caller is who calls, not the bytes of its token: `token:<id>` for an API token,
# `identity_key` for an OpenID Connect identity ($5), so that a client refreshing its
# short-lived access token keeps its minute (and its Idempotency-Keys). A token the service
# does not know is counted under its hash ($5 too). (`rate_window.token_hash` holds the
# caller: the column kept its name, migration 0017.)
ADMIT = f"""
WITH token AS (
    SELECT id, role, vendor_siren, region_code, name, revoked_at, expires_at
    FROM access_token WHERE token_hash = $1
), person AS (
    SELECT p.id, p.email, g.id AS grant_id, g.role, g.vendor_siren, g.region_code
    FROM person p JOIN access_grant g ON g.person_id = p.id AND g.withdrawn_at IS NULL
    WHERE p.issuer = $3 AND p.subject = $4
), hit AS (
    INSERT INTO rate_window (token_hash, window_start, requests)
    VALUES (coalesce('token:' || (SELECT id FROM token), $5), to_timestamp($2), 1)
    ON CONFLICT (token_hash, window_start)
    DO UPDATE SET requests = rate_window.requests + 1
    RETURNING token_hash AS caller, requests
)
SELECT hit.caller, hit.requests, t.id, t.role, t.vendor_siren, t.region_code, t.name,
       t.revoked_at, t.expires_at, pe.id AS person_id, pe.email AS person_email,
       pe.grant_id, pe.role AS grant_role, pe.vendor_siren AS grant_vendor_siren,
       pe.region_code AS grant_region_code, ({DATA_VERSION_SQL}) AS data_version
FROM hit LEFT JOIN token t ON true LEFT JOIN person pe ON true
"""
FORGET = "DELETE FROM rate_window WHERE window_start < now() - interval '1 hour'"


async def _verified(token: str) -> VerifiedToken | None:
    """The claims of a bearer JWT that passes every check; None otherwise (the route's
    authentication then says which check failed, or that the provider is unreachable)."""
    try:
        return await verify(directory(), token)
    except DomainError:
        return None


class RateLimitMiddleware:
    """At most ESMS_RATE_LIMIT_PER_MINUTE requests per caller and minute.

    The same round trip authenticates the caller (the route's dependency then finds it in
    the request's state; `state["caller"]` keys its Idempotency-Keys) and reads the data
    version at the request's arrival.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = bearer_token(scope) if scope["type"] == "http" else None
        if token is None:
            await self.app(scope, receive, send)
            return
        # A JWT is checked before it is counted: the identity it names must be its bearer's,
        # or anyone could spend another's minute (or replay its answers) by naming it.
        identity = await _verified(token) if looks_like_jwt(token) else None
        issuer: str | None = None
        subject: str | None = None
        token_hash: str | None = None
        if identity is not None:
            issuer, subject = identity.provider.issuer, identity.subject
            caller = identity_key(issuer, subject)
        else:
            token_hash = caller = hash_token(token)
        limit = get_settings().rate_limit_per_minute
        now = time.time()
        window = math.floor(now / WINDOW_SECONDS) * WINDOW_SECONDS
        async with get_database().driver() as raw:
            row = await raw.fetchrow(ADMIT, token_hash, window, issuer, subject, caller)
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
                f"At most {limit} requests per minute per caller; retry in {retry} s.",
                "rate_limited",
                headers=[(b"retry-after", retry.encode())],
            )
            return
        state = scope.setdefault("state", {})
        state["data_version"] = row["data_version"]
        state["caller"] = row["caller"]
        principal = None
        if row["id"] is not None:
            principal = principal_of(row)
        elif row["grant_id"] is not None and issuer is not None and subject is not None:
            person = PersonRef(row["person_id"], issuer, subject, row["person_email"])
            principal = person_principal(
                person,
                row["grant_id"],
                Role(row["grant_role"]),
                row["grant_vendor_siren"],
                row["grant_region_code"],
            )
        if principal is not None:
            state["principal"] = principal
        await self.app(scope, receive, send)
