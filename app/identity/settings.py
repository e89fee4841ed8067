"""The OpenID Connect providers the service trusts, as the operator configures them.

`ESMS_OIDC_PROVIDERS` holds a JSON list of providers; each one's client secret comes from
its own variable, `ESMS_OIDC_<NAME>_CLIENT_SECRET` (a Kubernetes secret in production), so
the list itself can live in a ConfigMap.
"""

from __future__ import annotations

import os
import re

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

# Values copied from an example and never replaced: refused, so that a deployment with
# them fails at start rather than signing people in with a known secret.
PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "client-secret", "xxx", "todo"}


class OidcProvider(BaseModel):
    """One provider: where it is, how the service is registered there, which claims say what."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,30}$", description="used in URLs")
    label: str = Field(min_length=1, description="shown on the sign-in page")
    issuer: str = Field(pattern=r"^https?://[^\s]+$")
    client_id: str = Field(min_length=1)
    client_secret: SecretStr | None = None
    scopes: str = "openid email"
    email_claim: str = "email"
    organisation_claim: str | None = None
    name_claim: str | None = "name"
    # The `aud` that access tokens for the API must carry (default: the service's client id).
    audience: str | None = None
    # ProConnect and Pro Santé Connect give the e-mail and organisation in the userinfo
    # answer only, not in the ID token.
    userinfo: bool = False

    @field_validator("issuer")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _secret_from_environment(self) -> OidcProvider:
        if self.client_secret is None:
            variable = f"ESMS_OIDC_{re.sub('[^A-Z0-9]', '_', self.name.upper())}_CLIENT_SECRET"
            value = os.environ.get(variable)
            if value is not None:
                self.client_secret = SecretStr(value)
        secret = (
            self.client_secret.get_secret_value().strip().lower() if self.client_secret else None
        )
        if secret is not None and (secret in PLACEHOLDER_SECRETS or secret.startswith("replace")):
            raise ValueError(f"the client secret of provider {self.name!r} is a placeholder")
        return self

    @property
    def api_audience(self) -> str:
        return self.audience or self.client_id
