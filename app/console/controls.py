"""The console's control pages (annexe 4 C): the region's establishments by risk, the year's
control plan drawn from the page, controls recorded and their recovery followed. Views over
`app.controls.service`: every figure is the API's."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from app.access.principal import Principal, Role
from app.answers import data_version
from app.clock import today
from app.console.sessions import ConsoleUserDep, check_csrf
from app.console.web import PageRoute, render
from app.controls import repository, service
from app.controls.draw import DrawMethod
from app.controls.recovery import RecoveryEvent, RecoveryEventType
from app.controls.router import control_reads, establishment_risk, project_risk_read
from app.db import SessionDep
from app.errors import FieldError, Forbidden, Invalid, NotFound
from app.referential.finess import InvalidFiness, check_finess
from app.referential.geography import REGIONS

router = APIRouter(prefix="/console/controles", route_class=PageRoute, include_in_schema=False)

SIGNAL_LABELS = {
    "at_target_plateau": "Taux collé à la cible",
    "late_jump": "Bond juste avant l'état des dépenses ou la décision de solde",
    "repeated_counts": "Mêmes chiffres mois après mois",
    "shared_counts": "Mêmes chiffres qu'un autre établissement (éditeur ou EJ)",
    "mssante_far_above": "Messages MSSanté très au-dessus des personnes éligibles",
    "active_files_equal_accompanied": "Dossiers actifs égaux aux personnes accompagnées",
    "late_passing_revision": "Révision tardive qui fait atteindre une cible",
    "frozen_period_revision": "Tentative de révision d'une période gelée",
}
METHOD_LABELS = {
    "random": "Aléatoire",
    "risk": "Selon le risque",
    "mixed": "Mixte (un par département au hasard, les autres selon le risque)",
}
REASON_LABELS = {
    "department_random": "Tiré au sort dans son département",
    "department_risk": "Le plus à risque de son département",
    "extra_random": "Tirage complémentaire au sort",
    "extra_risk": "Complément selon le risque",
}
KIND_LABELS = {"documents": "Sur pièces", "on_site": "Sur place"}
RECOVERY_LABELS = {
    "none": "Rien à récupérer",
    "to_notify": "À notifier",
    "notified": "Notifié, en cours de récupération",
    "recovered": "Récupéré",
}
LABELS: dict[str, Any] = {
    "signal_labels": SIGNAL_LABELS,
    "method_labels": METHOD_LABELS,
    "reason_labels": REASON_LABELS,
    "kind_labels": KIND_LABELS,
    "recovery_labels": RECOVERY_LABELS,
}


def _region(principal: Principal, region: str | None) -> str:
    """The region a page is about: an ARS's own; for the national team, the one asked."""
    if principal.role is Role.ARS:
        if region not in (None, "", principal.region_code):
            raise NotFound(f"Region {region} not found.")
        return principal.region_code or ""
    if principal.role is not Role.NATIONAL:
        raise NotFound("Controls are for ARS and the national team.")
    if not region or region not in REGIONS:
        raise NotFound(f"Region {region} not found.")
    return region


def _amount(raw: str, field: str, required: bool) -> Decimal | None:
    text = raw.strip().replace("\u202f", "").replace(" ", "").replace(",", ".")
    if not text:
        if required:
            raise Invalid("Montant manquant.", [FieldError(field, "missing", "un montant")])
        return None
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise Invalid(
            "Montant incorrect.",
            [FieldError(field, "invalid_amount", "un montant en euros, ex. 1500,00")],
        ) from exc
    if not value.is_finite() or value < 0 or value != value.quantize(Decimal("0.01")):
        raise Invalid(
            "Montant incorrect.",
            [FieldError(field, "invalid_amount", "un montant positif, au centime")],
        )
    return value


