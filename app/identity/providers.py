"""Each configured provider's discovery document and signing keys, fetched and cached.

Keys rotate: a token signed with a key id the cache does not hold makes the service fetch
the provider's JWKS again, once per unknown key id, and at most REFETCHES_PER_MINUTE times a
minute per provider, so that tokens with invented key ids cannot make it hammer the provider.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from joserfc.jwk import KeySet

from app.config import get_settings
from app.errors import Unavailable
from app.identity.settings import OidcProvider

METADATA_SECONDS = 3600
KEYS_SECONDS = 3600
UNKNOWN_KID_SECONDS = 300
REFETCHES_PER_MINUTE = 10
HTTP_TIMEOUT = httpx.Timeout(5.0)


class ProviderUnavailable(Unavailable):
    code = "identity_provider_unavailable"


@dataclass
class _Cache:
    metadata: dict[str, Any] | None = None
    metadata_at: float = 0.0
    keys: KeySet | None = None
    keys_at: float = 0.0
    tried_kids: dict[str, float] = field(default_factory=dict)
    refetches: list[float] = field(default_factory=list)
    # One fetch of each at a time; two locks, since fetching the keys reads the metadata.
    metadata_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    keys_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ProviderDirectory:
    """The providers of the settings, with what the service has learnt about each."""

    def __init__(self, providers: list[OidcProvider]):
        self.providers = list(providers)
        self._caches: dict[str, _Cache] = {p.name: _Cache() for p in self.providers}

    def by_issuer(self, issuer: str) -> OidcProvider | None:
        issuer = issuer.rstrip("/")
        return next((p for p in self.providers if p.issuer == issuer), None)

    def by_name(self, name: str) -> OidcProvider | None:
        return next((p for p in self.providers if p.name == name), None)

    async def _get(self, provider: OidcProvider, url: str) -> httpx.Response:
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
                response = await client.get(url, headers={"accept": "application/json"})
                response.raise_for_status()
                return response
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                f"The identity provider {provider.label} cannot be reached ({exc!s:.200}); "
                "retry later."
            ) from exc

    async def metadata(self, provider: OidcProvider) -> dict[str, Any]:
        """The discovery document (/.well-known/openid-configuration), whose issuer must be
        the configured one (OpenID Connect Discovery §4.3)."""
        cache = self._caches[provider.name]
        if cache.metadata is not None and time.monotonic() - cache.metadata_at < METADATA_SECONDS:
            return cache.metadata
        async with cache.metadata_lock:
            if cache.metadata is None or time.monotonic() - cache.metadata_at >= METADATA_SECONDS:
                url = f"{provider.issuer}/.well-known/openid-configuration"
                document = (await self._get(provider, url)).json()
                if str(document.get("issuer", "")).rstrip("/") != provider.issuer:
                    raise ProviderUnavailable(
                        f"The discovery document of {provider.label} names another issuer "
                        f"({document.get('issuer')!r}); check ESMS_OIDC_PROVIDERS."
                    )
                cache.metadata, cache.metadata_at = document, time.monotonic()
        return cache.metadata

    async def keys(self, provider: OidcProvider, kid: str | None = None) -> KeySet:
        """The provider's signing keys; fetched again when `kid` is not among them (a new
        key after a rotation), within the limits above."""
        cache = self._caches[provider.name]
        now = time.monotonic()
        fresh = cache.keys is not None and now - cache.keys_at < KEYS_SECONDS
        if fresh and (kid is None or _holds(cache.keys, kid) or not _may_refetch(cache, kid)):
            assert cache.keys is not None
            return cache.keys
        async with cache.keys_lock:
            if cache.keys is None or not _holds(cache.keys, kid) or not fresh:
                metadata = await self.metadata(provider)
                document = (await self._get(provider, metadata["jwks_uri"])).json()
                cache.keys = KeySet.import_key_set(
                    {"keys": [k for k in document.get("keys", []) if k.get("use") != "enc"]}
                )
                cache.keys_at = time.monotonic()
                cache.refetches.append(cache.keys_at)
                if kid is not None:
                    cache.tried_kids[kid] = cache.keys_at
        return cache.keys


def _holds(keys: KeySet | None, kid: str | None) -> bool:
    return keys is not None and (kid is None or any(k.kid == kid for k in keys.keys))


def _may_refetch(cache: _Cache, kid: str) -> bool:
    now = time.monotonic()
    cache.refetches = [t for t in cache.refetches if now - t < 60]
    tried = cache.tried_kids.get(kid)
    return (tried is None or now - tried > UNKNOWN_KID_SECONDS) and len(
        cache.refetches
    ) < REFETCHES_PER_MINUTE


_directory: ProviderDirectory | None = None
_built_from: object = None


def directory() -> ProviderDirectory:
    """The directory of the current settings (built again when they change: tests)."""
    global _directory, _built_from
    providers = get_settings().oidc_providers
    if _directory is None or _built_from is not providers:
        _directory, _built_from = ProviderDirectory(providers), providers
    return _directory
