"""Request and response shapes of the extracts API (documentation and responses)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.config import get_settings
from app.ingestion import Outcome
from app.ingestion.schemas import FieldMessage, ImportSummaryBase

MONTH = r"^[1-9]\d{3}-(0[1-9]|1[0-2])$"


class ExtractIn(BaseModel):
    """One establishment (FINESS ET) x one collection period, with the annexe 2 counts."""

    finess: str = Field(examples=["750712184"], description="FINESS géographique (ET)")
    period_start: str = Field(pattern=MONTH, examples=["2025-01"])
    period_end: str = Field(pattern=MONTH, examples=["2025-03"])
    accompanied_persons: int = Field(ge=0, description="personnes accompagnées (file active)")
    eligible_persons: int = Field(
        ge=0, description="personnes pouvant bénéficier d'un projet d'accueil et d'accompagnement"
    )
    mssante_messages_sent: int = Field(ge=0)
    dmp_fed_persons: int = Field(ge=0, description="DMP alimentés avec au moins un document")
    active_files: int = Field(ge=0, description="dossiers actifs")
    active_files_with_care_project: int = Field(
        ge=0, description="dossiers actifs avec un projet personnalisé"
    )
    active_files_with_agenda_event: int = Field(
        ge=0, description="dossiers actifs avec au moins un événement d'agenda"
    )
    eprescriptions_imported: int | None = Field(default=None, ge=0)
    eparcours_exchanges: int | None = Field(default=None, ge=0)


class ExtractBatch(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "extracts": [
                        {
                            "finess": "750712184",
                            "period_start": "2025-01",
                            "period_end": "2025-03",
                            "accompanied_persons": 80,
                            "eligible_persons": 75,
                            "mssante_messages_sent": 60,
                            "dmp_fed_persons": 55,
                            "active_files": 78,
                            "active_files_with_care_project": 72,
                            "active_files_with_agenda_event": 74,
                        }
                    ]
                }
            ]
        }
    )

    extracts: list[ExtractIn] = Field(max_length=get_settings().max_batch_rows)


class RowResult(BaseModel):
    index: int
    finess: str | None
    period_start: str | None
    period_end: str | None
    outcome: Outcome
    revision: int | None
    errors: list[FieldMessage]
    warnings: list[FieldMessage]


class ImportSummary(ImportSummaryBase):
    results: list[RowResult]


class WithdrawalIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "finess": "750712184",
                    "period_start": "2025-04",
                    "period_end": "2025-04",
                    "reason": "sent for the wrong establishment",
                }
            ]
        }
    )

    finess: str
    period_start: str = Field(pattern=MONTH)
    period_end: str = Field(pattern=MONTH)
    reason: str | None = Field(default=None, max_length=500)


class WithdrawalOut(BaseModel):
    finess: str
    period_start: str
    period_end: str
    revision: int
    withdrawn: bool = True
