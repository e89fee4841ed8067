"""Request and response shapes of the establishment referential."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EstablishmentCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "finess": "750712184",
                    "name": "EHPAD Les Tilleuls",
                    "legal_entity_finess": "750712176",
                    "department": "75",
                    "category_code": "500",
                }
            ]
        }
    )

    finess: str = Field(examples=["750712184"], description="FINESS géographique (ET)")
    name: str = Field(min_length=1, max_length=300)
    legal_entity_finess: str = Field(description="FINESS juridique (EJ) of its manager")
    department: str = Field(examples=["75"], description="INSEE département code")
    category_code: str = Field(examples=["500"], pattern=r"^\d{3,4}$")
    category_label: str | None = Field(default=None, max_length=300)


class EstablishmentRead(BaseModel):
    finess: str
    name: str
    legal_entity_finess: str
    department: str
    region: str
    category_code: str | None
    category_label: str | None
    project_id: int | None = None
