"""Who is calling: a role bound to a vendor, a region, or the whole country (SPEC §8)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    VENDOR = "vendor"
    ARS = "ars"
    GRADES = "grades"
    NATIONAL = "national"


@dataclass(frozen=True, slots=True)
class PersonRef:
    """A person signed in through an OpenID Connect provider (or a client application)."""

    id: int
    issuer: str
    subject: str
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: int | None
    role: Role
    vendor_siren: str | None = None
    region_code: str | None = None
    name: str = ""
    # Set when the caller is a person (console, bearer JWT) rather than an API token; the
    # role and binding then come from the person's grant.
    person: PersonRef | None = None
    grant_id: int | None = None

    @property
    def scope_key(self) -> str:
        """What the caller may see, as a key (role, and vendor or region): two callers with
        the same one see the same figures, so what is kept for one may be served to the
        other."""
        return f"{self.role.value}:{self.vendor_siren or self.region_code or 'all'}"

    @property
    def label(self) -> str:
        """Who calls, in logs and in the `granted_by` of grants: a stable pseudonym (the
        person's id, never their e-mail address; the audit trail keeps that beside it)."""
        if self.person is not None:
            return f"{self.scope_key}:person:{self.person.id}"
        return f"{self.scope_key}:{self.token_id}"


TOKEN_PREFIX = "esms_"


def new_token() -> str:
    """A random bearer token; only its hash is stored, so it is shown once."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # The token carries 256 random bits: a plain SHA-256 cannot be reversed by guessing.
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(scope: Mapping[str, Any]) -> str | None:
    """The bearer token of an ASGI request, for the layers that run before the route's
    authentication (rate limit, Idempotency-Key); None without one."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            if kind.lower() == "bearer" and token.strip():
                return token.strip()
    return None


# Writes made by the operator's command line (imports, demo data), for the audit trail.
COMMAND_LINE = Principal(None, Role.NATIONAL, name="esms-usage command line")
