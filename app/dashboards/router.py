"""HTTP endpoints of the dashboards (/api/v1/dashboards/…) and the ARS monthly report.

Dashboards change when data is written, that is monthly for most of them. Each answer is
versioned by the data version (a counter every audited write moves when it commits, and
every write is audited) and the current month:

- it carries an ETag and `Cache-Control: private, max-age=60`, so a dashboard that polls
  with If-None-Match gets a 304 without any computation;
- it is kept in the `dashboard_cache` table (shared by every server process), keyed by the
  caller's scope and the query, and served from there until the data version moves; each
  process also keeps the answers it served last in memory (`app.answers`).
  `X-Cache: hit` or `miss` says which happened.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from app import answers
from app.access.dependencies import AuthorisedRoute, CurrentPrincipal, requires
from app.access.principal import Principal, Role
from app.clock import Month
from app.dashboards import repository, service
from app.dashboards.exports import CSV_MEDIA, XLSX_MEDIA, to_csv, to_xlsx
from app.dashboards.filters import Filters
from app.dashboards.schemas import (
    Breakdown,
    DashboardSummary,
    MissingReport,
    MonthlySeries,
    ReportRow,
)
from app.db import SessionDep
from app.errors import FieldError, Invalid, NotFound
from app.queries import MONTH_PATTERN
from app.referential.geography import DEPARTMENTS, REGIONS
from app.schemas import Page

router = APIRouter(prefix="/api/v1/dashboards", tags=["dashboards"], route_class=AuthorisedRoute)
reports_router = APIRouter(
    prefix="/api/v1/reports", tags=["dashboards"], route_class=AuthorisedRoute
)
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
_CACHED: dict[int | str, dict[str, Any]] = {
    304: answers.NOT_MODIFIED,
    401: _PROBLEM,
    404: _PROBLEM,
    422: _PROBLEM,
}


async def dashboard_filters(
    principal: CurrentPrincipal,
    region: Annotated[
        str | None, Query(pattern=r"^\d{2}$", description="INSEE region code")
    ] = None,
    department: Annotated[
        str | None, Query(pattern=r"^(\d{2,3}|2[AB])$", description="INSEE département code")
    ] = None,
    category: Annotated[
        str | None, Query(pattern=r"^\d{3,4}$", description="FINESS category")
    ] = None,
    vendor: Annotated[str | None, Query(pattern=r"^\d{9}$", description="vendor SIREN")] = None,
    project: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    from_: Annotated[str | None, Query(alias="from", pattern=MONTH_PATTERN)] = None,
    to: Annotated[str | None, Query(pattern=MONTH_PATTERN)] = None,
) -> Filters:
    if region is not None and region not in REGIONS:
        raise Invalid("Unknown region.", [FieldError("region", "unknown_region", region)])
    if department is not None and department not in DEPARTMENTS:
        raise Invalid(
            "Unknown département.", [FieldError("department", "unknown_department", department)]
        )
    if (
        principal.role in (Role.ARS, Role.GRADES)
        and region is not None
        and region != principal.region_code
    ):
        raise NotFound(f"Region {region} not found.")
    start = Month.parse(from_) if from_ else None
    end = Month.parse(to) if to else None
    if start and end and (end < start or end - start > 120):
        raise Invalid(
            "The period must run forward and span at most 10 years.",
            [FieldError("to", "bad_range", "from <= to, at most 120 months")],
        )
    return Filters(region, department, category, vendor, project, start, end)


FiltersDep = Annotated[Filters, Depends(dashboard_filters)]


async def answer(
    request: Request,
    session,
    principal: Principal,
    render: Callable[[], Awaitable[tuple[bytes, str]]],
    filename: str | None = None,
) -> Response:
    """The kept answer while the data and the month have not moved, else `render()`."""
    return await answers.answer(
        request,
        session,
        principal,
        render,
        filename=filename,
        cache_control=answers.DASHBOARD_CACHE_CONTROL,
        shared=repository,
    )


def _render(
    body: Any, fmt: str = "json", rows: list[dict] | None = None, name: str = "export"
) -> tuple[bytes, str]:
    if fmt == "csv":
        return to_csv(rows or []), CSV_MEDIA
    if fmt == "xlsx":
        return to_xlsx(rows or [], name), XLSX_MEDIA
    content = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    return orjson.dumps(content), "application/json"


def _filename(fmt: str, name: str) -> str | None:
    return None if fmt == "json" else f"{name}.{fmt}"


def _dump(items: Sequence[BaseModel]) -> list[dict[str, Any]]:
    return [item.model_dump(mode="json") for item in items]


_CSV = {"text/csv": {"schema": {"type": "string"}}}
Format = Annotated[Literal["json", "csv"], Query(description="json (default) or csv")]


@router.get(
    "/summary",
    dependencies=[requires(*Role)],
    response_model=DashboardSummary,
    summary="Establishments, reporting, targets met, projects by status and funding",
    responses=_CACHED,
)
async def get_summary(
    request: Request, session: SessionDep, principal: CurrentPrincipal, filters: FiltersDep
) -> Response:
    """National scope for the national team, the region for ARS and GRADeS; narrow it with
    the filters. Funding: committed (notified before the deadline), advanced, payable
    (balances due of eligible projects) against the annexe 1 envelope."""

    async def render() -> tuple[bytes, str]:
        return _render(await service.summary(session, principal, filters))

    return await answer(request, session, principal, render)


@router.get(
    "/monthly",
    dependencies=[requires(*Role)],
    response_model=MonthlySeries,
    summary="Per month: reporting, share meeting each target and all, quartiles of each rate",
    responses={**_CACHED, 200: {"content": _CSV}},
)
async def get_monthly(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    filters: FiltersDep,
    format: Format = "json",
) -> Response:
    """A measurement counts for the last month of its period (a 3-month first window counts
    for its third month). Default range: the last 12 completed months."""

    async def render() -> tuple[bytes, str]:
        series = await service.monthly(session, principal, filters)
        return _render(series, format, _dump(series.items), "monthly")

    return await answer(request, session, principal, render, _filename(format, "monthly"))


@router.get(
    "/breakdown",
    dependencies=[requires(*Role)],
    response_model=Breakdown,
    summary="Establishments and targets met by region, département, category, vendor or "
    "project status",
    responses={**_CACHED, 200: {"content": _CSV}},
)
async def get_breakdown(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    filters: FiltersDep,
    by: Annotated[
        Literal["region", "department", "category", "vendor", "project_status"], Query()
    ] = "category",
    format: Format = "json",
) -> Response:
    async def render() -> tuple[bytes, str]:
        result = await service.breakdown(session, principal, filters, by)
        return _render(result, format, _dump(result.items), f"breakdown-{by}")

    return await answer(request, session, principal, render, _filename(format, f"breakdown-{by}"))


@router.get(
    "/completeness",
    dependencies=[requires(*Role)],
    response_model=Page[MissingReport],
    summary="Establishments of a project that have not reported the last completed month",
    responses={**_CACHED, 200: {"content": _CSV}},
)
async def get_completeness(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    filters: FiltersDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    format: Format = "json",
) -> Response:
    async def render() -> tuple[bytes, str]:
        size, start = (1_000_000, 0) if format == "csv" else (limit, offset)  # CSV: whole list
        items, total = await service.missing_reports(session, principal, filters, size, start)
        page = Page[MissingReport](items=items, total=total, limit=size, offset=start)
        return _render(page, format, _dump(items), "completeness")

    return await answer(request, session, principal, render, _filename(format, "completeness"))


@reports_router.get(
    "/monthly",
    dependencies=[requires(*Role)],
    response_model=list[ReportRow],
    summary="The ARS monthly report: one row per project (JSON, CSV or XLSX)",
    responses={
        **_CACHED,
        200: {"content": {**_CSV, XLSX_MEDIA: {"schema": {"type": "string", "format": "binary"}}}},
    },
)
async def get_monthly_report(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    filters: FiltersDep,
    format: Annotated[Literal["json", "csv", "xlsx"], Query()] = "json",
) -> Response:
    """Aid, advance paid, balance due, status, establishments meeting targets and the last
    period received, for every project of the caller's scope."""
    name = f"rapport-mensuel-{Month.current().plus(-1)}"

    async def render() -> tuple[bytes, str]:
        rows = _dump(await service.monthly_report(session, principal, filters))
        return _render(rows, format, rows, name)

    return await answer(request, session, principal, render, _filename(format, name))
