"""Request and response shapes of the establishment referential."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from app.referential.models import ImportStatus


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
    closed_on: date | None = Field(
        default=None,
        description="closing date from FINESS (FINESS+ dateFermeture); null while open",
    )


class ImportProgress(BaseModel):
    bytes_read: int = Field(description="bytes of the file read so far")
    size_bytes: int
    percent: float = Field(description="share of the file read, 0–100")
    rows_read: int = Field(description="structures read so far")


class ImportRowError(BaseModel):
    where: str | None = Field(
        description='the line ("line 12") or JSON path ("pmej[3].ege[1]") of the problem'
    )
    message: str


class ImportReportRead(BaseModel):
    format: str = Field(description="official | reexposition | finess-plus")
    encoding: str
    rows: int = Field(description="structures in the file")
    kept: int = Field(description="establishments of the programme among them")
    created: int
    updated: int
    unchanged: int
    closed: int = Field(description="establishments this import recorded as closed")
    skipped: dict[str, dict[str, int]] = Field(
        description="structures skipped, by reason (category, territory) and by category code "
        "or territory INSEE code"
    )
    refused: int = Field(description="rows that could not be used (see errors)")
    errors: list[ImportRowError] = Field(description="the first 100 refused rows")


class ImportJobRead(BaseModel):
    id: int
    status: ImportStatus
    file_name: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: ImportProgress
    report: ImportReportRead | None = Field(description="once succeeded")
    error: ImportRowError | None = Field(
        description="why the file was not imported (failed: the referential is unchanged)"
    )
