"""FastAPI dependencies that authenticate the bearer token and check the role, and the route
class that checks both before a request's body is read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal, Role
from app.access.repository import principal_for_token
from app.db import SessionDep, get_database
from app.errors import Forbidden, Unauthorized
from app.identity.service import principal_for_jwt
from app.identity.tokens import looks_like_jwt


async def authenticate(request: Request, session: AsyncSession) -> Principal:
    """The caller of `request`, from its bearer token (401 without a valid one): the one
    place that says who calls, for the route dependency and for the check before the body."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("A bearer token is required (Authorization: Bearer <token>).")
    token = token.strip()
    if looks_like_jwt(token):
        # An access token of a configured OpenID Connect provider: its rights come from the
        # grant of its person or client application.
        return await principal_for_jwt(session, token)
    principal = await principal_for_token(session, token)
    if principal is None:
        raise Unauthorized("The token is unknown, expired or revoked.")
    return principal


async def current_principal(request: Request, session: SessionDep) -> Principal:
    known = getattr(request.state, "principal", None)
    if known is not None:  # authenticated on arrival, or before the body was read
        return known
    principal = await authenticate(request, session)
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


# Whether the object a route's path names is in the caller's scope: raises NotFound if not.
# Given the session, the caller and the path's row id (a valid one: 1 .. 2**31 - 1).
SeesObject = Callable[[AsyncSession, Principal, int], Awaitable[Any]]


class RoleRequirement:
    """The roles that may call an operation at all: any other gets 403, whatever the object
    and the body. With `sees`, a permitted caller gets 404 for an object outside its scope,
    also before the body is read."""

    def __init__(self, roles: tuple[Role, ...], sees: tuple[str, SeesObject] | None = None):
        if not roles:
            raise ValueError("name the roles that may call the operation")
        self.roles = roles
        self.sees = sees

    def check(self, principal: Principal) -> Principal:
        if principal.role not in self.roles:
            allowed = ", ".join(role.value for role in self.roles)
            raise Forbidden(f"Only {allowed} tokens may call this operation.")
        return principal

    async def __call__(self, principal: CurrentPrincipal) -> Principal:
        return self.check(principal)

    async def check_request(self, request: Request) -> None:
        """Authenticate, check the role and the scope of the path's object, with a session
        of its own, before the body is read."""
        known = getattr(request.state, "principal", None)
        if known is not None and self.sees is None:  # authenticated on arrival
            self.check(known)
            return
        async with get_database().sessions() as session:
            principal = self.check(known or await authenticate(request, session))
            if self.sees is not None:
                name, sees = self.sees
                raw = str(request.path_params.get(name, ""))
                if raw.isascii() and raw.isdigit() and 1 <= int(raw) < 2**31:
                    await sees(session, principal, int(raw))  # else FastAPI's 422
        request.state.principal = principal


def requires(*roles: Role, sees: tuple[str, SeesObject] | None = None) -> Any:
    """Declare on a route the roles that may call it:
    `@router.post(..., dependencies=[requires(Role.ARS, Role.NATIONAL)])`; `sees=("project_id",
    project_in_scope)` also answers 404 for an object outside the caller's scope before the
    body is read."""
    return Depends(RoleRequirement(roles, sees))


def role_requirement(route: APIRoute) -> RoleRequirement | None:
    """The RoleRequirement declared on `route`, if any."""
    for dependency in route.dependencies:
        if isinstance(dependency, DependsParam) and isinstance(
            dependency.dependency, RoleRequirement
        ):
            return dependency.dependency
    return None


def api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """The API routes among `routes` (an app's or a router's), included routers walked."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # a router included in the app
            yield from api_routes(route.original_router.routes)


class AuthorisedRoute(APIRoute):
    """A route whose role requirement is checked before FastAPI reads and validates the
    body: a caller whose role may never call the operation gets 403, not a 400 or 422 that
    says something of the body. The JSON body is then read strictly (`parse_json`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        requirement = role_requirement(self)
        if self.body_field is None:  # the handler reads its body itself, after the checks
            return handler

        async def authorised(request: Request) -> Response:
            from app.batches import is_json, parse_json

            if requirement is not None:
                await requirement.check_request(request)
            content_type = request.headers.get("content-type", "")
            if content_type and is_json(content_type):
                body = await request.body()
                if body:  # an empty one is FastAPI's to refuse (the body is required)
                    # Starlette keeps the parsed body here for FastAPI's `request.json()`.
                    request._json = parse_json(body)
            return await handler(request)

        return authorised


def require_role(principal: Principal, *roles: Role, action: str) -> None:
    """Refuse a write that the caller's role may not do (403, the object itself is visible).
    Prefer `requires` on the route: it refuses before the body is read."""
    if principal.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise Forbidden(f"Only {allowed} tokens may {action}.")
