"""The console in a real browser (the system's Chromium through Playwright): the four
journeys of an ARS officer, a vendor, the ARS of another region and the national team, with
axe-core on every page (no serious or critical violation) and a screenshot of each page in
tests/artifacts/."""

from __future__ import annotations

import io
import re

import openpyxl
import pytest

from app.access.principal import Role
from app.access.repository import create_token
from app.clock import Month
from app.db import Database, make_engine
from app.referential.finess import make_finess
from tests.console.conftest import ARTIFACTS, run_async
from tests.factories import valid_siren

MEETS = {
    "accompanied_persons": 100,
    "eligible_persons": 100,
    "mssante_messages_sent": 80,
    "dmp_fed_persons": 75,
    "active_files": 95,
    "active_files_with_care_project": 92,
    "active_files_with_agenda_event": 95,
}
LAST = Month.current().plus(-1)
VENDOR = valid_siren(7_001)
LEGAL = make_finess("75", 990_101)
A, B, C = (make_finess("75", n) for n in (5_101, 5_102, 5_103))
D, E = (make_finess("92", n) for n in (5_201, 5_202))
NAMES = {A: "EHPAD Les Tilleuls", B: "EHPAD Les Lilas", C: "EHPAD Le Parc", D: "IME Les Sources"}
NAMES[E] = "SESSAD Horizon"


def row(finess: str, start: Month, end: Month, **counts) -> dict:
    return {"finess": finess, "period_start": str(start), "period_end": str(end)} | MEETS | counts


async def _tokens(url: str) -> dict[str, str]:
    database = Database(make_engine(url, pool_size=1))
    try:
        async with database.sessions() as session:
            made = {
                "national": await create_token(session, Role.NATIONAL, name="Équipe nationale"),
                "ars": await create_token(session, Role.ARS, region_code="11", name="ARS IDF"),
                "ars84": await create_token(session, Role.ARS, region_code="84", name="ARS ARA"),
            }
            await session.commit()
            return {k: token for k, (token, _) in made.items()}
    finally:
        await database.dispose()


@pytest.fixture(scope="module")
def world(live_server) -> dict:
    """Two projects of one vendor in Île-de-France: IDF-2023-042 (three EHPAD with six
    months of extracts, the third missing the DMP target last month) and IDF-2023-051 (two
    establishments without any extract yet)."""
    tokens = run_async(_tokens(live_server.database_url))
    national = {"Authorization": f"Bearer {tokens['national']}"}
    ars = {"Authorization": f"Bearer {tokens['ars']}"}
    with live_server.api() as api:

        def ok(response):
            assert response.status_code in (200, 201), response.text
            return response.json()

        ok(
            api.post(
                "/api/v1/vendors", json={"siren": VENDOR, "name": "Logiciel Soin"}, headers=national
            )
        )
        for finess, name in NAMES.items():
            body = {
                "finess": finess,
                "name": name,
                "legal_entity_finess": LEGAL,
                "department": finess[:2],
                "category_code": "500",
            }
            ok(api.post("/api/v1/establishments", json=body, headers=national))
        projects = {}
        for reference, members in (("IDF-2023-042", [A, B, C]), ("IDF-2023-051", [D, E])):
            body = {
                "reference": reference,
                "name": f"Groupement {reference[-3:]}",
                "region": "11",
                "vendor_siren": VENDOR,
                "software": "Soin+",
                "funding_case": "acquisition",
                "submitted_on": "2023-03-01",
                "establishments": [{"finess": n} for n in members],
            }
            projects[reference] = ok(api.post("/api/v1/projects", json=body, headers=ars))["id"]
        first = projects["IDF-2023-042"]
        for kind, day in (
            ("notified", "2023-06-01"),
            ("convention_signed", "2023-07-01"),
            ("started", "2023-07-15"),
            ("advance_paid", "2023-07-20"),
        ):
            ok(
                api.post(
                    f"/api/v1/projects/{first}/events",
                    json={"type": kind, "date": day},
                    headers=ars,
                )
            )
        vendor = {"Authorization": f"Bearer {_vendor_token(live_server)}"}
        start = LAST.plus(-5)
        rows = []
        for finess in (A, B, C):
            rows.append(row(finess, start, start.plus(2)))
            for k in (3, 4, 5):
                month = start.plus(k)
                short = {"dmp_fed_persons": 69} if finess == C and month == LAST else {}
                rows.append(row(finess, month, month, **short))
        summary = ok(api.post("/api/v1/extracts", json={"extracts": rows}, headers=vendor))
        assert summary["counts"]["created"] == 12, summary
    return {"tokens": tokens, "projects": projects, "vendor": vendor}


