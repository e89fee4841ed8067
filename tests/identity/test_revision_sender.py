"""The revision history of a measurement names who sent each revision: the API token, or the
person (or client application) signed in through a provider."""

from __future__ import annotations

import pytest

from tests.identity.conftest import Provider, Service, bearer, give
from tests.test_extracts import extract, push

pytestmark = pytest.mark.usefixtures("trusted_provider")


async def test_the_history_shows_the_person_or_the_token_behind_each_revision(
    client, session, factory, oidc_provider: Provider, service_client: Service
):
    vendor, (finess,), token_headers = await factory.vendor_with_establishments()
    script_id, script_secret = oidc_provider.register(["http://127.0.0.1:9/unused"])
    await give(session, oidc_provider.issuer, script_id, "vendor", vendor=vendor, email=None)
    jwt = oidc_provider.client_credentials(script_id, script_secret, service_client.client_id)

    sent = await push(client, bearer(jwt), extract(finess, "2025-01", "2025-03"))
    assert sent["counts"]["created"] == 1
    revised = await push(
        client, token_headers, extract(finess, "2025-01", "2025-03", accompanied_persons=81)
    )
    assert revised["counts"]["revised"] == 1

    history = await client.get(f"/api/v1/establishments/{finess}/revisions", headers=token_headers)
    first, second = history.json()["items"]
    assert first["sent_by_token"] is None
    assert first["sent_by_person"] == {
        "issuer": oidc_provider.issuer,
        "subject": script_id,
        "email": None,
    }
    assert second["sent_by_token"] is not None
    assert second["sent_by_person"] is None
