"""HTTP endpoints of the FHIR base `/fhir`: metadata, Measure, MeasureReport in and out.

Answers are `application/fhir+json`; every error is an OperationOutcome whose issues name the
element at fault (`expression`). The errors raised before a route runs or by the shared
layers (token, rate limit, body size, Idempotency-Key) are problem+json elsewhere in the
API: `OutcomeMiddleware` rewrites them as OperationOutcome under `/fhir`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.access.dependencies import AuthorisedRoute, CurrentPrincipal, requires
from app.access.principal import Role
from app.answers import NOT_MODIFIED, answer
from app.batches import read_limited_body
from app.campaigns import current_campaign
from app.clock import Month, now
from app.config import get_settings
from app.db import SessionDep
from app.errors import DomainError, FieldError, NotFound
from app.fhir import examples, service
from app.fhir.mapping import FINESS_SYSTEMS, read_finess, read_measure
from app.fhir.measures import Indicator, capability_statement, measures
from app.fhir.outcome import Issue, dumps, operation_outcome
from app.fhir.validation import LooseIdentifier
from app.referential.finess import InvalidFiness, check_finess

FHIR_JSON = "application/fhir+json"
_ACCEPTED = ("application/fhir+json", "application/json", "application/json+fhir", "")

router = APIRouter(prefix="/fhir", tags=["fhir"], route_class=AuthorisedRoute)
_READERS = requires(Role.VENDOR, Role.ARS, Role.GRADES, Role.NATIONAL)


def fhir_response(resource: dict[str, Any], status: int = 200) -> Response:
    return Response(dumps(resource), status, media_type=FHIR_JSON)


def _answer(example: Any, description: str) -> dict[str, Any]:
    return {"description": description, "content": {FHIR_JSON: {"example": example}}}


def _outcome_answer(description: str, example: Any | None = None) -> dict[str, Any]:
    content: dict[str, Any] = {FHIR_JSON: {"schema": {"type": "object"}}}
    if example is not None:
        content[FHIR_JSON]["example"] = example
    return {"description": description, "content": content}


# What the shared layers answer to any call with a token (OperationOutcome under /fhir).
_ANY_CALL: dict[int | str, dict[str, Any]] = {
    401: _outcome_answer("The bearer token is missing, unknown, expired or revoked"),
    429: _outcome_answer("Too many requests for this token this minute (Retry-After)"),
}


class BadSearch(DomainError):
    status, title, code = 400, "Bad request", "bad_search"


@router.get(
    "/metadata",
    summary="CapabilityStatement: what the FHIR endpoint supports",
    response_class=Response,
    responses={200: _answer(examples.CAPABILITY, "CapabilityStatement (FHIR R4)")},
)
async def metadata() -> Response:
    """Readable without a token, as FHIR clients ask it before anything else."""
    return fhir_response(capability_statement(service.urls(), now().date().isoformat()))


def _measures() -> list[dict[str, Any]]:
    campaign = current_campaign()
    return measures(
        service.urls(),
        campaign.targets,
        (campaign.first_window_months, campaign.later_window_months),
        campaign.year,
    )


def _searchset(resources: list[dict[str, Any]], request: Request, kind: str) -> dict[str, Any]:
    base = service.urls().fhir
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "link": [{"relation": "self", "url": str(request.url)}],
        "entry": [
            {
                "fullUrl": f"{base}/{kind}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


@router.get(
    "/Measure",
    dependencies=[_READERS],
    summary="The annexe 2 indicators as Measure resources (searchset)",
    response_class=Response,
    responses={200: _answer(examples.MEASURE_SEARCH, "searchset Bundle of Measure"), **_ANY_CALL},
)
async def search_measures(
    request: Request,
    principal: CurrentPrincipal,
    url: Annotated[str | None, Query(description="a canonical URL")] = None,
) -> Response:
    """The composite measure `esms-numerique-usage` (one group per indicator, what reports
    refer to), then one Measure per indicator."""
    found = [m for m in _measures() if url is None or m["url"] == url.partition("|")[0]]
    return fhir_response(_searchset(found, request, "Measure"))


@router.get(
    "/Measure/{measure_id}",
    dependencies=[_READERS],
    summary="One Measure",
    response_class=Response,
    responses={
        200: _answer(examples.MEASURE, "Measure"),
        404: _outcome_answer("No such measure"),
        **_ANY_CALL,
    },
)
async def read_measure_resource(measure_id: str, principal: CurrentPrincipal) -> Response:
    for measure in _measures():
        if measure["id"] == measure_id:
            return fhir_response(measure)
    raise NotFound(
        f"No Measure {measure_id}.", [FieldError("Measure.id", "not_found", "unknown measure")]
    )


@router.post(
    "",
    dependencies=[requires(Role.VENDOR)],
    summary="Push MeasureReports in a batch or transaction Bundle",
    response_class=Response,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                FHIR_JSON: {
                    "schema": {
                        "type": "object",
                        "description": "Bundle (FHIR R4) of MeasureReport, one per entry",
                        "required": ["resourceType", "type"],
                        "properties": {
                            "resourceType": {"const": "Bundle"},
                            "type": {"enum": ["batch", "transaction"]},
                            "entry": {"type": "array", "items": {"type": "object"}},
                        },
                    },
                    "example": examples.BATCH,
                }
            },
        }
    },
    responses={
        200: _answer(
            examples.BATCH_RESPONSE,
            "batch-response or transaction-response Bundle: per entry its status, "
            "location (MeasureReport/{finess}-{YYYY-MM}/_history/{revision}) and an "
            "OperationOutcome (created, revised or unchanged, the warnings, or the errors)",
        ),
        400: _outcome_answer("Not JSON, or not a Bundle of FHIR R4"),
        403: _outcome_answer("Only vendor tokens push reports"),
        404: _outcome_answer("A transaction naming an establishment out of the caller's scope"),
        409: _outcome_answer("A request with this Idempotency-Key is still running"),
        413: _outcome_answer("More entries than ESMS_MAX_BATCH_ROWS, or too large a body"),
        415: _outcome_answer("Not application/fhir+json"),
        422: _outcome_answer(
            "A transaction with a refused report (nothing stored)", examples.REFUSED
        ),
        **_ANY_CALL,
    },
)
async def push_bundle(
    request: Request, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    """Each MeasureReport is one establishment (reporter.identifier: its FINESS) and one
    collection period, with one group per indicator of the measure
    `{base}/fhir/Measure/esms-numerique-usage`. It is stored as the extract
    `POST /api/v1/extracts` would store, under the same rules. `transaction`: all or
    nothing (an OperationOutcome lists every problem); `batch`: an outcome per entry."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in _ACCEPTED:
        raise DomainError(
            f"Send application/fhir+json, not {media!r}.",
            [FieldError("Content-Type", "unsupported", "application/fhir+json")],
        )
    body = await read_limited_body(request, get_settings().max_body_bytes)
    return fhir_response(await service.push(session, principal, body))


