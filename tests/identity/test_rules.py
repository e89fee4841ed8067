"""Pure rules of identity: who may grant what, and the provider settings an operator writes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.access.principal import PersonRef, Principal, Role
from app.identity.rules import refusal_to_grant
from app.identity.settings import OidcProvider

NATIONAL = Principal(1, Role.NATIONAL)
ARS_53 = Principal(None, Role.ARS, region_code="53", person=PersonRef(7, "https://i", "s"))
GRADES_53 = Principal(2, Role.GRADES, region_code="53")


@pytest.mark.parametrize(
    ("granter", "person", "role", "region", "refused"),
    [
        (NATIONAL, 9, Role.NATIONAL, None, None),
        (NATIONAL, 9, Role.VENDOR, None, None),
        (ARS_53, 9, Role.ARS, "53", None),
        (ARS_53, 9, Role.GRADES, "53", None),
        (ARS_53, 9, Role.GRADES, "11", "own region"),
        (ARS_53, 9, Role.NATIONAL, None, "ars and grades"),
        (ARS_53, 9, Role.VENDOR, None, "ars and grades"),
        (ARS_53, 7, Role.GRADES, "53", "their own access"),
        (GRADES_53, 9, Role.GRADES, "53", "national team and the ARS"),
    ],
)
def test_who_may_grant_what(granter, person, role, region, refused):
    reason = refusal_to_grant(granter, person, role, region)
    assert (reason is None) == (refused is None)
    if refused:
        assert refused in reason


BASE = {"name": "proconnect", "label": "ProConnect", "issuer": "https://p/", "client_id": "c"}


def test_a_provider_takes_its_secret_from_its_own_variable(monkeypatch):
    monkeypatch.setenv("ESMS_OIDC_PROCONNECT_CLIENT_SECRET", "s3cr3t-from-the-secret")
    provider = OidcProvider(**BASE)
    assert provider.client_secret.get_secret_value() == "s3cr3t-from-the-secret"
    assert provider.issuer == "https://p"
    assert provider.api_audience == "c"


@pytest.mark.parametrize("secret", ["changeme", "REPLACE_WITH_THE_PROCONNECT_CLIENT_SECRET", " "])
def test_a_placeholder_secret_stops_the_service(monkeypatch, secret):
    monkeypatch.setenv("ESMS_OIDC_PROCONNECT_CLIENT_SECRET", secret)
    with pytest.raises(ValidationError, match="placeholder"):
        OidcProvider(**BASE)
