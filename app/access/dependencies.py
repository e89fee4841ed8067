"""FastAPI dependencies that authenticate the bearer token and check the role."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.access.principal import Principal, Role
from app.access.repository import principal_for_token
from app.db import SessionDep
from app.errors import Forbidden, Unauthorized
from app.identity.service import principal_for_jwt
from app.identity.tokens import looks_like_jwt


async def current_principal(request: Request, session: SessionDep) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("A bearer token is required (Authorization: Bearer <token>).")
    token = token.strip()
    if looks_like_jwt(token):  # an access token of a configured OpenID Connect provider
        principal = await principal_for_jwt(session, token)
    else:
        principal = await principal_for_token(session, token)
    if principal is None:
        raise Unauthorized("The token is unknown, expired or revoked.")
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_role(principal: Principal, *roles: Role, action: str) -> None:
    """Refuse a write that the caller's role may not do (403, the object itself is visible)."""
    if principal.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise Forbidden(f"Only {allowed} tokens may {action}.")
