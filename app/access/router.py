"""HTTP endpoints of access tokens (national team only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from app.access import repository
from app.access.dependencies import AuthorisedRoute, CurrentPrincipal, requires
from app.access.principal import Role
from app.audit import service as audit
from app.db import SessionDep
from app.errors import FieldError, Invalid, NotFound
from app.referential.geography import REGIONS
from app.schemas import Instant, RowId
from app.vendors.models import Vendor

router = APIRouter(prefix="/api/v1/tokens", tags=["access"], route_class=AuthorisedRoute)
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


class TokenCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"role": "grades", "region": "53", "name": "GRADeS Bretagne"}]
        }
    )

    role: Literal["vendor", "ars", "grades", "national"]
    vendor_siren: str | None = None
    region: str | None = None
    name: str = Field(default="", max_length=200)
    expires_at: Instant | None = None


class TokenRead(BaseModel):
    id: int
    role: str
    vendor_siren: str | None
    region: str | None
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenRead):
    token: str = Field(description="shown once; only its hash is stored")


async def check_binding(session, role: Role, vendor_siren: str | None, region: str | None) -> None:
    """A vendor token names its vendor, an ARS or GRADeS token its region, national neither."""
    errors = []
    if role is Role.VENDOR:
        if not vendor_siren:
            errors.append(FieldError("vendor_siren", "required", "a vendor token names its vendor"))
        elif await session.get(Vendor, vendor_siren) is None:
            errors.append(FieldError("vendor_siren", "unknown_vendor", f"no vendor {vendor_siren}"))
    elif vendor_siren is not None:  # even "": the database would refuse it (500)
        errors.append(FieldError("vendor_siren", "not_allowed", f"a {role} token has no vendor"))
    if role in (Role.ARS, Role.GRADES):
        if not region:
            errors.append(FieldError("region", "required", f"an {role} token names its region"))
        elif region not in REGIONS:
            errors.append(FieldError("region", "unknown_region", f"{region!r} is not a region"))
    elif region is not None:
        errors.append(FieldError("region", "not_allowed", f"a {role} token has no region"))
    if errors:
        raise Invalid("The token's binding does not fit its role.", errors)


def _read(row) -> dict:
    return {
        "id": row.id,
        "role": row.role,
        "vendor_siren": row.vendor_siren,
        "region": row.region_code,
        "name": row.name,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
    }


@router.post(
    "",
    dependencies=[requires(Role.NATIONAL)],
    status_code=201,
    response_model=TokenCreated,
    summary="Create an access token",
    responses={401: _PROBLEM, 403: _PROBLEM, 422: _PROBLEM},
)
async def create_token(
    payload: TokenCreate, session: SessionDep, principal: CurrentPrincipal
) -> TokenCreated:
    role = Role(payload.role)
    await check_binding(session, role, payload.vendor_siren, payload.region)
    token, row = await repository.create_token(
        session,
        role,
        vendor_siren=payload.vendor_siren,
        region_code=payload.region,
        name=payload.name,
        expires_at=payload.expires_at,
    )
    await session.refresh(row)
    await audit.record(
        session,
        principal,
        "token.create",
        "access_token",
        str(row.id),
        detail={"role": role.value, "vendor_siren": payload.vendor_siren, "region": payload.region},
    )
    return TokenCreated(token=token, **_read(row))


@router.get(
    "",
    response_model=list[TokenRead],
    summary="Tokens",
    responses={401: _PROBLEM, 403: _PROBLEM},
    dependencies=[requires(Role.NATIONAL)],
)
async def list_tokens(session: SessionDep, principal: CurrentPrincipal) -> list[TokenRead]:
    return [TokenRead(**_read(r)) for r in await repository.list_tokens(session)]


@router.delete(
    "/{token_id}",
    dependencies=[requires(Role.NATIONAL)],
    status_code=204,
    summary="Revoke a token (effective at once)",
    responses={401: _PROBLEM, 403: _PROBLEM, 404: _PROBLEM},
)
async def revoke_token(
    token_id: RowId, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    if not await repository.revoke_token(session, token_id):
        raise NotFound(f"No active token {token_id}.")
    await audit.record(session, principal, "token.revoke", "access_token", str(token_id))
    return Response(status_code=204)
