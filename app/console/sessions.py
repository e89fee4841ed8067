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
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.models import AccessToken
from app.access.principal import Principal, Role
from app.audit import service as audit
from app.clock import now
from app.config import get_settings
from app.console.models import ConsoleSession
from app.db import SessionDep

COOKIE = "esms_console"
LOGIN_CSRF_COOKIE = "esms_console_login"
PATH = "/console"

Resolver = Callable[[AsyncSession, ConsoleSession], Awaitable[Principal | None]]


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


async def _token_principal(db: AsyncSession, row: ConsoleSession) -> Principal | None:
    token = await db.get(AccessToken, row.token_id)
    if token is None or token.revoked_at is not None:
        return None
    if token.expires_at is not None and token.expires_at <= now():
        return None
    return Principal(token.id, Role(token.role), token.vendor_siren, token.region_code, token.name)


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


async def resolve(db: AsyncSession, value: str | None) -> ConsoleUser | None:
    """The signed-in user of a cookie value, or None."""
    if not value:
        return None
    row = (
        await db.execute(select(ConsoleSession).where(ConsoleSession.key_hash == _hash(value)))
    ).scalar_one_or_none()
    if row is None or row.ended_at is not None or row.expires_at <= now():
        return None
    resolver = _RESOLVERS.get(row.kind)
    principal = await resolver(db, row) if resolver else None
    if principal is None:
        return None
    return ConsoleUser(row.id, principal, row.csrf_token, row.label, row.expires_at)


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
    user = await resolve(session, request.cookies.get(COOKIE))
    if user is None:
        raise SignInRequired()
    request.state.principal = user.principal
    request.state.console_user = user
    return user


ConsoleUserDep = Annotated[ConsoleUser, Depends(current_user)]
