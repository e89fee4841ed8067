"""The console's pages. Each is a view: it asks the services (or the API's own handlers) for
its figures and hands them to a template; nothing here computes a figure the API does not."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from app.access.principal import Principal, Role
from app.access.repository import principal_for_token
from app.console import charts
from app.console.sessions import (
    COOKIE,
    ConsoleUserDep,
    check_csrf,
    check_login_csrf,
    clear_session_cookie,
    close_session,
    login_csrf,
    open_session,
    resolve,
    set_session_cookie,
)
from app.console.web import PageRoute, render
from app.dashboards import service as dashboards
from app.dashboards.filters import Filters
from app.db import SessionDep
from app.errors import NotFound
from app.referential.geography import DEPARTMENTS, REGIONS

router = APIRouter(prefix="/console", route_class=PageRoute, include_in_schema=False)

STATUS_LABELS = {
    "no_data": "Sans données",
    "in_progress": "En cours",
    "targets_met": "Cibles atteintes",
    "eligible": "Éligible au solde",
    "balance_paid": "Solde versé",
}
CASE_LABELS = {
    "acquisition": "Acquisition",
    "upgrade": "Mise à niveau",
    "generalisation": "Généralisation",
}
EVENT_LABELS = {
    "notified": "Notification",
    "convention_signed": "Convention signée",
    "started": "Démarrage",
    "advance_paid": "Avance versée",
    "expense_statement": "État récapitulatif des dépenses",
    "balance_decision": "Décision de solde",
    "balance_paid": "Solde versé",
}
INDICATOR_LABELS = {
    "mssante_rate": "MSSanté",
    "dmp_rate": "DMP",
    "active_files_rate": "Dossiers actifs",
    "care_project_rate": "Projet personnalisé",
    "agenda_rate": "Agenda",
}
ROLE_LABELS = {
    Role.NATIONAL: "équipe nationale",
    Role.ARS: "ARS",
    Role.GRADES: "GRADeS",
    Role.VENDOR: "éditeur",
}
PAGE_SIZE = 50


def labels() -> dict[str, Any]:
    return {
        "status_labels": STATUS_LABELS,
        "case_labels": CASE_LABELS,
        "event_labels": EVENT_LABELS,
        "indicator_labels": INDICATOR_LABELS,
        "role_labels": ROLE_LABELS,
        "regions": REGIONS,
        "departments": DEPARTMENTS,
    }


def page(request: Request, name: str, user, **context: Any) -> Response:
    return render(request, name, user, **labels(), **context)


def _readers(principal: Principal) -> None:
    """Pages of regions and projects follow-up: not for vendors (as if they did not exist)."""
    if principal.role is Role.VENDOR:
        raise NotFound("Not a vendor's page.")


def _region_in_scope(principal: Principal, code: str) -> None:
    if code not in REGIONS or not principal.sees_region(code):
        raise NotFound(f"Region {code} not found.")


# Sign-in and sign-out ---------------------------------------------------------------------


def _next(target: str | None) -> str:
    return (
        target if target and target.startswith("/console/") and "//" not in target else "/console"
    )


@router.get("/connexion")
async def sign_in_form(request: Request, session: SessionDep, suite: str | None = None):
    if await resolve(session, request.cookies.get(COOKIE)):
        return RedirectResponse(_next(suite), status_code=303)
    response = Response()
    csrf = login_csrf(request, response)
    shown = page(request, "sign_in.html", None, csrf=csrf, suite=_next(suite))
    for header, value in response.headers.items():
        if header == "set-cookie":
            shown.headers.append(header, value)
    return shown


@router.post("/connexion")
async def sign_in(
    request: Request,
    session: SessionDep,
    jeton: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
    suite: Annotated[str, Form(max_length=500)] = "/console",
):
    check_login_csrf(request, csrf)
    principal = await principal_for_token(session, jeton.strip()) if jeton.strip() else None
    if principal is None:
        return page(
            request,
            "sign_in.html",
            None,
            csrf=csrf,
            suite=_next(suite),
            error="Ce jeton est inconnu, expiré ou révoqué.",
        )
    value, row = await open_session(session, principal, request=request)
    response = RedirectResponse(_next(suite), status_code=303)
    set_session_cookie(response, request, value, row.expires_at)
    return response


@router.post("/deconnexion")
async def sign_out(
    request: Request,
    session: SessionDep,
    user: ConsoleUserDep,
    csrf: Annotated[str, Form(max_length=100)] = "",
):
    check_csrf(user, csrf)
    await close_session(session, user, request)
    response = RedirectResponse("/console/connexion", status_code=303)
    clear_session_cookie(response)
    return response


@router.get("")
async def home(user: ConsoleUserDep):
    principal = user.principal
    if principal.role is Role.NATIONAL:
        target = "/console/national"
    elif principal.role is Role.VENDOR:
        target = "/console/editeur"
    else:
        target = f"/console/regions/{principal.region_code}"
    return RedirectResponse(target, status_code=303)


# National view and region home ------------------------------------------------------------


@router.get("/national")
async def national(request: Request, session: SessionDep, user: ConsoleUserDep):
    if user.principal.role is not Role.NATIONAL:
        raise NotFound("The national view is for the national team.")
    rows = []
    for code in REGIONS:
        rows.append(
            (REGIONS[code], await dashboards.summary(session, user.principal, Filters(code)))
        )
    total = await dashboards.summary(session, user.principal, Filters())
    return page(request, "national.html", user, rows=rows, total=total)


@router.get("/regions/{code}")
async def region_home(request: Request, code: str, session: SessionDep, user: ConsoleUserDep):
    principal = user.principal
    _readers(principal)
    _region_in_scope(principal, code)
    filters = Filters(region=code)
    summary = await dashboards.summary(session, principal, filters)
    series = await dashboards.monthly(session, principal, filters)
    _, missing = await dashboards.missing_reports(session, principal, filters, 1, 0)
    months = [p.month for p in series.items]
    chart = charts.Chart(
        title=f"Part des établissements atteignant les cinq cibles, {REGIONS[code].name}",
        description="Par mois, part des établissements ayant transmis une mesure ce mois-là "
        "qui atteignent les cinq cibles de l'annexe 2 ; les chiffres sont dans le tableau "
        "qui suit.",
        months=months,
        series=[
            charts.Series(
                "Cinq cibles atteintes", [p.share_meeting_all_targets for p in series.items]
            )
        ],
    )
    return page(
        request,
        "region.html",
        user,
        region=REGIONS[code],
        summary=summary,
        series=series,
        chart=charts.svg(chart),
        missing=missing,
    )
