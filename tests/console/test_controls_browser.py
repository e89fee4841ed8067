"""In a real browser (the system's Chromium, through the console's browser fixtures) against a
real server: an ARS officer draws the year's control plan, records a control that finds an
overpayment, and sees the amount to recover in the region home."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from app.access.principal import Role
from app.access.repository import create_token
from app.db import Database, make_engine
from app.referential.finess import make_finess
from app.referential.geography import departments_of_region
from app.referential.models import Establishment
from tests.console.conftest import run_async
from tests.console.test_browser import check
from tests.factories import valid_siren


async def _seed(url: str) -> tuple[str, list[str]]:
    """A funded project of Île-de-France with one establishment per département and its
    advance paid; the token of an ARS officer of the region."""
    from app.projects.models import Project, ProjectEstablishment, ProjectEvent
    from app.vendors.models import Vendor

    database = Database(make_engine(url, 1))
    try:
        async with database.sessions() as session, session.begin():
            siren = valid_siren(770_001)
            session.add(Vendor(siren=siren, name="Éditeur DUI"))
            numbers = []
            for serial, department in enumerate(departments_of_region("11"), start=1):
                finess = make_finess(department.code, 770_000 + serial)
                numbers.append(finess)
                session.add(
                    Establishment(
                        finess=finess,
                        name=f"EHPAD des Tilleuls {department.code}",
                        legal_entity_finess=make_finess(department.code, 771_000 + serial),
                        department=department.code,
                        region_code="11",
                        category_code="500",
                    )
                )
            await session.flush()
            project = Project(
                reference="IDF-2023-900",
                name="Groupement",
                region_code="11",
                vendor_siren=siren,
                software="DUI",
                funding_case="acquisition",
                submitted_on=date(2023, 3, 1),
            )
            session.add(project)
            await session.flush()
            session.add_all(
                ProjectEstablishment(
                    finess=n, project_id=project.id, funding_case="acquisition", rank=i
                )
                for i, n in enumerate(numbers, start=1)
            )
            session.add(  # what the ARS advanced: a control can find part of it unduly paid
                ProjectEvent(
                    project_id=project.id,
                    type="advance_paid",
                    date=date(2023, 6, 1),
                    amount=Decimal("40000.00"),
                )
            )
            token, _ = await create_token(session, Role.ARS, region_code="11", name="Agent")
    finally:
        await database.dispose()
    return token, numbers


def test_an_ars_officer_draws_the_plan_records_an_overpayment_and_sees_it_to_recover(
    live_server, browser
):
    token, numbers = run_async(_seed(live_server.database_url))
    context = browser.new_context(base_url=live_server.base_url, locale="fr-FR")
    page = context.new_page()
    # Nothing refused on the way: no policy violation, no failed load (the browser's own
    # favicon request aside: the console has none).
    errors: list[str] = []
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    try:
        page.goto("/console/connexion")
        page.fill("#jeton", token)
        page.click("button[type=submit]")
        page.wait_for_url("**/console/regions/11")
        to_recover = page.locator("table.figures-table tbody td").nth(4)
        assert to_recover.inner_text() == "0,00\u00a0€"

        page.click("text=Plan de contrôle de l'année")
        check(page, "controles-plan-a-tirer")
        page.select_option("#p-methode", "random")
        page.fill("#p-graine", "20250101")
        page.click("text=Tirer le plan")
        page.wait_for_selector("text=identique")
        rows = page.locator("table tbody tr")
        assert rows.count() == len(numbers)  # one per département of Île-de-France
        check(page, "controles-plan")

        rows.first.locator("text=Enregistrer un contrôle").click()
        assert page.input_value("#c-finess") in numbers
        check(page, "controles-liste")
        page.select_option("#c-nature", "on_site")
        page.fill("#c-constats", "Matériel facturé mais absent de l'établissement")
        page.check("#c-non")
        page.fill("#c-indu", "2 500,00")
        page.click("text=Enregistrer le contrôle")
        page.wait_for_selector("text=À notifier")
        assert "2\u202f500,00\u00a0€" in page.inner_text("dl.facts")
        check(page, "controle")

        page.fill("#r-preuve", "Courrier AR 2025-117")
        page.click("text=Enregistrer l'étape")
        page.wait_for_selector("text=Notifié, en cours de récupération")

        page.click("text=Ma région")
        page.wait_for_url("**/console/regions/11")
        to_recover = page.locator("table.figures-table tbody td").nth(4)
        assert to_recover.inner_text() == "2\u202f500,00\u00a0€"
        page.click("text=Établissements par niveau de risque")
        check(page, "controles-risques")
        assert errors == []
    finally:
        context.close()