def _reporter(text: str) -> str:
    system, bar, value = text.rpartition("|")
    if bar:
        finess, issues = read_finess(LooseIdentifier(system, value), "reporter")
        if issues:
            raise BadSearch(
                issues[0].message, [FieldError("reporter", issues[0].code, issues[0].message)]
            )
        text = finess or ""
    text = text.removeprefix("Organization/")
    try:
        return check_finess(text)
    except InvalidFiness as exc:
        raise BadSearch(str(exc), [FieldError("reporter", "invalid_finess", str(exc))]) from exc


_PREFIXES = ("ge", "gt", "le", "lt", "eq")


def _month(text: str) -> tuple[Month, bool]:
    """The month a search date names, and whether the value was a whole month."""
    try:
        if len(text) == 7:
            return Month.parse(text), True
        return Month.of(date.fromisoformat(text[:10])), False
    except ValueError as exc:
        raise BadSearch(
            f"period: {text!r} is not a date (YYYY-MM or YYYY-MM-DD).",
            [FieldError("period", "invalid_date", "YYYY-MM or YYYY-MM-DD")],
        ) from exc


def _period_bounds(values: list[str]) -> tuple[date | None, date | None]:
    """The months of the periods asked for: those overlapping every condition (month
    precision: `ge2025-03-15` keeps March)."""
    lowest: Month | None = None
    highest: Month | None = None
    for value in values:
        prefix = value[:2] if value[:2] in _PREFIXES else "eq"
        month, whole = _month(value[2:] if value[:2] in _PREFIXES else value)
        low = high = None
        if prefix in ("ge", "eq"):
            low = month
        if prefix == "gt":
            low = month.plus(1) if whole else month
        if prefix in ("le", "eq"):
            high = month
        if prefix == "lt":
            high = month.plus(-1) if whole else month
        if low is not None and (lowest is None or low > lowest):
            lowest = low
        if high is not None and (highest is None or high < highest):
            highest = high
    return (
        lowest.first_day if lowest else None,
        highest.first_day if highest else None,
    )


