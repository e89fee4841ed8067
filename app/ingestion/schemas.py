"""Shapes of an import summary shared by every kind of batch (each kind adds its own rows)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.ingestion.outcomes import ImportStatus


class FieldMessage(BaseModel):
    field: str
    code: str
    message: str


class ImportCounts(BaseModel):
    created: int
    revised: int
    unchanged: int
    rejected: int
    skipped: int = Field(description="valid rows not stored because the atomic batch failed")


class ImportSummaryBase(BaseModel):
    """What every import summary starts with; a kind adds `results`, one per row."""

    status: ImportStatus
    dry_run: bool
    atomic: bool
    counts: ImportCounts
