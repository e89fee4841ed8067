"""create_app(): routers, error handlers, request ids, and the database lifespan."""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import migrate
from app.access.dependencies import api_routes, role_requirement
from app.access.limits import BodyLimitMiddleware, RateLimitMiddleware
from app.access.principal import Role
from app.access.router import router as access_router
from app.audit.idempotency import IdempotencyMiddleware
from app.audit.router import router as audit_router
from app.batches import batch_schemas
from app.config import get_settings
from app.console.controls import router as control_pages
from app.console.web import install as install_console
from app.controls.router import router as controls_router
from app.dashboards import rollup
from app.dashboards.router import reports_router
from app.dashboards.router import router as dashboards_router
from app.db import Database, get_database, make_engine, resolve_database_url, set_database
from app.docs import SecurityHeadersMiddleware, install_docs
from app.errors import PROBLEM_JSON, UnexpectedErrorMiddleware, install_error_handlers, problem
from app.extracts.router import router as extracts_router
from app.fhir.router import OutcomeMiddleware
from app.fhir.router import router as fhir_router
from app.identity.console import access_router as identity_access_router
from app.identity.console import router as identity_console_router
from app.identity.router import router as identity_router
from app.indicators.router import router as indicators_router
from app.memo import forget_all
from app.observability.logs import AccessLogMiddleware
from app.observability.metrics import render as render_metrics
from app.pilots.router import router as pilots_router
from app.projects import standings as project_standings
from app.projects.router import envelopes_router
from app.projects.router import router as projects_router
from app.referential import jobs as referential_jobs
from app.referential.router import imports_router as referential_imports_router
from app.referential.router import router as referential_router
from app.request_context import REQUEST_ID as REQUEST_ID_VAR
from app.vendors.router import router as vendors_router

REQUEST_ID = "X-Request-ID"
DESCRIPTION = """Usage monitoring of the ESMS Numérique programme.

DUI vendors push monthly usage extracts per establishment (FINESS ET); the service validates
them, computes the annexe 2 indicators, keeps every revision, computes each project's funding
(annexe 5) and says which projects qualify for the balance payment.

Every call carries `Authorization: Bearer <token>`. Anything outside the caller's scope
answers 404. Errors are `application/problem+json` with per-field details. Months are written
`YYYY-MM` (Europe/Paris); money travels as exact decimal strings such as `"336000.00"`.
"""