@router.get(
    "/MeasureReport",
    dependencies=[_READERS],
    summary="Stored figures as MeasureReport (latest revisions), with scores and targets",
    response_class=Response,
    responses={
        200: _answer(examples.SEARCHSET, "searchset Bundle of MeasureReport"),
        304: NOT_MODIFIED,
        400: _outcome_answer("A search parameter that cannot be read"),
        404: _outcome_answer("An establishment the caller may not see"),
        **_ANY_CALL,
    },
)
async def search_reports(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    reporter: Annotated[
        list[str] | None,
        Query(
            description="the establishment: FINESS, `system|value` of its identifier "
            f"({FINESS_SYSTEMS[0]}), or `Organization/{{finess}}`; comma-separated for several"
        ),
    ] = None,
    reporter_identifier: Annotated[
        list[str] | None, Query(alias="reporter:identifier", description="system|value")
    ] = None,
    period: Annotated[
        list[str] | None,
        Query(description="date with prefix ge, gt, le, lt or eq; repeat for a range"),
    ] = None,
    measure: Annotated[
        str | None, Query(description="canonical URL of a Measure (default: the composite)")
    ] = None,
) -> Response:
    """One MeasureReport per period of each establishment asked for (the latest revision,
    withdrawn periods left out), with each rate's measureScore (percent, one decimal) and
    whether it meets its target (extension `target-met`; `meets-targets` on the report).
    Kept until the data moves; the ETag answers If-None-Match with a 304."""
    texts = [
        t for value in (reporter or []) + (reporter_identifier or []) for t in value.split(",")
    ]
    if not texts:
        raise BadSearch(
            "Name the establishment: reporter=<FINESS>.",
            [FieldError("reporter", "required", "reporter is required")],
        )
    numbers = list(dict.fromkeys(_reporter(t.strip()) for t in texts))
    chosen: Indicator | None = None
    if measure is not None:
        found = read_measure(measure, service.urls(), str(current_campaign().year))
        if found is None:
            raise BadSearch(
                f"measure: {measure!r} is not a measure of this service.",
                [FieldError("measure", "unknown_measure", "see GET /fhir/Measure")],
            )
        chosen = found if isinstance(found, Indicator) else None
    start, end = _period_bounds(period or [])

    async def render() -> tuple[bytes, str]:
        reports = await service.search(session, principal, numbers, start, end, chosen)
        return dumps(_searchset(reports, request, "MeasureReport")), FHIR_JSON

    # The Bundle quotes the URL as sent (its `self` link): kept by that exact URL.
    return await answer(request, session, principal, render, exact_url=True)


# --- errors as OperationOutcome -------------------------------------------------------------

_ISSUE_TYPE = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    409: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    429: "throttled",
    503: "transient",
}


def _element(field: str) -> str:
    return "Bundle" if field == "body" else field


def outcome_of_problem(problem: dict[str, Any], status: int) -> dict[str, Any]:
    """The OperationOutcome of a problem+json body (its own, when it carries one)."""
    if isinstance(problem.get("outcome"), dict):
        return problem["outcome"]
    links = service.urls()
    errors = problem.get("errors") or []
    kind = _ISSUE_TYPE.get(status, "exception")
    issues = [
        # "body" is the whole request body: the Bundle, in FHIRPath.
        Issue("error", e.get("code", "error"), e.get("message", ""), (_element(e["field"]),))
        for e in errors
        if isinstance(e, dict) and e.get("field")
    ] or [
        Issue(
            "error",
            str(problem.get("type", "")).rpartition(":")[2],
            str(problem.get("detail", "")),
            (),
        )
    ]
    outcome = operation_outcome(issues, links)
    for issue in outcome["issue"]:
        issue["code"] = kind
        issue["diagnostics"] = str(problem.get("detail", ""))
        if not issue["expression"]:
            del issue["expression"]  # about the request itself (token, rate), not an element
    return outcome


class OutcomeMiddleware:
    """Under `/fhir`, answer every problem+json as an OperationOutcome in application/fhir+json
    (same status and headers), whichever layer raised it."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (
            scope["path"] == "/fhir" or scope["path"].startswith("/fhir/")
        ):
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        chunks: list[bytes] = []

        async def rewrite(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                if content_type.startswith(b"application/problem+json"):
                    held = message
                    return
            elif held is not None and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                problem = orjson.loads(b"".join(chunks))
                body = dumps(outcome_of_problem(problem, held["status"]))
                headers = [
                    (k, v)
                    for k, v in held.get("headers", [])
                    if k not in (b"content-type", b"content-length")
                ]
                headers += [
                    (b"content-type", FHIR_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                ]
                await send({**held, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, rewrite)


@router.get(
    "/MeasureReport/{report_id}",
    dependencies=[_READERS],
    summary="One establishment-period as MeasureReport: `{finess}-{YYYY-MM}` (latest revision)",
    response_class=Response,
    responses={
        200: _answer(examples.MEASURE_REPORT, "MeasureReport"),
        304: NOT_MODIFIED,
        404: _outcome_answer("No such period, or an establishment the caller may not see"),
        **_ANY_CALL,
    },
)
async def read_report(
    report_id: str, request: Request, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    """The id is the one `POST /fhir` gives in `location`; withdrawn periods are not found.
    Kept until the data moves; the ETag answers If-None-Match with a 304."""
    missing = NotFound(
        f"No MeasureReport {report_id}.",
        [FieldError("MeasureReport.id", "not_found", "no such establishment and period")],
    )
    try:
        start = Month.parse(report_id[-7:])
        number = check_finess(report_id[:-8])
    except (ValueError, InvalidFiness) as exc:
        raise missing from exc
    if report_id[-8:-7] != "-":
        raise missing

    async def render() -> tuple[bytes, str]:
        try:
            found = await service.search(session, principal, [number], start.first_day, None, None)
        except NotFound as exc:
            raise missing from exc
        for report in found:
            if report["id"] == f"{number}-{start}":
                return dumps(report), FHIR_JSON
        raise missing

    return await answer(request, session, principal, render)
