"""Who calls, rather than which token bytes: a client of the client-credentials flow that
refreshes its short-lived access token keeps its minute of the rate limit and its
Idempotency-Keys; and the access log names a signed-in person by a pseudonym, never by
their e-mail address (which the audit trail keeps)."""

from __future__ import annotations

import itertools
import json
import logging

import pytest

from app.config import get_settings
from app.observability.logs import JsonFormatter
from tests.factories import valid_siren
from tests.identity.conftest import Provider, Service, bearer, give
from tests.identity.test_console_sign_in import browser_like, sign_in

pytestmark = pytest.mark.usefixtures("trusted_provider")
__all__ = ["browser_like"]  # the fixture, for the sign-in through the console
SERIALS = itertools.count(731_000)


@pytest.fixture
def rate_limit(monkeypatch):
    monkeypatch.setenv("ESMS_RATE_LIMIT_PER_MINUTE", "4")
    get_settings.cache_clear()
    yield 4
    get_settings.cache_clear()


async def test_a_client_refreshing_its_token_keeps_its_minute_and_its_idempotency_keys(
    client, session, factory, rate_limit, oidc_provider: Provider, service_client: Service
):
    script_id, secret = oidc_provider.register(["http://127.0.0.1:9/unused"])
    await give(session, oidc_provider.issuer, script_id, "national")
    first = oidc_provider.client_credentials(script_id, secret, service_client.client_id)
    body = {"siren": valid_siren(next(SERIALS)), "name": "Éditeur"}
    keyed = {"Idempotency-Key": "create-vendor-1"}
    created = await client.post("/api/v1/vendors", json=body, headers=bearer(first) | keyed)
    assert created.status_code == 201, created.text
    assert (await client.get("/api/v1/me", headers=bearer(first))).status_code == 200

    refreshed = oidc_provider.client_credentials(script_id, secret, service_client.client_id)
    assert refreshed != first
    # The retry, with the new token, gets the first answer and writes nothing again.
    retry = await client.post("/api/v1/vendors", json=body, headers=bearer(refreshed) | keyed)
    assert retry.status_code == 201 and retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == created.json()
    # Its minute goes on: 3 requests so far, the limit is 4.
    assert (await client.get("/api/v1/me", headers=bearer(refreshed))).status_code == 200
    limited = await client.get("/api/v1/me", headers=bearer(refreshed))
    assert limited.status_code == 429
    assert limited.headers["content-type"] == "application/problem+json"
    # Another client of the same provider has a minute of its own.
    other_id, other_secret = oidc_provider.register(["http://127.0.0.1:9/unused"])
    await give(session, oidc_provider.issuer, other_id, "national")
    other = oidc_provider.client_credentials(other_id, other_secret, service_client.client_id)
    assert (await client.get("/api/v1/me", headers=bearer(other))).status_code == 200


async def test_a_withdrawn_client_gets_no_replay_of_its_answers(
    client, session, factory, oidc_provider: Provider, service_client: Service
):
    script_id, secret = oidc_provider.register(["http://127.0.0.1:9/unused"])
    person = await give(session, oidc_provider.issuer, script_id, "national")
    token = oidc_provider.client_credentials(script_id, secret, service_client.client_id)
    body = {"siren": valid_siren(next(SERIALS)), "name": "Éditeur"}
    keyed = bearer(token) | {"Idempotency-Key": "create-vendor-2"}
    assert (await client.post("/api/v1/vendors", json=body, headers=keyed)).status_code == 201
    national = await factory.token("national")
    grant = (await client.get(f"/api/v1/people/{person.id}", headers=national)).json()["grant"]
    withdrawn = await client.delete(
        f"/api/v1/people/{person.id}/grants/{grant['id']}", headers=national
    )
    assert withdrawn.status_code == 204
    retry = await client.post("/api/v1/vendors", json=body, headers=keyed)
    assert retry.status_code == 403 and "idempotent-replayed" not in retry.headers


async def test_the_access_log_names_a_signed_in_person_without_their_e_mail(
    browser_like, factory, caplog, oidc_provider: Provider
):
    oidc_provider.set_user("agent-11", {"email": "agent@ars-idf.sante.fr"})
    await sign_in(browser_like, oidc_provider, "agent-11")  # a first sign-in: no access yet
    national = await factory.token("national")
    people = await browser_like.get("/api/v1/people?email=ars-idf", headers=national)
    person_id = people.json()["items"][0]["id"]
    granted = await browser_like.post(
        f"/api/v1/people/{person_id}/grants", headers=national, json={"role": "ars", "region": "11"}
    )
    assert granted.status_code == 201
    assert (await sign_in(browser_like, oidc_provider, "agent-11")).status_code == 303

    caplog.set_level(logging.INFO, logger="esms")
    page = await browser_like.get("/console/projets", headers={"X-Request-ID": "seen-by-ops"})
    assert page.status_code == 200 and "agent@ars-idf.sante.fr" in page.text  # shown to them
    formatter = JsonFormatter()
    lines = [
        formatter.format(record)
        for record in caplog.records
        if getattr(record, "request_id", None) == "seen-by-ops"
    ]
    assert lines, "the request was logged"
    assert all("@" not in line for line in lines), lines
    entry = json.loads(lines[-1])
    assert entry["principal"] == f"ars:11:person:{person_id}"  # a stable pseudonym
    # The audit trail still says who, e-mail included, for accountability.
    trail = await browser_like.get("/api/v1/audit?action=console.sign_in", headers=national)
    assert trail.json()["items"][0]["person"]["email"] == "agent@ars-idf.sante.fr"
