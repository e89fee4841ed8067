"""Request and answer bodies of people and grants."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field


class PersonCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "issuer": "https://sso.example.org/realms/esms",
                    "subject": "grades-bretagne-dashboards",
                    "kind": "client",
                }
            ]
        }
    )

    issuer: str = Field(min_length=1, max_length=500, description="a configured provider")
    subject: str = Field(
        min_length=1, max_length=255, description="the `sub` its tokens carry (a client: its id)"
    )
    kind: Literal["person", "client"] = "person"
    email: str | None = Field(default=None, max_length=320)
    name: str | None = Field(default=None, max_length=200)


class GrantCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"role": "grades", "region": "53"}]})

    role: Literal["vendor", "ars", "grades", "national"]
    vendor_siren: str | None = Field(default=None, max_length=9)
    region: str | None = Field(default=None, max_length=2)


class GrantRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    role: str
    vendor_siren: str | None
    region: str | None = Field(validation_alias=AliasChoices("region_code", "region"))
    granted_at: datetime
    granted_by: str
    withdrawn_at: datetime | None
    withdrawn_by: str | None


class PersonRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    issuer: str
    subject: str
    kind: str
    email: str | None
    name: str | None
    organisation: str | None
    created_at: datetime
    last_sign_in_at: datetime | None
    grant: GrantRead | None = Field(default=None, description="the grant in force, if any")


class PersonDetail(PersonRead):
    grants: list[GrantRead] = Field(description="every grant, newest first, withdrawn included")


class Me(BaseModel):
    role: str
    vendor_siren: str | None
    region: str | None
    token_id: int | None
    person: PersonRead | None
