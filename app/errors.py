"""Domain errors and their single rendering as application/problem+json (RFC 9457)."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from asyncpg.exceptions import OperatorInterventionError, PostgresConnectionError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.fields import FieldError

__all__ = ["FieldError"]

PROBLEM_JSON = "application/problem+json"
# character_not_in_repertoire, untranslatable_character: a NUL byte in some text input.
_INVALID_TEXT = {"22021", "22P05"}
log = logging.getLogger("esms.errors")


class DomainError(Exception):
    status = 400
    title = "Bad request"
    code = "bad_request"

    def __init__(self, detail: str, errors: list[FieldError] | None = None, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.extra = extra


class Unauthorized(DomainError):
    status, title, code = 401, "Unauthorized", "unauthorized"


class Forbidden(DomainError):
    status, title, code = 403, "Forbidden", "forbidden"


class NotFound(DomainError):
    status, title, code = 404, "Not found", "not_found"


class Conflict(DomainError):
    status, title, code = 409, "Conflict", "conflict"


class Invalid(DomainError):
    status, title, code = 422, "Invalid request", "invalid"


class TooLarge(DomainError):
    status, title, code = 413, "Payload too large", "too_large"


class Unavailable(DomainError):
    status, title, code = 503, "Service unavailable", "unavailable"


def problem(
    request: Request,
    status: int,
    title: str,
    detail: str,
    code: str,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:esms-usage:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": getattr(request.state, "request_id", None),
        "errors": [e.as_dict() for e in errors or []],
    }
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_UNAVAILABLE = (
    OperationalError,
    InterfaceError,
    OSError,
    PostgresConnectionError,  # class 08: the connection is gone
    OperatorInterventionError,  # class 57: shutting down, starting up
)


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says that the database cannot be reached (503), not that a query failed."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, _UNAVAILABLE) or (
            isinstance(seen, DBAPIError) and seen.connection_invalidated
        ):
            return True
        seen = seen.__cause__
    return False


async def send_problem(
    send: Any,
    scope: Scope,
    status: int,
    title: str,
    detail: str,
    code: str,
    errors: list[FieldError] | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """The same problem+json as `problem`, sent by an ASGI middleware (before any route)."""
    body = orjson.dumps(
        {
            "type": f"urn:esms-usage:problem:{code}",
            "title": title,
            "status": status,
            "detail": detail,
            "instance": scope["path"],
            "request_id": scope.get("state", {}).get("request_id"),
            "errors": [e.as_dict() for e in errors or []],
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _pydantic_field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return problem(
            request, exc.status, exc.title, exc.detail, exc.code, exc.errors, **exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            FieldError(_pydantic_field(tuple(e["loc"])), e["type"], e["msg"]) for e in exc.errors()
        ]
        return problem(
            request,
            422,
            "Invalid request",
            "The request does not match the schema.",
            "invalid",
            errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {400: "Bad request", 404: "Not found", 405: "Method not allowed"}.get(
            exc.status_code, "Error"
        )
        return problem(
            request,
            exc.status_code,
            title,
            str(exc.detail),
            title.lower().replace(" ", "_"),
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(OSError)
    @app.exception_handler(PostgresConnectionError)
    @app.exception_handler(OperatorInterventionError)
    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return problem(
            request,
            503,
            "Service unavailable",
            "The database cannot be reached; nothing was stored. Retry later.",
            "unavailable",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if database_unavailable(exc):
            return await _database_down(request, exc)
        if getattr(exc.orig, "sqlstate", None) in _INVALID_TEXT:
            return problem(
                request,
                400,
                "Bad request",
                "A text value holds a character PostgreSQL cannot store (such as NUL).",
                "invalid_text",
            )
        log.exception("database error", exc_info=exc)
        return problem(request, 500, "Internal error", "Unexpected database error.", "internal")


class UnexpectedErrorMiddleware:
    """Answer an exception that no handler took with one problem+json (500, or 503 when the
    database is gone) instead of letting it reach the server, which would log "Exception in
    ASGI application" and close the client's connection. Also what the middlewares raise
    (rate limit, Idempotency-Key: they use the database before any route runs)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started:  # the answer is under way: nothing else can be said
                raise
            if database_unavailable(exc):
                log.warning("database unavailable: %s", exc)
                await send_problem(
                    send,
                    scope,
                    503,
                    "Service unavailable",
                    "The database cannot be reached; nothing was stored. Retry later.",
                    "unavailable",
                    headers=[(b"retry-after", b"5")],
                )
                return
            log.exception("unhandled error", exc_info=exc)
            await send_problem(send, scope, 500, "Internal error", "Unexpected error.", "internal")
