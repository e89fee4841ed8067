"""Signing in to the console with an API token: the session cookie, its CSRF token, its
expiry, signing out, and a revoked token ending the session."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from app.access import repository as tokens
from app.audit.models import AuditEvent
from app.clock import now
from app.console.models import ConsoleSession
from tests.console.helpers import csrf_of, sign_in


async def test_root_and_pages_lead_to_sign_in(client):
    root = await client.get("/")
    assert root.status_code == 307 and root.headers["location"] == "/console"
    page = await client.get("/console/regions/11")
    assert page.status_code == 303
    assert page.headers["location"] == "/console/connexion?suite=%2Fconsole%2Fregions%2F11"
    form = await client.get("/console/connexion")
    assert form.status_code == 200
    assert '<html lang="fr">' in form.text and 'label for="jeton"' in form.text
    assert "default-src 'self'" in form.headers["content-security-policy"]


async def test_sign_in_opens_an_http_only_session_and_audits_it(client, factory, session):
    headers = await factory.token("ars", region="11", name="Agent ARS")
    answer = await sign_in(client, headers)
    assert answer.status_code == 303 and answer.headers["location"] == "/console"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("esms_console=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP here; see the HTTPS test below
    home = await client.get("/console", follow_redirects=True)
    assert str(home.url).endswith("/console/regions/11")
    assert "Agent ARS" in home.text and "Île-de-France" in home.text
    stored = (await session.execute(select(ConsoleSession))).scalars().all()
    assert len(stored) == 1 and stored[0].token_id is not None
    assert cookie.split(";")[0].split("=", 1)[1] not in stored[0].key_hash  # only its hash
    actions = (await session.execute(select(AuditEvent.action))).scalars().all()
    assert "console.sign_in" in actions


async def test_cookie_is_secure_behind_https(client, factory):
    headers = await factory.token("national")
    form = await client.get("/console/connexion")
    answer = await client.post(
        "/console/connexion",
        data={"jeton": headers["Authorization"][7:], "csrf": csrf_of(form.text)},
        headers={"X-Forwarded-Proto": "https"},
    )
    assert "Secure" in answer.headers["set-cookie"]


async def test_unknown_token_and_missing_csrf_are_refused(client, factory):
    form = await client.get("/console/connexion")
    wrong = await client.post(
        "/console/connexion", data={"jeton": "esms_nope", "csrf": csrf_of(form.text)}
    )
    assert wrong.status_code == 200 and "inconnu, expiré ou révoqué" in wrong.text
    assert "esms_console=" not in wrong.headers.get("set-cookie", "")
    headers = await factory.token("national")
    forged = await client.post("/console/connexion", data={"jeton": headers["Authorization"][7:]})
    assert forged.status_code == 403 and "Formulaire expiré" in forged.text


async def test_sign_out_needs_the_session_csrf_and_ends_the_session(client, factory, session):
    await sign_in(client, await factory.token("national"))
    page = await client.get("/console/national")
    assert page.status_code == 200
    refused = await client.post("/console/deconnexion", data={"csrf": "forged"})
    assert refused.status_code == 403
    assert (await client.get("/console/national")).status_code == 200
    out = await client.post("/console/deconnexion", data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303 and out.headers["location"] == "/console/connexion"
    row = (await session.execute(select(ConsoleSession))).scalar_one()
    assert row.ended_at is not None
    assert (await client.get("/console/national")).status_code == 303


async def test_expired_session_and_revoked_token_send_back_to_sign_in(client, factory, session):
    await sign_in(client, await factory.token("national"))
    assert (await client.get("/console/national")).status_code == 200
    await session.execute(update(ConsoleSession).values(expires_at=now() - timedelta(seconds=1)))
    assert (await client.get("/console/national")).status_code == 303

    headers = await factory.token("national")
    await sign_in(client, headers)
    assert (await client.get("/console/national")).status_code == 200
    row = (
        (await session.execute(select(ConsoleSession).order_by(ConsoleSession.id.desc())))
        .scalars()
        .first()
    )
    await tokens.revoke_token(session, row.token_id)
    assert (await client.get("/console/national")).status_code == 303


async def test_a_sign_in_keeps_the_api_dashboards_cached(client, factory):
    """A sign-in is audited but moves no figure: a GRADeS script polling a dashboard keeps
    getting 304 while people sign in to the console."""
    ars = await factory.token("ars", region="84")
    first = await client.get("/api/v1/dashboards/summary", headers=ars)
    etag = first.headers["etag"]
    await sign_in(client, await factory.token("national"))
    again = await client.get("/api/v1/dashboards/summary", headers={**ars, "If-None-Match": etag})
    assert again.status_code == 304
