"""Console sessions: who is signed in to the web console, by an HttpOnly cookie.

The interface, for the pages and for other ways of signing in:

- `open_session(db, principal, kind=..., subject=..., label=...)` stores a new session and
  returns the cookie value (shown once, stored as its SHA-256) and the row;
  `set_session_cookie(response, request, value, expires_at)` sends it.
- `resolve(db, cookie_value)` gives the `ConsoleUser` of a live session, or None (unknown,
  expired, signed out, or its principal no longer valid). Each `kind` of session resolves to
  a `Principal` through the resolver registered for it: `token` (the API token pasted at
  sign-in, read again at every request so that a revoked or expired token ends the session
  at once) is built in; another way of signing in registers its own kind with
  `register_resolver(kind, resolver)` (for instance a person whose roles come from grants,
  found by the session's `subject`).
- `ConsoleUserDep` is the FastAPI dependency of a page that needs someone signed in; it
  raises `SignInRequired`, which the console answers with a redirect to the sign-in page.
- `check_csrf(user, submitted)` refuses a form whose CSRF token is not the session's;
  `login_csrf(request, response)` and `check_login_csrf(request, submitted)` protect the
  sign-in form itself (a double-submit cookie, since no session exists yet).
- `close_session(db, user)` signs out; `clear_session_cookie(response)` forgets the cookie.

Cookies are HttpOnly, SameSite=Lax, and Secure when the request came over HTTPS (directly
or through a proxy saying so in X-Forwarded-Proto). Sessions expire after
`ESMS_CONSOLE_SESSION_HOURS` hours. Opening and closing a session are audited.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.access.repository import principal_of
from app.audit import service as audit
from app.clock import now
from app.config import get_settings
from app.console.models import ConsoleSession
from app.dashboards.repository import DATA_VERSION_SQL
from app.db import SessionDep

COOKIE = "esms_console"
LOGIN_CSRF_COOKIE = "esms_console_login"
PATH = "/console"

# A resolver reads the session's row as `RESOLVE` returns it (`subject`, `token_id`…).
Resolver = Callable[[AsyncSession, Any], Awaitable[Principal | None]]


class SignInRequired(Exception):
    """No live session: the page answers with a redirect to the sign-in page."""


class CsrfRefused(Exception):
    """A form came without the session's CSRF token (403)."""


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """Someone signed in: the session, the principal it resolves to, its CSRF token."""

    session_id: int
    principal: Principal
    csrf_token: str
    label: str
    expires_at: datetime


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def _token_principal(db: AsyncSession, row: Any) -> Principal | None:
    # The token's columns came with the session's row (`RESOLVE`), checked as the API checks
    # a bearer token: revoked or expired, no one.
    if row.token_role is None:
        return None
    return principal_of(
        SimpleNamespace(
            id=row.token_id,
            role=row.token_role,
            vendor_siren=row.token_vendor_siren,
            region_code=row.token_region_code,
            name=row.token_name,
            revoked_at=row.token_revoked_at,
            expires_at=row.token_expires_at,
        )
    )


_RESOLVERS: dict[str, Resolver] = {"token": _token_principal}


def register_resolver(kind: str, resolver: Resolver) -> None:
    """Teach the console another kind of session (at most 16 characters)."""
    _RESOLVERS[kind] = resolver


def lifetime() -> timedelta:
    return timedelta(hours=get_settings().console_session_hours)


async def open_session(
    db: AsyncSession,
    principal: Principal,
    *,
    kind: str = "token",
    subject: str | None = None,
    label: str = "",
) -> tuple[str, ConsoleSession]:
    """A new session for `principal`; returns the cookie value and the stored row."""
    if kind not in _RESOLVERS:
        raise ValueError(f"no resolver for console sessions of kind {kind!r}")
    value = secrets.token_urlsafe(32)
    row = ConsoleSession(
        key_hash=_hash(value),
        csrf_token=secrets.token_urlsafe(32),
        kind=kind,
        token_id=principal.token_id if kind == "token" else None,
        subject=subject,
        label=label or principal.name,
        expires_at=now() + lifetime(),
    )
    db.add(row)
    await db.flush()
    await audit.record(
        db,
        principal,
        "console.sign_in",
        "console_session",
        str(row.id),
        region_code=principal.region_code,
        detail={"kind": kind},
    )
    return value, row


