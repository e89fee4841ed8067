"""The console's pages. Each is a view: it asks the services (or the API's own handlers) for
its figures and hands them to a template; nothing here computes a figure the API does not."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from app.access.principal import Principal, Role
from app.access.repository import principal_for_token
from app.access.scopes import Scope
from app.campaigns import current_campaign
from app.clock import Month, today
from app.console import charts, repository, uploads
from app.console.kept import kept
from app.console.sessions import (
    COOKIE,
    ConsoleUserDep,
    check_csrf,
    check_login_csrf,
    clear_session_cookie,
    close_session,
    keep_upload,
    login_csrf,
    open_session,
    resolve,
    set_session_cookie,
    take_upload,
)
from app.console.web import PageRoute, render, templates
from app.dashboards import service as dashboards
from app.dashboards.exports import CSV_MEDIA, XLSX_MEDIA, to_csv, to_xlsx
from app.dashboards.filters import Filters
from app.dashboards.schemas import DashboardSummary, MissingReport, MonthlySeries
from app.db import SessionDep
from app.errors import DomainError, FieldError, Forbidden, Invalid, NotFound
from app.identity.console import sign_out_elsewhere as oidc_sign_out_elsewhere
from app.indicators import service as indicators
from app.indicators.router import get_revisions
from app.indicators.schemas import MeasurementSeries
from app.pilots.router import get_summary as pilots_summary
from app.pilots.router import list_pilots
from app.projects import payments, standings
from app.projects import repository as projects
from app.projects.events import EVENT_TYPES, Event
from app.projects.router import compliance_read, project_read
from app.projects.standings import ListQuery
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


templates.globals.update(labels())


def page(request: Request, name: str, user, **context: Any) -> Response:
    return render(request, name, user, **context)


def _readers(principal: Principal) -> None:
    """Pages of regions and projects follow-up: not for vendors (as if they did not exist)."""
    if principal.role is Role.VENDOR:
        raise NotFound("Not a vendor's page.")


def _region_in_scope(principal: Principal, code: str) -> None:
    if code not in REGIONS or not Scope.of(principal).sees_region(code):
        raise NotFound(f"Region {code} not found.")


# Sign-in and sign-out ---------------------------------------------------------------------


def _next(target: str | None) -> str:
    return (
        target if target and target.startswith("/console/") and "//" not in target else "/console"
    )


@router.get("/connexion")
async def sign_in_form(request: Request, session: SessionDep, suite: str | None = None):
    if await resolve(session, request.cookies.get(COOKIE)) is not None:
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
    value, row = await open_session(session, principal)
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
    # A person signed in through a provider signs out there too, where it offers it.
    elsewhere = await oidc_sign_out_elsewhere(session, user, request)
    await close_session(session, user)
    response = elsewhere or RedirectResponse("/console/connexion", status_code=303)
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
    """Every region's dashboard summary side by side (nineteen summaries gathered at once:
    kept until the data moves, like every figure of the console's pages)."""
    principal = user.principal
    if principal.role is not Role.NATIONAL:
        raise NotFound("The national view is for the national team.")

    async def compute() -> dict[str, Any]:
        summaries = await dashboards.summaries_by_region(session, principal)
        return {code or "": s.model_dump(mode="json") for code, s in summaries.items()}

    def prepare(stored: dict[str, Any]) -> dict[str, Any]:
        summaries = {code: DashboardSummary.model_validate(s) for code, s in stored.items()}
        return {
            "rows": [(REGIONS[code], summaries[code]) for code in REGIONS],
            "total": summaries[""],
        }

    shown = await kept(request, session, principal, "national", {}, compute, prepare=prepare)
    return page(request, "national.html", user, **shown)


