"""Examples of the OpenAPI description, built by the mapping itself so that they stay true."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson

from app.fhir.mapping import StoredReport, report_of
from app.fhir.measures import MEASURE_POPULATION, Urls, capability_statement, measures
from app.fhir.outcome import Issue, dumps, operation_outcome

URLS = Urls("http://localhost:8000")
_TARGETS = {
    "mssante_rate": Decimal(70),
    "dmp_rate": Decimal(70),
    "active_files_rate": Decimal(90),
    "care_project_rate": Decimal(90),
    "agenda_rate": Decimal(90),
}


def _group(code: str, numerator: int, denominator: int) -> dict[str, Any]:
    return {
        "code": {"coding": [{"system": URLS.indicator_system, "code": code}]},
        "population": [
            {
                "code": {"coding": [{"system": MEASURE_POPULATION, "code": "numerator"}]},
                "count": numerator,
            },
            {
                "code": {"coding": [{"system": MEASURE_POPULATION, "code": "denominator"}]},
                "count": denominator,
            },
        ],
    }


REPORT = {
    "resourceType": "MeasureReport",
    "status": "complete",
    "type": "summary",
    "measure": URLS.composite,
    "reporter": {"identifier": {"system": "https://finess.esante.gouv.fr", "value": "750712184"}},
    "period": {"start": "2025-01-01", "end": "2025-03-31"},
    "group": [
        _group("mssante_rate", 60, 75),
        _group("dmp_rate", 55, 75),
        _group("active_files_rate", 78, 80),
        _group("care_project_rate", 72, 78),
        _group("agenda_rate", 74, 78),
    ],
}
BATCH = {
    "resourceType": "Bundle",
    "type": "batch",
    "entry": [{"resource": REPORT, "request": {"method": "POST", "url": "MeasureReport"}}],
}
BATCH_RESPONSE = {
    "resourceType": "Bundle",
    "type": "batch-response",
    "entry": [
        {
            "response": {
                "status": "201 Created",
                "location": "MeasureReport/750712184-2025-01/_history/1",
                "etag": 'W/"1"',
                "outcome": operation_outcome(
                    [
                        Issue(
                            "information",
                            "created",
                            "stored as the first revision of this establishment and period",
                            (),
                        )
                    ],
                    URLS,
                ),
            }
        }
    ],
}
REFUSED = operation_outcome(
    [
        Issue(
            "error",
            "groups_disagree",
            "the groups that share eligible_persons disagree: mssante_rate 75 vs dmp_rate 74",
            (
                "Bundle.entry[0].resource.group[0].population[1].count",
                "Bundle.entry[0].resource.group[1].population[1].count",
            ),
        )
    ],
    URLS,
)
_STORED = StoredReport(
    finess="750712184",
    name="EHPAD Les Tilleuls",
    period_start=date(2025, 1, 1),
    period_end=date(2025, 3, 1),
    revision=1,
    received_at=datetime(2025, 4, 2, 8, 30, tzinfo=UTC),
    first_window=True,
    counts={
        "accompanied_persons": 80,
        "eligible_persons": 75,
        "mssante_messages_sent": 60,
        "dmp_fed_persons": 55,
        "active_files": 78,
        "active_files_with_care_project": 72,
        "active_files_with_agenda_event": 74,
        "eprescriptions_imported": None,
        "eparcours_exchanges": None,
    },
)


def _plain(value: Any) -> Any:
    return orjson.loads(dumps(value))


MEASURE_REPORT = _plain(report_of(_STORED, URLS, _TARGETS))
SEARCHSET: dict[str, Any] = {
    "resourceType": "Bundle",
    "type": "searchset",
    "total": 1,
    "entry": [
        {
            "fullUrl": f"{URLS.fhir}/MeasureReport/750712184-2025-01",
            "resource": MEASURE_REPORT,
            "search": {"mode": "match"},
        }
    ],
}
_MEASURES = _plain(measures(URLS, _TARGETS, (3, 1), 2023))
MEASURE = _MEASURES[1]
MEASURE_SEARCH = {
    "resourceType": "Bundle",
    "type": "searchset",
    "total": len(_MEASURES),
    "entry": [{"fullUrl": m["url"], "resource": m} for m in _MEASURES[:2]],
}
CAPABILITY = _plain(capability_statement(URLS, "2025-04-01"))