def _day(raw: str, field: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise Invalid(
            "Date incorrecte.", [FieldError(field, "invalid_date", "une date JJ/MM/AAAA")]
        ) from exc


@router.get("/risques")
async def risk_page(
    request: Request, session: SessionDep, user: ConsoleUserDep, region: str | None = None
):
    code = _region(user.principal, region)
    version = await data_version(request, session)
    assessed = await service.assess_scope(session, user.principal, code, version)
    flagged = [a for a in assessed if a.score > 0]
    return render(
        request,
        "controls_risk.html",
        user,
        region=REGIONS[code],
        assessed=assessed,
        flagged=flagged,
        **LABELS,
    )


def _readers(principal: Principal) -> None:
    if principal.role not in (Role.ARS, Role.NATIONAL):
        raise NotFound("Controls are for ARS and the national team.")


@router.get("/etablissements/{finess}")
async def establishment_risk_page(
    request: Request, finess: str, session: SessionDep, user: ConsoleUserDep
):
    _readers(user.principal)
    item = await establishment_risk(finess, session, user.principal)
    return render(request, "controls_subject.html", user, title=item.name, items=[item], **LABELS)


@router.get("/projets/{project_id}")
async def project_risk_page(
    request: Request, project_id: int, session: SessionDep, user: ConsoleUserDep
):
    _readers(user.principal)
    result = await project_risk_read(project_id, session, user.principal)
    return render(
        request,
        "controls_subject.html",
        user,
        title=f"projet {project_id}",
        project=result,
        items=result.establishments,
        **LABELS,
    )


@router.get("/plan")
async def plan_page(
    request: Request,
    session: SessionDep,
    user: ConsoleUserDep,
    region: str | None = None,
    annee: int | None = None,
):
    code = _region(user.principal, region)
    year = annee or today().year
    plan = await repository.plan_of(session, code, year)
    lines = await repository.plan_lines(session, plan.id) if plan else []
    replayed = plan is not None and [p.finess for p in service.replay(plan).picks] == [
        line["finess"] for line in lines
    ]
    return render(
        request,
        "controls_plan.html",
        user,
        region=REGIONS[code],
        year=year,
        plan=plan,
        lines=lines,
        replayed=replayed,
        can_draw=user.principal.role is Role.ARS,
        methods=list(DrawMethod),
        **LABELS,
    )


@router.post("/plan")
async def draw_plan(
    request: Request,
    session: SessionDep,
    user: ConsoleUserDep,
    annee: Annotated[str, Form(max_length=4)] = "",
    methode: Annotated[str, Form(max_length=10)] = "mixed",
    graine: Annotated[str, Form(max_length=20)] = "",
    supplementaires: Annotated[str, Form(max_length=4)] = "0",
    csrf: Annotated[str, Form(max_length=100)] = "",
):
    check_csrf(user, csrf)
    principal = user.principal
    if principal.role is not Role.ARS:
        raise Forbidden("Seule l'ARS tire le plan de contrôle de sa région.")
    errors = []
    if not (annee.isdigit() and 2023 <= int(annee) <= 2100):
        errors.append(FieldError("annee", "invalid_year", "une année, ex. 2025"))
    if methode not in {m.value for m in DrawMethod}:
        errors.append(FieldError("methode", "unknown_method", "choisissez une méthode"))
    if graine.strip() and not (graine.strip().isdigit() and int(graine) <= 2**53):
        errors.append(FieldError("graine", "invalid_seed", "un nombre entier, ou vide"))
    if not (supplementaires.isdigit() and int(supplementaires) <= 1000):
        errors.append(FieldError("supplementaires", "invalid_extra", "un nombre de 0 à 1000"))
    if errors:
        raise Invalid("Le plan ne peut pas être tiré.", errors)
    drawn = await service.compute_draw(
        session,
        principal,
        principal.region_code or "",
        int(annee),
        DrawMethod(methode),
        int(graine) if graine.strip() else None,
        int(supplementaires),
    )
    await service.store_plan(session, principal, drawn)
    return RedirectResponse(f"/console/controles/plan?annee={annee}", status_code=303)


@router.get("")
async def control_list(
    request: Request,
    session: SessionDep,
    user: ConsoleUserDep,
    finess: str | None = None,
    plan: int | None = None,
):
    regions = service.visible_regions(user.principal)
    reads = await control_reads(session, await repository.controls(session, regions))
    return render(
        request,
        "controls_list.html",
        user,
        controls=reads,
        remaining=sum((r.remaining for r in reads), Decimal("0.00")),
        can_record=user.principal.role is Role.ARS,
        form={"finess": finess or "", "plan": plan or ""},
        today=today(),
        **LABELS,
    )


@router.post("")
async def record_control(
    request: Request,
    session: SessionDep,
    user: ConsoleUserDep,
    finess: Annotated[str, Form(max_length=20)] = "",
    nature: Annotated[str, Form(max_length=10)] = "",
    date_: Annotated[str, Form(alias="date", max_length=20)] = "",
    constats: Annotated[str, Form(max_length=10_000)] = "",
    conforme: Annotated[str, Form(max_length=5)] = "",
    indu: Annotated[str, Form(max_length=40)] = "",
    plan: Annotated[str, Form(max_length=12)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
):
    check_csrf(user, csrf)
    if user.principal.role is not Role.ARS:
        raise Forbidden("Seule l'ARS enregistre ses contrôles.")
    errors = []
    try:
        number = check_finess(finess)
    except InvalidFiness:
        errors.append(FieldError("finess", "invalid_finess", "un numéro FINESS valide"))
        number = ""
    if nature not in KIND_LABELS:
        errors.append(FieldError("nature", "unknown_kind", "sur pièces ou sur place"))
    if not constats.strip():
        errors.append(FieldError("constats", "missing", "décrivez les constats"))
    if conforme not in ("oui", "non"):
        errors.append(FieldError("conforme", "missing", "conforme ou non"))
    if errors:
        raise Invalid("Le contrôle ne peut pas être enregistré.", errors)
    control = await service.record_control(
        session,
        user.principal,
        service.NewControl(
            finess=number,
            kind=nature,
            controlled_on=_day(date_, "date"),
            findings=constats.strip(),
            compliant=conforme == "oui",
            unduly_paid=_amount(indu, "indu", False) or Decimal("0.00"),
            plan_id=int(plan) if plan.isdigit() else None,
        ),
        today(),
    )
    return RedirectResponse(f"/console/controles/{control.id}", status_code=303)


async def _visible_control(session, principal: Principal, control_id: int) -> Any:
    rows = await repository.controls(session, service.visible_regions(principal), control_id)
    if not rows:
        raise NotFound(f"Control {control_id} not found.")
    return (await control_reads(session, rows))[0]


@router.get("/{control_id}")
async def control_page(
    request: Request, control_id: int, session: SessionDep, user: ConsoleUserDep
):
    control = await _visible_control(session, user.principal, control_id)
    return render(
        request,
        "controls_control.html",
        user,
        control=control,
        can_record=user.principal.role is Role.ARS
        and control.recovery_status.value in ("to_notify", "notified"),
        today=today(),
        **LABELS,
    )


@router.post("/{control_id}/recouvrement")
async def record_recovery(
    request: Request,
    control_id: int,
    session: SessionDep,
    user: ConsoleUserDep,
    etape: Annotated[str, Form(max_length=12)] = "",
    date_: Annotated[str, Form(alias="date", max_length=20)] = "",
    montant: Annotated[str, Form(max_length=40)] = "",
    preuve: Annotated[str, Form(max_length=300)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
):
    check_csrf(user, csrf)
    if etape not in {t.value for t in RecoveryEventType}:
        raise Invalid("Étape inconnue.", [FieldError("etape", "unknown", "notifié ou récupéré")])
    await service.record_recovery(
        session,
        user.principal,
        control_id,
        RecoveryEvent(
            RecoveryEventType(etape),
            _day(date_, "date"),
            _amount(montant, "montant", False),
            preuve,
        ),
        today(),
    )
    return RedirectResponse(f"/console/controles/{control_id}", status_code=303)
