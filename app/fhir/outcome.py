"""OperationOutcome: the issues of a refused request or entry, each naming its element."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from app.fhir.measures import Urls

# The FHIR issue type of each error code of the ingestion core and of this module.
_ISSUE_TYPE = {
    "required": "required",
    "structure": "structure",
    "unknown_field": "structure",
    "not_an_object": "structure",
    "invalid_finess": "value",
    "not_integer": "value",
    "negative": "value",
    "too_large": "value",
    "invalid_month": "value",
    "end_before_start": "value",
    "not_whole_month": "value",
    "unknown_finess": "not-found",
    "not_covered": "not-found",
    "unknown_measure": "not-found",
    "unknown_indicator": "code-invalid",
    "unknown_population": "code-invalid",
    "wrong_identifier_system": "code-invalid",
    "wrong_status": "value",
    "wrong_type": "value",
    "wrong_resource_type": "not-supported",
    "duplicate_in_batch": "duplicate",
    "duplicate_group": "duplicate",
    "duplicate_population": "duplicate",
    "groups_disagree": "invariant",
    "period_locked": "conflict",
}


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome issue: what is wrong (our code, its message) and where."""

    severity: str  # error, warning, information
    code: str  # the service's code, as in the JSON API
    message: str
    expressions: tuple[str, ...]

    @property
    def issue_type(self) -> str:
        if self.severity == "information":
            return "informational"
        return _ISSUE_TYPE.get(self.code, "business-rule")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def dumps(resource: Any) -> bytes:
    """A resource as JSON: decimals (targets, scores) as JSON numbers."""
    return orjson.dumps(resource, default=_plain)


def issue_dict(issue: Issue, urls: Urls) -> dict[str, Any]:
    return {
        "severity": issue.severity,
        "code": issue.issue_type,
        "details": {
            "coding": [{"system": urls.issue_system, "code": issue.code}],
            "text": issue.message,
        },
        "expression": list(issue.expressions),
    }


def operation_outcome(issues: Iterable[Issue], urls: Urls) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [issue_dict(i, urls) for i in issues]}