def _vendor_token(live_server) -> str:
    async def make() -> str:
        database = Database(make_engine(live_server.database_url, pool_size=1))
        try:
            async with database.sessions() as session:
                token, _ = await create_token(
                    session, Role.VENDOR, vendor_siren=VENDOR, name="Logiciel Soin"
                )
                await session.commit()
                return token
        finally:
            await database.dispose()

    return run_async(make())


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.base_url, locale="fr-FR")
    tab = context.new_page()
    refused = []
    tab.on(
        "console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None
    )
    yield tab
    context.close()
    assert not refused, refused  # nothing on the pages breaks the content security policy


def check(page, name: str) -> None:
    """Screenshot the page, then run axe-core on it: no serious or critical violation."""
    from axe_playwright_python.sync_playwright import Axe

    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    results = Axe().run(page)
    grave = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not grave, f"{name}: {grave}"


def sign_in(page, token: str) -> None:
    page.goto("/console")
    assert "/console/connexion" in page.url
    check(page, "connexion")
    page.get_by_label("Jeton d'accès").fill(token)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_load_state()


def test_ars_walks_a_project_to_its_balance_decision(page, world, live_server):
    sign_in(page, world["tokens"]["ars"])
    assert page.url.endswith("/console/regions/11")
    check(page, "region")
    page.get_by_role("navigation", name="Navigation principale").get_by_role(
        "link", name="Projets"
    ).click()
    check(page, "projets")
    page.get_by_role("link", name="IDF-2023-042").click()
    assert page.locator("#statut").inner_text() == "En cours"
    blocked = page.get_by_role("row").filter(has_text="non atteintes")
    assert blocked.count() == 1 and "EHPAD Le Parc" in blocked.inner_text()
    assert "DMP : 69,0" in blocked.inner_text()
    check(page, "projet")

    blocked.get_by_role("link", name="EHPAD Le Parc").click()
    assert page.url.endswith(f"/console/etablissements/{C}")
    assert page.locator("svg.chart title").first.text_content().startswith("Les cinq taux")
    check(page, "etablissement")
    page.go_back()
    assert "/console/projets/" in page.url

    # the vendor corrects last month's DMP count
    with live_server.api() as api:
        fixed = api.post(
            "/api/v1/extracts",
            json={"extracts": [row(C, LAST, LAST)]},
            headers=world["vendor"],
        ).json()
    assert fixed["counts"]["revised"] == 1
    page.reload()
    assert page.locator("#statut").inner_text() == "Cibles atteintes"

    page.get_by_label("Événement").select_option("expense_statement")
    page.get_by_label("Montant en euros").fill("60000")
    page.get_by_role("button", name="Voir ce qui changera").click()
    assert "Éligible au solde" in page.get_by_role("row", name=re.compile("^Statut")).inner_text()
    check(page, "apercu-etat-des-depenses")
    page.get_by_role("button", name="Confirmer l'enregistrement").click()
    assert page.locator("#statut").inner_text() == "Éligible au solde"

    page.get_by_label("Événement").select_option("balance_decision")
    page.get_by_role("button", name="Voir ce qui changera").click()
    frozen = page.get_by_role("table", name="Périodes figées par la décision")
    assert frozen.get_by_role("row").count() == 4  # header + the three establishments
    assert "Montant dû" in page.content() and "28\u202f500,00" in page.content()
    check(page, "apercu-decision-de-solde")
    page.get_by_role("button", name="Confirmer l'enregistrement").click()
    assert "Décision de solde enregistré(e)" in page.get_by_role("status").inner_text()
    check(page, "projet-decide")

    # the period the decision rests on is frozen: a later revision of it is refused
    with live_server.api() as api:
        late = api.post(
            "/api/v1/extracts",
            json={"extracts": [row(C, LAST, LAST, active_files=96)]},
            headers=world["vendor"],
        ).json()
    assert late["results"][0]["errors"][0]["code"] == "period_locked"