@router.get("/regions/{code}")
async def region_home(request: Request, code: str, session: SessionDep, user: ConsoleUserDep):
    principal = user.principal
    _readers(principal)
    _region_in_scope(principal, code)
    filters = Filters(region=code)

    async def compute() -> dict[str, Any]:
        summary = await dashboards.summary(session, principal, filters)
        series = await dashboards.monthly(session, principal, filters)
        _, missing = await dashboards.missing_reports(session, principal, filters, 1, 0)
        return {
            "summary": summary.model_dump(mode="json"),
            "series": series.model_dump(mode="json"),
            "missing": missing,
        }

    def prepare(stored: dict[str, Any]) -> dict[str, Any]:
        series = MonthlySeries.model_validate(stored["series"])
        chart = charts.meeting_all_targets(
            f"Part des établissements atteignant les cinq cibles, {REGIONS[code].name}",
            "Par mois, part des établissements ayant transmis une mesure ce mois-là qui "
            "atteignent les cinq cibles de l'annexe 2 ; les chiffres sont dans le tableau qui "
            "suit.",
            series.items,
        )
        return {
            "summary": DashboardSummary.model_validate(stored["summary"]),
            "series": series,
            "chart": charts.svg(chart),
            "missing": stored["missing"],
        }

    shown = await kept(
        request,
        session,
        principal,
        "region",
        {"region": code},
        compute,
        prepare=prepare,
    )
    return page(request, "region.html", user, region=REGIONS[code], **shown)


# Projects ---------------------------------------------------------------------------------

# The list's sort parameter (French, as in its address) and the standings' sort keys.
SORTS = {
    "reference": "reference",
    "statut": "status",
    "etablissements": "establishments",
    "aide": "total_aid",
    "solde": "balance_due",
    "derniere": "last_period",
}


@router.get("/projets")
async def project_list(
    request: Request,
    session: SessionDep,
    user: ConsoleUserDep,
    region: str | None = None,
    statut: str | None = None,
    editeur: str | None = None,
    departement: str | None = None,
    cas: str | None = None,
    q: str | None = None,
    tri: str = "reference",
    ordre: str = "asc",
    page_: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
    format: str | None = None,
):
    principal = user.principal
    _readers(principal)
    region = region or None
    if principal.role is not Role.NATIONAL:
        region = principal.region_code
    elif region is not None:
        _region_in_scope(principal, region)
    if departement and departement not in DEPARTMENTS:
        raise Invalid("Unknown département.", [FieldError("departement", "unknown", departement)])
    if editeur and not (editeur.isdigit() and len(editeur) == 9):
        raise Invalid("A vendor is a SIREN.", [FieldError("editeur", "invalid", editeur)])
    filters = Filters(region=region, department=departement or None, vendor=editeur or None)

    query = ListQuery(
        status=statut or None,
        funding_case=cas or None,
        search=q.strip() if q and q.strip() else None,
        sort=SORTS.get(tri, "reference"),
        descending=ordre == "desc",
    )
    if format in ("csv", "xlsx"):
        report, _ = await dashboards.report_page(session, principal, filters, query)
        rows = [r.model_dump(mode="json") for r in report]
        if format == "csv":
            body, media = to_csv(rows), CSV_MEDIA
        else:
            body, media = to_xlsx(rows, "projets"), XLSX_MEDIA
        return Response(
            body,
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="projets.{format}"'},
        )
    current = max(1, page_)
    shown, total = await dashboards.report_page(
        session,
        principal,
        filters,
        replace(query, limit=PAGE_SIZE, offset=(current - 1) * PAGE_SIZE),
    )
    pages = max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)
    if current > pages:  # past the last page: the last one
        current = pages
        shown, total = await dashboards.report_page(
            session,
            principal,
            filters,
            replace(query, limit=PAGE_SIZE, offset=(current - 1) * PAGE_SIZE),
        )
    params = {
        "region": region if principal.role is Role.NATIONAL else None,
        "statut": statut,
        "editeur": editeur,
        "departement": departement,
        "cas": cas,
        "q": q,
        "tri": tri,
        "ordre": ordre,
    }
    department_choices = sorted(
        (d for d in DEPARTMENTS.values() if region is None or d.region_code == region),
        key=lambda d: d.code,
    )
    return page(
        request,
        "projects.html",
        user,
        rows=shown,
        total=total,
        params=params,
        region=region,
        current=current,
        pages=pages,
        department_choices=department_choices,
        vendors=await repository.vendor_names(session),
    )


