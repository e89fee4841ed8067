"""Console sign-in through the provider, driven with httpx against the real provider process:
authorization code with PKCE, state and nonce; a first sign-in without a grant lands on the
page saying whom to ask; once the national team grants, the person reaches their pages;
sign-out ends the session here and sends them to the provider's end_session_endpoint."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from app.identity.providers import directory
from app.identity.tokens import TokenRefused, verify
from app.main import create_app
from tests.identity.conftest import PUBLIC_URL, Provider, claims_for

pytestmark = pytest.mark.usefixtures("trusted_provider")


@pytest.fixture
async def browser_like(db) -> AsyncIterator[httpx.AsyncClient]:
    """A client with a cookie jar on the app, at the address the provider redirects to."""
    transport = httpx.ASGITransport(app=create_app(db))
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
        yield client


async def sign_in(client: httpx.AsyncClient, provider: Provider, subject: str) -> httpx.Response:
    """The whole round trip: our redirect, the provider's form (submitted as the person), the
    return to the console. Returns the console's answer to the return."""
    started = await client.get("/console/connexion/oidc/test-idp?suite=/console/projets")
    assert started.status_code == 303
    authorize = started.headers["location"]
    asked = parse_qs(urlparse(authorize).query)
    assert asked["code_challenge_method"] == ["S256"]
    assert asked["nonce"][0] and asked["state"][0] and asked["code_challenge"][0]
    assert asked["redirect_uri"] == [f"{PUBLIC_URL}/console/connexion/oidc-retour"]
    form = httpx.get(authorize)  # noqa: ASYNC210 (the provider is another process)
    assert form.status_code == 200  # the provider's sign-in form
    authorized = httpx.post(authorize, data={"sub": subject})  # noqa: ASYNC210
    assert authorized.status_code == 302, authorized.text[:500]
    back = authorized.headers["location"]
    assert back.startswith(f"{PUBLIC_URL}/console/connexion/oidc-retour?")
    return await client.get(back.removeprefix(PUBLIC_URL))


async def test_a_person_asks_for_access_then_signs_in_and_out(
    browser_like, factory, oidc_provider: Provider
):
    oidc_provider.set_user(
        "agent-53", {"email": "agent@ars.sante.fr", "organization": "ARS Bretagne"}
    )
    sign_in_page = await browser_like.get("/console/connexion")
    assert "Se connecter avec Fournisseur de test" in sign_in_page.text
    assert 'name="jeton"' in sign_in_page.text  # the token sign-in stays

    first = await sign_in(browser_like, oidc_provider, "agent-53")
    assert first.status_code == 200
    assert "Votre accès doit être demandé" in first.text
    assert "agent@ars.sante.fr" in first.text and "ARS Bretagne" in first.text
    assert "équipe nationale" in first.text
    assert (await browser_like.get("/console/projets")).status_code == 303  # no session

    national = await factory.token("national")
    people = await browser_like.get("/api/v1/people?email=agent@ars", headers=national)
    (person,) = people.json()["items"]
    assert person["organisation"] == "ARS Bretagne" and person["grant"] is None
    granted = await browser_like.post(
        f"/api/v1/people/{person['id']}/grants",
        headers=national,
        json={"role": "ars", "region": "53"},
    )
    assert granted.status_code == 201

    second = await sign_in(browser_like, oidc_provider, "agent-53")
    assert second.status_code == 303
    assert second.headers["location"] == "/console/projets"
    home = await browser_like.get("/console", follow_redirects=True)
    assert home.status_code == 200
    assert "agent@ars.sante.fr" in home.text and "Bretagne" in home.text

    csrf = re.search(r'name="csrf" value="([^"]+)"', home.text).group(1)
    out = await browser_like.post("/console/deconnexion", data={"csrf": csrf})
    assert out.status_code == 200  # a page that goes on to the provider (see signed_out.html)
    assert "Vous êtes déconnecté de la console" in out.text
    target = re.search(r'url=([^"]+)"', out.text).group(1).replace("&amp;", "&")
    ended = urlparse(target)
    assert f"{ended.scheme}://{ended.netloc}" == oidc_provider.issuer
    assert ended.path == "/oauth2/end_session"
    query = parse_qs(ended.query)
    assert query["post_logout_redirect_uri"] == [f"{PUBLIC_URL}/console/connexion"]
    assert query["id_token_hint"][0].count(".") == 2
    assert (await browser_like.get("/console/projets")).status_code == 303

    trail = await browser_like.get("/api/v1/audit?action=console.sign_in", headers=national)
    assert trail.json()["items"][0]["person"]["email"] == "agent@ars.sante.fr"


async def test_withdrawing_a_grant_ends_the_console_session_at_the_next_page(
    browser_like, factory, oidc_provider: Provider
):
    oidc_provider.set_user("agent-24", {"email": "agent@ars-cvl.sante.fr"})
    await sign_in(browser_like, oidc_provider, "agent-24")
    national = await factory.token("national")
    person = (await browser_like.get("/api/v1/people?email=ars-cvl", headers=national)).json()
    person_id = person["items"][0]["id"]
    grant = await browser_like.post(
        f"/api/v1/people/{person_id}/grants",
        headers=national,
        json={"role": "grades", "region": "24"},
    )
    assert (await sign_in(browser_like, oidc_provider, "agent-24")).status_code == 303
    assert (await browser_like.get("/console/projets")).status_code == 200

    await browser_like.delete(
        f"/api/v1/people/{person_id}/grants/{grant.json()['id']}", headers=national
    )
    after = await browser_like.get("/console/projets")
    assert after.status_code == 303
    assert after.headers["location"].startswith("/console/connexion")


async def test_a_return_without_this_browsers_state_is_refused(
    browser_like, oidc_provider: Provider
):
    oidc_provider.set_user("agent-11", {"email": "agent@ars-idf.sante.fr"})
    started = await browser_like.get("/console/connexion/oidc/test-idp")
    authorize = started.headers["location"]
    back = httpx.post(authorize, data={"sub": "agent-11"}).headers["location"]  # noqa: ASYNC210

    # Another browser (no state cookie) brought back to the console with this code.
    transport = browser_like._transport
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as stranger:
        refused = await stranger.get(back.removeprefix(PUBLIC_URL))
    assert refused.status_code == 401
    assert "pas été demandée depuis ce navigateur" in refused.text

    used = await browser_like.get(back.removeprefix(PUBLIC_URL))
    assert used.status_code == 200  # this browser: its sign-in goes through (no grant yet)
    again = await browser_like.get(back.removeprefix(PUBLIC_URL))
    assert again.status_code == 401  # a return is used once


async def test_an_id_token_answers_only_the_sign_in_that_asked_for_it(
    oidc_provider: Provider, service_client
):
    """The nonce of the ID token must be the one this sign-in sent."""
    provider = directory().by_issuer(oidc_provider.issuer)
    id_token = oidc_provider.sign(
        claims_for(oidc_provider, service_client.client_id, sub="agent-35", nonce="sent-by-a")
    )
    checked = await verify(
        directory(),
        id_token,
        audience=service_client.client_id,
        provider=provider,
        nonce="sent-by-a",
    )
    assert checked.subject == "agent-35"
    with pytest.raises(TokenRefused) as refused:
        await verify(
            directory(),
            id_token,
            audience=service_client.client_id,
            provider=provider,
            nonce="sent-by-b",
        )
    assert refused.value.check == "nonce"


async def test_an_unknown_provider_is_a_missing_page(browser_like):
    answer = await browser_like.get("/console/connexion/oidc/nobody")
    assert answer.status_code == 404
    assert "Page introuvable" in answer.text
