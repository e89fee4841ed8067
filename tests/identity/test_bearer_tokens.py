"""The API accepts access tokens (JWT) of a configured OpenID Connect provider beside API
tokens: a GRADeS script signs in with the client-credentials flow and gets the rights of the
grant made to its client; a forged token is refused saying which check failed."""

from __future__ import annotations

import base64
import json
import time

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from tests.identity.conftest import Provider, Service, bearer, claims_for, give

pytestmark = pytest.mark.usefixtures("trusted_provider")


async def test_a_grades_script_reads_its_region_once_the_national_team_grants_its_client(
    client, factory, oidc_provider: Provider, service_client: Service
):
    script_id, script_secret = oidc_provider.register(["http://127.0.0.1:9/unused"])
    token = oidc_provider.client_credentials(script_id, script_secret, service_client.client_id)

    refused = await client.get("/api/v1/dashboards/summary", headers=bearer(token))
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["subject"] == script_id
    assert "ask" in refused.json()["detail"]

    national = await factory.token("national")
    created = await client.post(
        "/api/v1/people",
        headers=national,
        json={"issuer": oidc_provider.issuer, "subject": script_id, "kind": "client"},
    )
    assert created.status_code == 201, created.text
    person_id = created.json()["id"]
    granted = await client.post(
        f"/api/v1/people/{person_id}/grants",
        headers=national,
        json={"role": "grades", "region": "53"},
    )
    assert granted.status_code == 201, granted.text

    me = await client.get("/api/v1/me", headers=bearer(token))
    assert me.status_code == 200
    assert (me.json()["role"], me.json()["region"]) == ("grades", "53")
    assert me.json()["person"]["subject"] == script_id
    assert (
        await client.get("/api/v1/dashboards/summary", headers=bearer(token))
    ).status_code == 200
    other = await client.get("/api/v1/dashboards/summary?region=11", headers=bearer(token))
    assert other.status_code == 404
    vendor = await factory.vendor()
    write = await client.post(
        "/api/v1/vendors", headers=bearer(token), json={"siren": vendor, "name": "x"}
    )
    assert write.status_code == 403

    withdrawn = await client.delete(
        f"/api/v1/people/{person_id}/grants/{granted.json()['id']}", headers=national
    )
    assert withdrawn.status_code == 204
    after = await client.get("/api/v1/dashboards/summary", headers=bearer(token))
    assert after.status_code == 403
    assert after.json()["type"] == "urn:esms-usage:problem:no_grant"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _forged(kind: str, provider: Provider, audience: str) -> str:
    if kind == "expired":
        return provider.sign(claims_for(provider, audience, exp=int(time.time()) - 3600))
    if kind == "unsigned":
        return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims_for(provider, audience))}."
    if kind == "wrong_key":
        genuine = provider.sign(claims_for(provider, audience))
        kid = json.loads(base64.urlsafe_b64decode(genuine.split(".")[0] + "=="))["kid"]
        # Another key claiming the provider's key id: the signature cannot verify.
        key = RSAKey.generate_key(2048, parameters={"kid": kid})
        return jwt.encode({"alg": "RS256", "kid": kid}, claims_for(provider, audience), key)
    if kind == "unknown_key":
        key = RSAKey.generate_key(2048, parameters={"kid": "attacker"})
        return jwt.encode({"alg": "RS256", "kid": "attacker"}, claims_for(provider, audience), key)
    if kind == "wrong_audience":
        return provider.sign(claims_for(provider, audience="another-service"))
    if kind == "wrong_issuer":
        return provider.sign(claims_for(provider, audience, iss="https://idp.example.org"))
    if kind == "shared_secret":
        return jwt.encode(
            {"alg": "HS256"}, claims_for(provider, audience), OctKey.import_key("0" * 32)
        )
    if kind == "id_token":  # the ID token of a console sign-in, tried on the API
        return provider.sign(claims_for(provider, audience, nonce="n-0S6_WzA2Mj"))
    if kind == "no_expiry":
        return provider.sign(claims_for(provider, audience, exp=None))
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "check", "words"),
    [
        ("expired", "expired", "expired"),
        ("unsigned", "unsigned", "not signed"),
        ("wrong_key", "signature", "does not verify"),
        ("unknown_key", "signature", "does not publish"),
        ("wrong_audience", "audience", "not meant for this service"),
        ("wrong_issuer", "issuer", "not a provider this service trusts"),
        ("shared_secret", "algorithm", "HS256"),
        ("no_expiry", "claims", "no expiry"),
        ("id_token", "id_token", "not an access token"),
    ],
)
async def test_a_forged_token_is_refused_saying_which_check_failed(
    client, session, oidc_provider: Provider, service_client: Service, kind, check, words
):
    # The identity exists and holds a grant: only the token itself is at fault.
    await give(session, oidc_provider.issuer, "script-53", "grades", region="53")
    valid = oidc_provider.sign(claims_for(oidc_provider, service_client.client_id))
    assert (await client.get("/api/v1/me", headers=bearer(valid))).status_code == 200

    answer = await client.get(
        "/api/v1/me", headers=bearer(_forged(kind, oidc_provider, service_client.client_id))
    )
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == f"urn:esms-usage:problem:token_{check}"
    assert words in problem["detail"]
    assert problem["errors"][0]["field"] == "Authorization"


async def test_a_rotated_signing_key_is_fetched_and_the_retired_one_refused(
    client, session, oidc_provider: Provider, service_client: Service
):
    await give(session, oidc_provider.issuer, "script-rotation", "national")
    claims = claims_for(oidc_provider, service_client.client_id, sub="script-rotation")
    before = oidc_provider.sign(claims)
    assert (await client.get("/api/v1/me", headers=bearer(before))).status_code == 200

    oidc_provider.rotate_keys()
    after = oidc_provider.sign(claims)
    assert (await client.get("/api/v1/me", headers=bearer(after))).status_code == 200
    retired = await client.get("/api/v1/me", headers=bearer(before))
    assert retired.status_code == 401
    assert retired.json()["type"] == "urn:esms-usage:problem:token_signature"


async def test_api_tokens_still_work_beside_provider_tokens(client, factory):
    national = await factory.token("national")
    assert (await client.get("/api/v1/me", headers=national)).json()["role"] == "national"
    unknown = await client.get("/api/v1/me", headers=bearer("esms_not-a-token"))
    assert unknown.status_code == 401