async def _project_context(session, principal: Principal, project_id: int) -> dict[str, Any]:
    project = await projects.visible_project(session, principal, project_id)
    if project is None:
        raise NotFound(f"Project {project_id} not found.")
    read = await project_read(session, project)
    (standing,) = await payments.standings(session, [project], today())
    compliance = compliance_read(project.id, standing.compliance)
    events = await projects.events_of(session, [project.id])
    last = dashboards.last_completed_month()
    late = {}
    for item in compliance.establishments:
        if item.latest_period is not None:
            behind = last - Month.parse(item.latest_period.end)
            if behind > 0:
                late[item.finess] = behind
    series = await dashboards.monthly(session, principal, Filters(project=project.id))
    chart = charts.meeting_all_targets(
        f"Projet {project.reference} : établissements atteignant les cinq cibles",
        "Sur les douze derniers mois, part des établissements du projet ayant transmis une "
        "mesure qui atteignent les cinq cibles ; chiffres dans le tableau qui suit.",
        series.items,
        width=560,
        height=240,
    )
    return {
        "project": read,
        "compliance": compliance,
        "standing": standing,
        "events": events,
        "late": late,
        "last_month": str(last),
        "names": {line.finess: line.name for line in read.establishments},
        "series": series,
        "chart": charts.svg(chart),
        "campaign": current_campaign(),
        "event_types": EVENT_TYPES,
    }


@router.get("/projets/{project_id}")
async def project_page(
    request: Request,
    project_id: int,
    session: SessionDep,
    user: ConsoleUserDep,
    enregistre: str | None = None,
):
    _readers(user.principal)
    context = await _project_context(session, user.principal, project_id)
    return page(
        request,
        "project.html",
        user,
        recorded=enregistre if enregistre in EVENT_LABELS else None,
        can_record=user.principal.role in (Role.ARS, Role.NATIONAL),
        today=today(),
        **context,
    )


def _event(type_: str, day: str, amount: str) -> Event:
    errors = []
    if type_ not in EVENT_TYPES:
        errors.append(FieldError("type", "unknown_type", "choisissez un événement de la liste"))
    try:
        on = date.fromisoformat(day)
    except ValueError:
        errors.append(FieldError("date", "invalid_date", "une date au format JJ/MM/AAAA"))
        on = today()
    value = None
    if amount.strip():
        try:
            value = Decimal(amount.strip().replace("\u202f", "").replace(" ", "").replace(",", "."))
        except InvalidOperation:
            errors.append(
                FieldError("amount", "invalid_amount", "un montant en euros, ex. 12500,00")
            )
    if errors:
        raise Invalid("L'événement ne peut pas être enregistré.", errors)
    return Event(type_, on, value)


@router.post("/projets/{project_id}/evenements")
async def record_event(
    request: Request,
    project_id: int,
    session: SessionDep,
    user: ConsoleUserDep,
    type: Annotated[str, Form(max_length=40)] = "",
    date_: Annotated[str, Form(alias="date", max_length=20)] = "",
    montant: Annotated[str, Form(max_length=40)] = "",
    etape: Annotated[str, Form(max_length=20)] = "apercu",
    csrf: Annotated[str, Form(max_length=100)] = "",
):
    """Two steps: `apercu` records the event in a savepoint rolled back at once, to show what
    would change (status, amount, balance due, measurements frozen); `confirmer` records it."""
    check_csrf(user, csrf)
    principal = user.principal
    _readers(principal)
    project = await projects.visible_project(session, principal, project_id)
    if project is None:
        raise NotFound(f"Project {project_id} not found.")
    if principal.role not in (Role.ARS, Role.NATIONAL):
        raise Forbidden("Only ars and national tokens record payment events.")
    event = _event(type, date_, montant)
    if etape == "confirmer":
        await payments.record_event(session, principal, project, event, today())
        return RedirectResponse(
            f"/console/projets/{project_id}?enregistre={event.type}", status_code=303
        )
    before = await _project_context(session, principal, project_id)
    errors: list[FieldError] = []
    after = None
    frozen = None
    savepoint = await session.begin_nested()
    try:
        row = await payments.record_event(session, principal, project, event, today())
        (after,) = await payments.standings(session, [project], today())
        recorded_amount = row.amount
        if event.type == "balance_decision":
            frozen = await repository.locked_by(session, row.id)
    except DomainError as exc:
        errors = exc.errors or [FieldError("type", "refused", exc.detail)]
        recorded_amount = None
    finally:
        await savepoint.rollback()
    progress = payments.progress_of(after.project, after.events) if after is not None else None
    return page(
        request,
        "event_preview.html",
        user,
        progress=progress,
        event=event,
        errors=errors,
        after=after,
        recorded_amount=recorded_amount,
        frozen=frozen,
        form={"type": type, "date": date_, "montant": montant},
        **before,
    )


