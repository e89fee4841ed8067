"""The whole OpenID Connect journey in the system's Chromium, against a live server and the
real provider process: an ARS officer signs in at the provider and is told to ask for
access; the national team gives it from the console's access page; the officer signs in
again, reaches the region's pages, and signs out here and at the provider."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from app import migrate
from app.access.principal import Role
from app.access.repository import create_token
from app.db import Database, make_engine
from app.referential.finess import make_finess
from tests.conftest import _create_database
from tests.console.conftest import ARTIFACTS, CHROMIUM, NEEDS, _free_port, run_async, serving
from tests.console.conftest import browser as browser  # the console's shared browser fixture
from tests.console.test_browser import check  # screenshot, then axe-core finds nothing grave
from tests.factories import valid_siren
from tests.identity.conftest import Provider

OFFICER = "agent-bretagne"
VENDOR = valid_siren(7_301)
FINESS = make_finess("35", 5_301)


async def _national_token(url: str) -> str:
    database = Database(make_engine(url, pool_size=1))
    try:
        async with database.sessions() as session:
            token, _ = await create_token(session, Role.NATIONAL, name="Équipe nationale")
            await session.commit()
            return token
    finally:
        await database.dispose()


@pytest.fixture(scope="module")
def site(pg_server: str, oidc_provider: Provider) -> Iterator[dict]:
    """`esms-usage serve` on a loopback port, trusting the provider, where the service is
    registered with this server's return address; one project in Bretagne."""
    if not CHROMIUM.exists():
        pytest.skip(NEEDS)
    url = run_async(_create_database(pg_server, "esms_browser_identity"))
    run_async(migrate.upgrade(url))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    client_id, secret = oidc_provider.register([f"{base}/console/connexion/oidc-retour"])
    providers = [
        {
            "name": "agents",
            "label": "ProConnect (test)",
            "issuer": oidc_provider.issuer,
            "client_id": client_id,
            "scopes": "openid email profile",
            "organisation_claim": "organization",
        }
    ]
    env = {
        "DATABASE_URL": url,
        "ESMS_LOG_LEVEL": "warning",
        "ESMS_ROLLUP_REFRESH_SECONDS": "0",
        "ESMS_PUBLIC_URL": base,
        "ESMS_OIDC_PROVIDERS": json.dumps(providers),
        "ESMS_OIDC_AGENTS_CLIENT_SECRET": secret,
    }
    with serving(port, env, ARTIFACTS / "esms_browser_identity.log"):
        national = run_async(_national_token(url))
        headers = {"Authorization": f"Bearer {national}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as api:
            for path, body in (
                ("/api/v1/vendors", {"siren": VENDOR, "name": "Logiciel Soin"}),
                (
                    "/api/v1/establishments",
                    {
                        "finess": FINESS,
                        "name": "EHPAD Les Ajoncs",
                        "legal_entity_finess": make_finess("35", 990_301),
                        "department": "35",
                        "category_code": "500",
                    },
                ),
                (
                    "/api/v1/projects",
                    {
                        "reference": "BRE-2023-007",
                        "name": "DUI Ajoncs",
                        "region": "53",
                        "vendor_siren": VENDOR,
                        "software": "Soin+",
                        "funding_case": "acquisition",
                        "submitted_on": "2023-03-01",
                        "establishments": [{"finess": FINESS}],
                    },
                ),
            ):
                answer = api.post(path, json=body)
                assert answer.status_code == 201, answer.text
        oidc_provider.set_user(
            OFFICER, {"email": "agent@ars-bretagne.sante.fr", "organization": "ARS Bretagne"}
        )
        yield {"base": base, "national": national}


def watched(context, refused: list[str]):
    """A tab whose Content-Security-Policy refusals are collected."""
    tab = context.new_page()
    tab.on(
        "console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None
    )
    return tab


def sign_in_at_provider(page, base: str, first: bool = False) -> None:
    page.goto(f"{base}/console/connexion")
    if first:
        check(page, "identity-sign-in")
    page.get_by_role("link", name="Se connecter avec ProConnect (test)").click()
    page.locator("input[name=sub]").fill(OFFICER)
    page.get_by_role("button", name="Authorize", exact=True).click()


def test_an_officer_asks_for_access_gets_it_from_the_national_team_and_signs_out(browser, site):
    base = site["base"]
    refused: list[str] = []
    officer = browser.new_context()
    page = watched(officer, refused)
    sign_in_at_provider(page, base, first=True)
    page.wait_for_url(f"{base}/console/connexion/oidc-retour**")
    assert page.get_by_role("heading", level=1).inner_text() == "Votre accès doit être demandé"
    assert "agent@ars-bretagne.sante.fr" in page.content()
    check(page, "identity-access-to-ask")

    team = browser.new_context()
    admin = watched(team, refused)
    admin.goto(f"{base}/console/connexion")
    admin.get_by_label("Jeton d'accès").fill(site["national"])
    admin.get_by_role("button", name="Se connecter").click()
    admin.get_by_role("link", name="Accès").click()
    check(admin, "identity-people")
    form = admin.get_by_role("form", name="Donner un droit à agent@ars-bretagne.sante.fr")
    form.get_by_label("Rôle").select_option("ars")
    form.get_by_label("Région").select_option("53")
    form.get_by_role("button", name="Donner l'accès").click()
    admin.wait_for_url(f"{base}/console/acces")
    row = admin.get_by_role("row").filter(has_text="agent@ars-bretagne.sante.fr")
    assert "ARS Bretagne" in row.inner_text()
    check(admin, "identity-people-granted")
    team.close()

    sign_in_at_provider(page, base)
    page.wait_for_url(f"{base}/console/regions/53")
    assert "agent@ars-bretagne.sante.fr" in page.locator(".who").inner_text()
    nav = page.get_by_role("navigation", name="Navigation principale")
    nav.get_by_role("link", name="Projets").click()
    page.wait_for_url(f"{base}/console/projets")
    page.get_by_role("link", name="BRE-2023-007").wait_for()
    check(page, "identity-officer-projects")

    page.get_by_role("button", name="Se déconnecter").click()
    page.wait_for_url("**/oauth2/end_session**")
    page.get_by_role("button", name="End session").click()
    page.wait_for_url(f"{base}/console/connexion**")
    page.goto(f"{base}/console/projets")
    page.wait_for_url(f"{base}/console/connexion**")
    officer.close()
    assert not refused, refused  # nothing on these pages breaks the content security policy
