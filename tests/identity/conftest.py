"""A real OpenID Connect provider on loopback (tests/identity/provider.py, its own process),
the service registered there as a client, and the settings that make the service trust it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.access.principal import Role
from app.config import get_settings
from app.identity import repository

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass(frozen=True)
class Provider:
    issuer: str

    def register(self, redirect_uris: list[str]) -> tuple[str, str]:
        """A new client registered at the provider: (client_id, client_secret)."""
        answer = httpx.post(
            f"{self.issuer}/oauth2/clients", json={"redirect_uris": redirect_uris}
        ).raise_for_status()
        return answer.json()["client_id"], answer.json()["client_secret"]

    def client_credentials(self, client_id: str, secret: str, audience: str) -> str:
        """An access token (JWT) for a client, as a GRADeS script would get it."""
        answer = httpx.post(
            f"{self.issuer}/oauth2/token",
            auth=(client_id, secret),
            data={"grant_type": "client_credentials", "audience": audience},
        ).raise_for_status()
        return answer.json()["access_token"]

    def sign(self, claims: dict[str, Any]) -> str:
        """A JWT signed with the provider's current key, with exactly these claims."""
        return httpx.post(f"{self.issuer}/testing/sign", json=claims).raise_for_status().text

    def rotate_keys(self) -> str:
        return httpx.post(f"{self.issuer}/testing/rotate-keys").raise_for_status().json()["kid"]

    def set_user(self, subject: str, claims: dict[str, Any]) -> None:
        httpx.put(f"{self.issuer}/users/{subject}", json=claims).raise_for_status()


def start_provider() -> tuple[subprocess.Popen, Provider]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.identity.provider"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("listening "):
        process.kill()
        raise RuntimeError(f"the test provider did not start: {line!r}")
    return process, Provider(line.split()[1])


def stop_provider(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[Provider]:
    process, provider = start_provider()
    try:
        yield provider
    finally:
        stop_provider(process)


@dataclass(frozen=True)
class Service:
    """The service as registered at the provider."""

    client_id: str
    client_secret: str
    redirect_uri: str


# Where the console is reached in the tests that drive it through httpx.
PUBLIC_URL = "http://127.0.0.1:8765"
SERVICE_REDIRECT = f"{PUBLIC_URL}/console/connexion/oidc-retour"


@pytest.fixture(scope="session")
def service_client(oidc_provider: Provider) -> Service:
    client_id, secret = oidc_provider.register([SERVICE_REDIRECT])
    return Service(client_id, secret, SERVICE_REDIRECT)


def provider_settings(provider: Provider, service: Service, **extra: Any) -> dict[str, Any]:
    return {
        "name": "test-idp",
        "label": "Fournisseur de test",
        "issuer": provider.issuer,
        "client_id": service.client_id,
        "scopes": "openid email profile",
        "organisation_claim": "organization",
        **extra,
    }


@pytest.fixture(scope="module")
def trusted_provider(oidc_provider: Provider, service_client: Service) -> Iterator[Provider]:
    """The service trusts the test provider (ESMS_OIDC_PROVIDERS), for the tests of a module
    that ask; the settings are put back after it. The console's address is the one each
    request is made to (PUBLIC_URL in the tests that sign in)."""
    names = ("ESMS_OIDC_PROVIDERS", "ESMS_OIDC_TEST_IDP_CLIENT_SECRET")
    saved = {k: os.environ.get(k) for k in names}
    os.environ["ESMS_OIDC_PROVIDERS"] = json.dumps(
        [provider_settings(oidc_provider, service_client)]
    )
    os.environ["ESMS_OIDC_TEST_IDP_CLIENT_SECRET"] = service_client.client_secret
    get_settings.cache_clear()
    try:
        yield oidc_provider
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()


async def give(session, issuer, subject, role, region=None, vendor=None, email=None):
    """A person (or client) holding a grant, written straight to the test's transaction."""
    person, _ = await repository.create(
        session, issuer, subject, kind="person", email=email, name=None
    )
    await repository.add_grant(
        session, person.id, Role(role), vendor_siren=vendor, region_code=region, granted_by="test"
    )
    return person


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims_for(provider: Provider, audience: str, **changes: Any) -> dict[str, Any]:
    """Claims of a valid access token of `provider` for `audience`; a None value drops one."""
    now = int(time.time())
    claims = {"iss": provider.issuer, "sub": "script-53", "aud": audience, "iat": now}
    claims["exp"] = now + 300
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}