def test_vendor_fixes_a_refused_row_then_imports(page, world, live_server):
    sign_in(page, world["vendor"]["Authorization"][7:])
    assert page.url.endswith("/console/editeur")
    check(page, "editeur")
    page.get_by_role("link", name="Déposer un fichier").first.click()
    check(page, "depot")
    start = LAST.plus(-2)
    header = "finess,period_start,period_end," + ",".join(MEETS)
    good = ",".join(str(v) for v in MEETS.values())
    bad = good.replace(",92,", ",99,")  # care projects above active files (95)

    def upload(text: str) -> None:
        page.get_by_label("Fichier CSV ou JSON").set_input_files(
            files=[{"name": "extractions.csv", "mimeType": "text/csv", "buffer": text.encode()}]
        )
        page.get_by_role("button", name="Vérifier le fichier").click()

    upload(f"{header}\n{D},{start},{LAST},{good}\n{E},{start},{LAST},{bad}\n")
    refused = page.locator("tr.refused")
    assert refused.count() == 1
    assert "active_files_with_care_project" in refused.inner_text() and E in refused.inner_text()
    check(page, "depot-verification")

    upload(f"{header}\n{D},{start},{LAST},{good}\n{E},{start},{LAST},{good}\n")
    assert (
        "2 créée(s), 0 révisée(s), 0 inchangée(s), 0 refusée(s)"
        in page.locator("#bilan").inner_text()
    )
    page.get_by_role("button", name="Confirmer l'import").click()
    assert "import enregistré" in page.locator("#bilan").inner_text()
    check(page, "depot-import")
    with live_server.api() as api:
        stored = api.get(f"/api/v1/establishments/{E}/measurements", headers=world["vendor"])
    assert [m["period_end"] for m in stored.json()["items"]] == [str(LAST)]


def test_ars_of_another_region_gets_the_404_page(page, world):
    sign_in(page, world["tokens"]["ars84"])
    answer = page.goto(f"/console/projets/{world['projects']['IDF-2023-042']}")
    assert answer.status == 404
    assert page.get_by_role("heading", level=1).inner_text() == "Page introuvable"
    assert "IDF-2023-042" not in page.content()
    check(page, "introuvable")


def test_national_team_exports_a_region_projects_as_xlsx(page, world, live_server):
    assert f"web console at {live_server.base_url}/console" in live_server.log.read_text()
    sign_in(page, world["tokens"]["national"])
    assert page.url.endswith("/console/national")
    check(page, "national")
    page.get_by_role("link", name="Île-de-France").click()
    assert page.url.endswith("/console/regions/11")
    page.get_by_role("link", name="Les projets de la région").click()
    shown = page.get_by_role("table", name="Projets et où en est leur solde")
    references = shown.locator("tbody th").all_inner_texts()
    assert sorted(references) == ["IDF-2023-042", "IDF-2023-051"]
    check(page, "projets-region")
    with page.expect_download() as download:
        page.get_by_role("link", name="XLSX").click()
    content = download.value.path().read_bytes()
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    rows = list(sheet.iter_rows(values_only=True))
    column = rows[0].index("reference")
    assert [r[column] for r in rows[1:]] == references
    for path, name in (("/console/completude", "completude"), ("/console/pilotes", "pilotes")):
        assert page.goto(path).status == 200
        check(page, name)