# Establishments ---------------------------------------------------------------------------


@router.get("/etablissements/{finess}")
async def establishment_page(
    request: Request, finess: str, session: SessionDep, user: ConsoleUserDep
):
    principal = user.principal
    measurements = MeasurementSeries.model_validate(
        await indicators.series(session, principal, finess)
    )
    revisions = await get_revisions(finess, session, principal, None, None)
    establishment = await repository.establishment(session, measurements.finess)
    items = measurements.items
    months = [m.period_end for m in items]
    first = next((m for m in items if m.first_window), None)
    targets = current_campaign().targets
    chart = charts.Chart(
        title=f"Les cinq taux de {establishment.name} mois par mois",
        description="Chaque mesure est placée à son dernier mois ; les lignes pointillées "
        f"marquent les cibles de {targets['dmp_rate']} % et {targets['active_files_rate']} %"
        "; la zone claire est la première fenêtre de trois mois. Chiffres dans le tableau "
        "des mesures.",
        months=months,
        series=[
            charts.Series(label, [m.indicators[code].value for m in items])
            for code, label in INDICATOR_LABELS.items()
        ],
        targets=[(f"cible {value} %", value) for value in sorted(set(targets.values()))],
        band=(first.period_end, first.period_end, "1re fenêtre") if first is not None else None,
    )
    # What changed in each revision: its counts against the revision it replaced.
    previous: dict[str, Any] = {}
    changes = []
    for revision in revisions.items:
        before = previous.get(revision.period_start)
        changed = [
            name
            for name, value in revision.counts.items()
            if before is not None and before.counts.get(name) != value
        ]
        changes.append((revision, before, changed))
        previous[revision.period_start] = revision
    return page(
        request,
        "establishment.html",
        user,
        establishment=establishment,
        items=items,
        first=first,
        changes=list(reversed(changes)),
        chart=charts.svg(chart),
        warnings=[(m, w) for m in items for w in m.warnings],
    )


# Completeness -----------------------------------------------------------------------------


@router.get("/completude")
async def completeness(
    request: Request,
    session: SessionDep,
    user: ConsoleUserDep,
    region: str | None = None,
    editeur: str | None = None,
    departement: str | None = None,
    page_: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
    format: str | None = None,
):
    principal = user.principal
    region = region or None
    if region is not None:
        _region_in_scope(principal, region)
    if departement and departement not in DEPARTMENTS:
        raise Invalid("Unknown département.", [FieldError("departement", "unknown", departement)])
    if editeur and not (editeur.isdigit() and len(editeur) == 9):
        raise Invalid("A vendor is a SIREN.", [FieldError("editeur", "invalid", editeur)])
    filters = Filters(region=region, department=departement or None, vendor=editeur or None)
    if format == "csv":
        items, _ = await dashboards.missing_reports(session, principal, filters, 1_000_000, 0)
        return Response(
            to_csv([i.model_dump(mode="json") for i in items]),
            media_type=CSV_MEDIA,
            headers={"Content-Disposition": 'attachment; filename="completude.csv"'},
        )
    current = max(1, page_)

    async def compute() -> dict[str, Any]:
        found, total = await dashboards.missing_reports(
            session, principal, filters, PAGE_SIZE, (current - 1) * PAGE_SIZE
        )
        return {"items": [i.model_dump(mode="json") for i in found], "total": total}

    stored = await kept(
        request,
        session,
        principal,
        "completeness",
        asdict(filters) | {"page": current},
        compute,
        prepare=lambda s: {
            "items": [MissingReport.model_validate(i) for i in s["items"]],
            "total": s["total"],
        },
    )
    items, total = stored["items"], stored["total"]
    params = {"region": region, "editeur": editeur, "departement": departement}
    return page(
        request,
        "completeness.html",
        user,
        items=items,
        total=total,
        params=params,
        current=current,
        pages=max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE),
        last_month=str(dashboards.last_completed_month()),
        vendors=await repository.vendor_names(session),
    )


