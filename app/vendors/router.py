"""HTTP endpoints of DUI vendors (managed by the national team)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from stdnum.exceptions import ValidationError
from stdnum.fr import siren as stdnum_siren

from app.access.dependencies import AuthorisedRoute, CurrentPrincipal, requires
from app.access.principal import Role
from app.audit import service as audit
from app.db import SessionDep
from app.errors import Conflict, FieldError, Invalid, NotFound
from app.vendors.models import Vendor

router = APIRouter(prefix="/api/v1/vendors", tags=["vendors"], route_class=AuthorisedRoute)
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


class VendorCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"siren": "732829320", "name": "Éditeur DUI"}]}
    )

    siren: str = Field(examples=["732829320"], description="SIREN of the vendor (9 digits)")
    name: str = Field(min_length=1, max_length=300)


class VendorRead(BaseModel):
    siren: str
    name: str


def check_siren(raw: str) -> str:
    try:
        return stdnum_siren.validate(raw)
    except ValidationError as exc:
        message = f"{raw!r} is not a valid SIREN: {exc}"
        raise Invalid(message, [FieldError("siren", "invalid_siren", message)]) from exc


@router.post(
    "",
    dependencies=[requires(Role.NATIONAL)],
    status_code=201,
    response_model=VendorRead,
    summary="Register a DUI vendor",
    responses={401: _PROBLEM, 403: _PROBLEM, 409: _PROBLEM, 422: _PROBLEM},
)
async def create_vendor(
    payload: VendorCreate, session: SessionDep, principal: CurrentPrincipal
) -> VendorRead:
    siren = check_siren(payload.siren)
    if await session.get(Vendor, siren) is not None:
        raise Conflict(
            f"Vendor {siren} already exists.",
            [FieldError("siren", "already_exists", "already registered")],
        )
    session.add(Vendor(siren=siren, name=payload.name.strip()))
    await session.flush()
    await audit.record(
        session,
        principal,
        "vendor.create",
        "vendor",
        siren,
        payload=payload.model_dump(),
    )
    return VendorRead(siren=siren, name=payload.name.strip())


@router.get(
    "",
    response_model=list[VendorRead],
    summary="Vendors",
    responses={401: _PROBLEM},
    dependencies=[requires(*Role)],
)
async def list_vendors(session: SessionDep, principal: CurrentPrincipal) -> list[VendorRead]:
    query = select(Vendor).order_by(Vendor.name)
    if principal.role is Role.VENDOR:
        query = query.where(Vendor.siren == principal.vendor_siren)
    return [
        VendorRead(siren=v.siren, name=v.name) for v in (await session.execute(query)).scalars()
    ]


@router.get(
    "/{siren}",
    dependencies=[requires(*Role)],
    response_model=VendorRead,
    summary="One vendor",
    responses={401: _PROBLEM, 404: _PROBLEM},
)
async def get_vendor(siren: str, session: SessionDep, principal: CurrentPrincipal) -> VendorRead:
    vendor = await session.get(Vendor, siren)
    if vendor is None or (principal.role is Role.VENDOR and principal.vendor_siren != siren):
        raise NotFound(f"Vendor {siren} not found.")
    return VendorRead(siren=vendor.siren, name=vendor.name)