# One round trip per page: the session, the token of a token session, and the data version
# as the request arrived (what the page's kept figures are keyed by, as the API reads it with
# its rate limit). The pending upload, possibly large, is not read.
RESOLVE = text(
    f"""SELECT s.id, s.kind, s.token_id, s.subject, s.csrf_token, s.label, s.expires_at,
           s.ended_at, t.role AS token_role, t.vendor_siren AS token_vendor_siren,
           t.region_code AS token_region_code, t.name AS token_name,
           t.revoked_at AS token_revoked_at, t.expires_at AS token_expires_at,
           ({DATA_VERSION_SQL}) AS data_version
    FROM console_session s
    LEFT JOIN access_token t ON s.kind = 'token' AND t.id = s.token_id
    WHERE s.key_hash = :key"""
)


async def resolve(db: AsyncSession, value: str | None) -> ConsoleUser | None:
    """The signed-in user of a cookie value, or None."""
    return (await _lookup(db, value))[0]


async def _lookup(db: AsyncSession, value: str | None) -> tuple[ConsoleUser | None, int | None]:
    """`resolve`, and the data version as read with the session (None without a session)."""
    if not value:
        return None, None
    row = (await db.execute(RESOLVE, {"key": _hash(value)})).first()
    if row is None:
        return None, None
    if row.ended_at is not None or row.expires_at <= now():
        return None, row.data_version
    resolver = _RESOLVERS.get(row.kind)
    principal = await resolver(db, row) if resolver else None
    if principal is None:
        return None, row.data_version
    user = ConsoleUser(row.id, principal, row.csrf_token, row.label, row.expires_at)
    return user, row.data_version


async def close_session(db: AsyncSession, user: ConsoleUser) -> None:
    await db.execute(
        update(ConsoleSession)
        .where(ConsoleSession.id == user.session_id)
        .values(ended_at=now(), pending_upload=None, pending_upload_name=None)
    )
    await audit.record(
        db,
        user.principal,
        "console.sign_out",
        "console_session",
        str(user.session_id),
        region_code=user.principal.region_code,
    )


def _secure(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def set_session_cookie(
    response: Response, request: Request, value: str, expires_at: datetime
) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=max(0, int((expires_at - now()).total_seconds())),
        path=PATH,
        httponly=True,
        secure=_secure(request),
        samesite="lax",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="lax")


def check_csrf(user: ConsoleUser, submitted: str | None) -> None:
    if not submitted or not hmac.compare_digest(submitted, user.csrf_token):
        raise CsrfRefused()


def login_csrf(request: Request, response: Response) -> str:
    """The sign-in form's CSRF token: the one of its cookie, or a new one sent with it."""
    value = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        value,
        max_age=3600,
        path=PATH,
        httponly=True,
        secure=_secure(request),
        samesite="lax",
    )
    return value


def check_login_csrf(request: Request, submitted: str | None) -> None:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not expected or not submitted or not hmac.compare_digest(submitted, expected):
        raise CsrfRefused()


async def keep_upload(db: AsyncSession, user: ConsoleUser, body: bytes, name: str) -> None:
    """Keep a vendor's file between its dry run and its confirmation (one per session)."""
    await db.execute(
        update(ConsoleSession)
        .where(ConsoleSession.id == user.session_id)
        .values(pending_upload=body, pending_upload_name=name)
    )


async def take_upload(db: AsyncSession, user: ConsoleUser) -> tuple[bytes, str] | None:
    """The file kept by the last dry run, removed from the session; None without one."""
    row = await db.get(ConsoleSession, user.session_id)
    if row is None or row.pending_upload is None:
        return None
    kept = (row.pending_upload, row.pending_upload_name or "")
    row.pending_upload, row.pending_upload_name = None, None
    await db.flush()
    return kept


async def current_user(request: Request, session: SessionDep) -> ConsoleUser:
    user, version = await _lookup(session, request.cookies.get(COOKIE))
    if user is None:
        raise SignInRequired()
    request.state.principal = user.principal
    request.state.console_user = user
    request.state.data_version = version
    return user


ConsoleUserDep = Annotated[ConsoleUser, Depends(current_user)]
