"""Checking a JWT from a configured provider (an API access token, or the ID token of a
console sign-in): signature by the provider's JWKS, issuer, audience, expiry.

joserfc does the cryptography and the claim checks; this module only chooses the provider
and the key, and says which check refused the token, in words the caller can act on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    DecodeError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet

from app.errors import FieldError, Unauthorized
from app.identity.providers import ProviderDirectory
from app.identity.settings import OidcProvider

# Asymmetric signatures only: a shared-secret algorithm (HS256) would let anyone holding
# the client secret mint tokens, and "none" is no signature at all.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
LEEWAY_SECONDS = 30


class TokenRefused(Unauthorized):
    """A bearer JWT that failed one check; `check` names it (malformed, unsigned, algorithm,
    issuer, signature, expired, not_yet_valid, audience, claims, nonce)."""

    def __init__(self, check: str, detail: str):
        super().__init__(detail, [FieldError("Authorization", f"token_{check}", detail)])
        self.code = f"token_{check}"
        self.check = check


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    provider: OidcProvider
    claims: dict[str, Any]

    @property
    def subject(self) -> str:
        return str(self.claims["sub"])


def looks_like_jwt(token: str) -> bool:
    """Whether a bearer value is a JWT (three dot-separated parts) rather than an API token."""
    return token.count(".") == 2 and not token.startswith("esms_")


def _unverified(raw: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims, read before any check (to choose the provider and key)."""
    try:
        signature = jws.extract_compact(raw.encode())
        payload = json.loads(signature.payload)
    except (JoseError, ValueError, TypeError) as exc:
        raise TokenRefused("malformed", "The bearer token is not a readable JWT.") from exc
    if not isinstance(payload, dict):
        raise TokenRefused("malformed", "The bearer token's payload is not a JSON object.")
    return dict(signature.headers()), payload


async def verify(
    directory: ProviderDirectory,
    raw: str,
    *,
    audience: str | None = None,
    provider: OidcProvider | None = None,
    nonce: str | None = None,
) -> VerifiedToken:
    """The token's claims once every check passed; TokenRefused naming the first that failed.

    `audience` defaults to the provider's API audience; `provider` (an ID token of a sign-in
    under way) fixes the issuer instead of reading it from the token.
    """
    header, unverified = _unverified(raw)
    alg = str(header.get("alg", ""))
    if alg.lower() == "none" or not alg:
        raise TokenRefused("unsigned", "The token is not signed (alg none); it is refused.")
    if alg not in ALGORITHMS:
        raise TokenRefused(
            "algorithm", f"The token is signed with {alg}; accepted: {', '.join(ALGORITHMS)}."
        )
    issuer = str(unverified.get("iss", ""))
    if provider is None:
        provider = directory.by_issuer(issuer)
        if provider is None:
            raise TokenRefused(
                "issuer", f"The token's issuer {issuer!r} is not a provider this service trusts."
            )
    elif issuer.rstrip("/") != provider.issuer:
        raise TokenRefused(
            "issuer", f"The token's issuer {issuer!r} is not {provider.label} ({provider.issuer})."
        )
    kid = header.get("kid")
    keys = await directory.keys(provider, str(kid) if kid is not None else None)
    token = _verified(raw, keys, kid, provider)
    expected_audience = audience or provider.api_audience
    expected: dict[str, jwt.ClaimsOption] = {
        "iss": {"essential": True, "value": issuer},
        "sub": {"essential": True},
        "aud": {"essential": True, "value": expected_audience},
        "exp": {"essential": True},
    }
    if nonce is not None:
        expected["nonce"] = {"essential": True, "value": nonce}
    registry = jwt.JWTClaimsRegistry(None, LEEWAY_SECONDS, **expected)
    try:
        registry.validate(token.claims)
    except ExpiredTokenError as exc:
        raise TokenRefused(
            "expired", "The token has expired; ask the provider for a new one."
        ) from exc
    except ClaimError as exc:
        raise _claim_refusal(exc, expected_audience) from exc
    if nonce is None and ("nonce" in token.claims or token.claims.get("typ") == "ID"):
        # An ID token is for the sign-in that asked for it, not a key to the API.
        raise TokenRefused("id_token", "An ID token is not an access token; it is refused.")
    return VerifiedToken(provider, token.claims)


def _verified(raw: str, keys: KeySet, kid: Any, provider: OidcProvider) -> jwt.Token:
    if kid is not None and not any(k.kid == kid for k in keys.keys):
        raise TokenRefused(
            "signature",
            f"The token is signed with a key ({kid}) that {provider.label} does not publish.",
        )
    candidates = [k for k in keys.keys if kid is None or k.kid == kid]
    for key in candidates:
        try:
            return jwt.decode(raw, key, algorithms=ALGORITHMS)
        except BadSignatureError:
            continue
        except (DecodeError, JoseError) as exc:
            if "signature" in type(exc).__name__.lower():
                continue
            raise TokenRefused("malformed", f"The token cannot be read: {exc}.") from exc
    raise TokenRefused(
        "signature", f"The token's signature does not verify with the keys of {provider.label}."
    )


def _claim_refusal(exc: ClaimError, audience: str) -> TokenRefused:
    claim = exc.claim
    if claim == "aud":
        return TokenRefused(
            "audience", f"The token is not meant for this service (audience must be {audience!r})."
        )
    if claim == "nbf" or (claim == "iat" and isinstance(exc, InvalidClaimError)):
        return TokenRefused("not_yet_valid", "The token is not valid yet.")
    if claim == "nonce":
        return TokenRefused("nonce", "The ID token does not answer this sign-in (nonce).")
    if claim == "exp" and isinstance(exc, MissingClaimError):
        return TokenRefused("claims", "The token has no expiry (exp); it is refused.")
    return TokenRefused("claims", f"The token's claim {claim!r} is refused: {exc.description}.")
