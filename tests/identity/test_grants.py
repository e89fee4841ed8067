"""Grants: the national team grants every role, an ARS grants ars and grades for its own
region; every grant and withdrawal is in the audit trail with the person who made it."""

from __future__ import annotations

import pytest

from tests.identity.conftest import Provider, Service, bearer, claims_for, give

pytestmark = pytest.mark.usefixtures("trusted_provider")


async def signed_in(
    session, provider: Provider, service: Service, subject, role, region=None, email=None
):
    """Headers of a person holding a grant, carrying a genuine access token of the provider."""
    person = await give(session, provider.issuer, subject, role, region=region, email=email)
    token = provider.sign(claims_for(provider, service.client_id, sub=subject, email=email))
    return person, bearer(token)


async def newcomer(client, headers, provider: Provider, subject: str) -> int:
    answer = await client.post(
        "/api/v1/people",
        headers=headers,
        json={"issuer": provider.issuer, "subject": subject, "email": f"{subject}@ars.sante.fr"},
    )
    assert answer.status_code in (200, 201), answer.text
    return answer.json()["id"]


async def test_an_ars_officer_grants_grades_for_its_region_and_the_trail_names_them(
    client, session, factory, oidc_provider: Provider, service_client: Service
):
    officer, headers = await signed_in(
        session, oidc_provider, service_client, "ars-53-officer", "ars", "53", "chef@ars.sante.fr"
    )
    analyst = await newcomer(client, headers, oidc_provider, "grades-53-analyst")
    granted = await client.post(
        f"/api/v1/people/{analyst}/grants", headers=headers, json={"role": "grades", "region": "53"}
    )
    assert granted.status_code == 201, granted.text
    # who granted, by a pseudonym (the e-mail is in the audit trail below)
    assert granted.json()["granted_by"] == f"ars:53:person:{officer.id}"

    national = await factory.token("national")
    trail = await client.get("/api/v1/audit?action=grant.create", headers=national)
    entry = trail.json()["items"][0]
    assert entry["object_id"] == str(granted.json()["id"])
    assert entry["region"] == "53"
    assert entry["token_id"] is None
    assert entry["person"] == {
        "id": officer.id,
        "issuer": oidc_provider.issuer,
        "subject": "ars-53-officer",
        "email": "chef@ars.sante.fr",
    }
    assert entry["detail"]["subject"] == "grades-53-analyst"
    # The ARS reads it in its own region's trail as well.
    own = await client.get("/api/v1/audit?action=grant.create", headers=headers)
    assert [e["object_id"] for e in own.json()["items"]] == [str(granted.json()["id"])]

    withdrawn = await client.delete(
        f"/api/v1/people/{analyst}/grants/{granted.json()['id']}", headers=headers
    )
    assert withdrawn.status_code == 204
    detail = (await client.get(f"/api/v1/people/{analyst}", headers=national)).json()
    assert detail["grant"] is None
    assert detail["grants"][0]["withdrawn_by"] == f"ars:53:person:{officer.id}"
    withdrawal = await client.get("/api/v1/audit?action=grant.withdraw", headers=national)
    assert withdrawal.json()["items"][0]["person"]["subject"] == "ars-53-officer"


@pytest.mark.parametrize(
    ("grant", "reason"),
    [
        ({"role": "national"}, "ars and grades"),
        ({"role": "vendor", "vendor_siren": "732829320"}, "ars and grades"),
        ({"role": "grades", "region": "11"}, "own region"),
        ({"role": "ars", "region": "24"}, "own region"),
    ],
)
async def test_an_ars_grants_nothing_beyond_its_region(
    client, session, oidc_provider: Provider, service_client: Service, grant, reason
):
    _, headers = await signed_in(session, oidc_provider, service_client, "ars-53-b", "ars", "53")
    person = await newcomer(client, headers, oidc_provider, "someone")
    answer = await client.post(f"/api/v1/people/{person}/grants", headers=headers, json=grant)
    assert answer.status_code == 403
    assert reason in answer.json()["detail"]


async def test_nobody_grants_themselves_and_a_person_holds_one_grant_at_a_time(
    client, session, factory, oidc_provider: Provider, service_client: Service
):
    me, headers = await signed_in(session, oidc_provider, service_client, "nat-1", "national")
    own = await client.post(
        f"/api/v1/people/{me.id}/grants", headers=headers, json={"role": "ars", "region": "53"}
    )
    assert own.status_code == 403
    assert "their own access" in own.json()["detail"]

    other = await newcomer(client, headers, oidc_provider, "twice")
    first = await client.post(
        f"/api/v1/people/{other}/grants", headers=headers, json={"role": "ars", "region": "53"}
    )
    assert first.status_code == 201
    second = await client.post(
        f"/api/v1/people/{other}/grants", headers=headers, json={"role": "grades", "region": "11"}
    )
    assert second.status_code == 409
    assert second.json()["grant_id"] == first.json()["id"]
    missing_region = await client.post(
        f"/api/v1/people/{await newcomer(client, headers, oidc_provider, 'n3')}/grants",
        headers=headers,
        json={"role": "ars"},
    )
    assert missing_region.status_code == 422
    assert missing_region.json()["errors"][0]["field"] == "region"


async def test_an_ars_sees_its_region_and_the_newcomers_only(
    client, session, factory, oidc_provider: Provider, service_client: Service
):
    _, headers = await signed_in(session, oidc_provider, service_client, "ars-53-c", "ars", "53")
    elsewhere = await give(session, oidc_provider.issuer, "ars-11-d", "ars", region="11")
    waiting = await newcomer(client, headers, oidc_provider, "waiting")
    listed = await client.get("/api/v1/people", headers=headers)
    subjects = {p["subject"] for p in listed.json()["items"]}
    assert {"ars-53-c", "waiting"} <= subjects
    assert "ars-11-d" not in subjects
    assert (await client.get(f"/api/v1/people/{elsewhere.id}", headers=headers)).status_code == 404
    assert (await client.get(f"/api/v1/people/{waiting}", headers=headers)).status_code == 200

    vendor = await factory.token("vendor", vendor=await factory.vendor())
    assert (await client.get("/api/v1/people", headers=vendor)).status_code == 403


async def test_an_identity_of_an_unknown_provider_is_refused(client, factory):
    national = await factory.token("national")
    answer = await client.post(
        "/api/v1/people",
        headers=national,
        json={"issuer": "https://idp.example.org", "subject": "x"},
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "issuer"