class RequestIdMiddleware:
    """Give every request an id (the caller's, or a new one) and echo it in the response."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming[:100] if incoming else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = REQUEST_ID_VAR.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append(
                    (REQUEST_ID.lower().encode(), request_id.encode("latin-1"))
                )
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID_VAR.reset(token)


YOUNG_COLLECTION_THRESHOLD = 20_000


def create_app(database: Database | None = None) -> FastAPI:
    """The ASGI app. Without `database`, the lifespan connects to the configured one."""
    # What a process keeps in memory was computed from one database: a new app keeps nothing.
    forget_all()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = database is None
        db = database or Database(make_engine(resolve_database_url(), get_settings().db_pool_size))
        set_database(db)
        # What is alive once the app is built lives as long as the process: the collector
        # need not walk it again at every full collection of a batch's objects.
        gc.freeze()
        # A request allocates by the thousand (rows, records, results) and frees it all by
        # reference counting: a young-generation pass every 700 allocations (the default)
        # finds nothing to collect, hundreds of times per batch.
        gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])
        every = get_settings().rollup_refresh_seconds
        refreshers = (
            [
                asyncio.create_task(rollup.keep_fresh(db, every)),
                asyncio.create_task(project_standings.keep_fresh(db, every)),
            ]
            if owned and every > 0
            else []
        )
        try:
            yield
        finally:
            await referential_jobs.stop_running()
            for refresher in refreshers:
                refresher.cancel()
                with suppress(asyncio.CancelledError):
                    await refresher
            if owned:
                await db.dispose()
            set_database(None)

    app = FastAPI(
        title="ESMS Numérique usage monitoring",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_docs(app)
    install_error_handlers(app)
    # Outermost last: request id, security headers, access log, unexpected errors, size and
    # time limits, rate limit, idempotency.
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(RateLimitMiddleware)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(OutcomeMiddleware)  # under /fhir, problems become OperationOutcome
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestIdMiddleware)
    for router in (
        vendors_router,
        referential_router,
        referential_imports_router,
        indicators_router,
        projects_router,
        envelopes_router,
        dashboards_router,
        reports_router,
        extracts_router,
        pilots_router,
        controls_router,
        access_router,
        identity_router,
        audit_router,
        fhir_router,
    ):
        app.include_router(router)
    app.include_router(control_pages)
    install_console(app)
    app.include_router(identity_console_router)  # console sign-in by OpenID Connect
    app.include_router(identity_access_router)  # people and their grants

    @app.get(
        "/health",
        tags=["operations"],
        summary="200 when the database answers, 503 otherwise",
        responses={503: {"content": {"application/problem+json": {}}}},
    )
    async def health(request: Request) -> JSONResponse:
        try:
            async with asyncio.timeout(2):
                async with get_database().engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
        except Exception:
            return problem(
                request, 503, "Service unavailable", "The database does not answer.", "unavailable"
            )
        return JSONResponse({"status": "ok", "database": "ok"})

    @app.get(
        "/live",
        tags=["operations"],
        summary="200 while the process serves (liveness; never asks the database)",
    )
    async def live() -> JSONResponse:
        return JSONResponse({"status": "live"})

    @app.get(
        "/ready",
        tags=["operations"],
        summary="200 when the database answers and its schema is at the latest migration",
        responses={503: {"content": {"application/problem+json": {}}}},
    )
    async def ready(request: Request) -> JSONResponse:
        head = migrate.head_revision()
        try:
            async with asyncio.timeout(2):
                async with get_database().engine.connect() as connection:
                    current = (
                        await connection.execute(text("SELECT version_num FROM alembic_version"))
                    ).scalar_one_or_none()
        except Exception:
            return problem(
                request, 503, "Service unavailable", "The database does not answer.", "unavailable"
            )
        if migrate.schema_behind(current):
            return problem(
                request,
                503,
                "Service unavailable",
                f"The schema is at {current}, the code expects {head}: "
                "run `esms-usage db upgrade`.",
                "schema_behind",
            )
        return JSONResponse({"status": "ready", "schema": current})

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        body, content_type = render_metrics()
        return Response(body, media_type=content_type)

    declare_shared_answers(app)
    return app


def _problem_answer(description: str, retry_after: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {}},
    }
    if retry_after:
        answer["headers"] = {
            "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
        }
    return answer


# Answers that come from the layers every API operation goes through (the middlewares and the
# error handlers above), not from the operation itself.
_ANY_CALL = {
    "401": _problem_answer("The bearer token is missing, unknown, expired or revoked."),
    "429": _problem_answer("Too many requests for this token this minute.", retry_after=True),
    "503": _problem_answer("The database cannot be reached; nothing was stored.", retry_after=True),
}
_WITH_PARAMETERS = {"422": _problem_answer("The request does not match the schema.")}
_WITH_BODY = {
    "400": _problem_answer("The body cannot be read (malformed JSON or CSV, or too slow)."),
    "413": _problem_answer("The body is too large."),
    "422": _problem_answer("The request does not match the schema."),
}
_FORBIDDEN = {"403": _problem_answer("The caller's role may not call this operation.")}
_POST = {"409": _problem_answer("A request with this Idempotency-Key is still running.")}


def declare_shared_answers(app: FastAPI) -> None:
    """Declare in the OpenAPI description the answers of the shared layers, so that the
    contract lists every status an operation can give; FastAPI's own 422 (a JSON shape this
    app never sends) becomes the problem+json it does send."""
    generate = app.openapi
    restricted = {
        (method.lower(), route.path)
        for route in api_routes(app.routes)
        if (requirement := role_requirement(route)) and set(requirement.roles) != set(Role)
        for method in route.methods or ()
    }

    def openapi() -> dict[str, Any]:
        schema = generate()
        for path, operations in schema["paths"].items():
            if not path.startswith("/api/"):
                continue
            for method, operation in operations.items():
                answers = operation.setdefault("responses", {})
                default_422 = answers.get("422", {}).get("content", {})
                if "application/json" in default_422:
                    del answers["422"]
                shared = dict(_ANY_CALL)
                if operation.get("parameters"):
                    shared |= _WITH_PARAMETERS
                if method != "get":
                    shared |= _WITH_BODY
                if method == "post":
                    shared |= _POST
                if (method, path) in restricted:
                    shared |= _FORBIDDEN
                for status, answer in shared.items():
                    answers.setdefault(status, answer)
                operation["responses"] = dict(sorted(answers.items()))
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, model_schema in batch_schemas().items():
            components.setdefault(name, model_schema)
        if "HTTPValidationError" in components and "HTTPValidationError" not in str(
            schema["paths"]
        ):
            del components["HTTPValidationError"]
            components.pop("ValidationError", None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def openapi_json() -> str:
    """The OpenAPI document as committed in openapi/openapi.json (stable formatting)."""
    import json

    return json.dumps(create_app().openapi(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"