# Mon espace santé pilots ------------------------------------------------------------------


@router.get("/pilotes")
async def pilots(
    request: Request,
    session: SessionDep,
    user: ConsoleUserDep,
    region: str | None = None,
):
    principal = user.principal
    _readers(principal)
    region = region or None
    if region is not None:
        _region_in_scope(principal, region)
    summary = await pilots_summary(session, principal, region)
    listed = await list_pilots(session, principal, region, None, None, None, 500, 0)
    return page(
        request,
        "pilots.html",
        user,
        summary=summary,
        pilots=listed.items,
        region=region,
        per_legal_entity=current_campaign().pilots.per_legal_entity,
    )


# Vendors ----------------------------------------------------------------------------------


def _vendor(principal: Principal) -> None:
    if principal.role is not Role.VENDOR:
        raise NotFound("A vendor's page.")


VENDOR_PROJECTS_PER_PAGE = 10


@router.get("/editeur")
async def vendor_home(
    request: Request,
    session: SessionDep,
    user: ConsoleUserDep,
    page_: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
):
    principal = user.principal
    _vendor(principal)

    async def compute() -> dict[str, Any]:
        missing, total = await dashboards.missing_reports(session, principal, Filters(), 1000, 0)
        return {"missing": [i.model_dump(mode="json") for i in missing], "total_missing": total}

    stored = await kept(request, session, principal, "vendor-missing", {}, compute)
    size = VENDOR_PROJECTS_PER_PAGE
    current = max(1, page_)
    query = ListQuery(sort="id", limit=size, offset=(current - 1) * size)
    shown, total = await standings.visible(session, principal, query, today())
    pages = max(1, (total + size - 1) // size)
    if current > pages:  # past the last page: the last one
        current = pages
        query = replace(query, offset=(current - 1) * size)
        shown, total = await standings.visible(session, principal, query, today())
    establishments = await standings.establishments_of(session, [r["project_id"] for r in shown])
    return page(
        request,
        "vendor.html",
        user,
        missing=[MissingReport.model_validate(i) for i in stored["missing"]],
        total_missing=stored["total_missing"],
        standings=[(row, {"establishments": establishments[row["project_id"]]}) for row in shown],
        current=current,
        pages=pages,
        params={},
        last_month=str(dashboards.last_completed_month()),
    )


@router.get("/depot")
async def upload_form(request: Request, user: ConsoleUserDep):
    _vendor(user.principal)
    return page(request, "upload.html", user)


@router.post("/depot")
async def upload_dry_run(
    request: Request,
    session: SessionDep,
    user: ConsoleUserDep,
    fichier: Annotated[UploadFile, File()],
    csrf: Annotated[str, Form(max_length=100)] = "",
):
    check_csrf(user, csrf)
    _vendor(user.principal)
    body = await fichier.read()
    name = fichier.filename or "fichier"
    summary = await uploads.ingest_file(session, user.principal, body, name, dry_run=True)
    await keep_upload(session, user, body, name)
    return page(request, "upload.html", user, summary=summary, filename=name, dry_run=True)


@router.post("/depot/confirmer")
async def upload_confirm(
    request: Request,
    session: SessionDep,
    user: ConsoleUserDep,
    csrf: Annotated[str, Form(max_length=100)] = "",
):
    check_csrf(user, csrf)
    _vendor(user.principal)
    kept = await take_upload(session, user)
    if kept is None:
        raise Invalid(
            "Aucun fichier en attente : déposez-le à nouveau.",
            [FieldError("fichier", "missing", "déposez le fichier puis vérifiez-le")],
        )
    body, name = kept
    summary = await uploads.ingest_file(session, user.principal, body, name, dry_run=False)
    return page(request, "upload.html", user, summary=summary, filename=name, dry_run=False)
