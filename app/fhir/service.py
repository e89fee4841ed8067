"""FHIR Bundles of MeasureReports through the ingestion core, and stored figures read back.

A report becomes the extract row that `POST /api/v1/extracts` would receive and goes
through the same core (app.ingestion.ingest, kind EXTRACTS): revisions, "unchanged", the first
window, frozen periods, the audit trail and the sender's scope are the same. `transaction`
is the core's atomic mode (all or nothing); `batch` gives each entry its own outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.batches import collector_paused, parse_json
from app.campaigns import current_campaign
from app.clock import Month
from app.config import get_settings
from app.errors import DomainError, NotFound, TooLarge
from app.extracts.ingestion import EXTRACTS
from app.fhir import repository
from app.fhir.mapping import Mapped, StoredReport, report_id, report_of, report_to_row
from app.fhir.measures import Indicator, Urls
from app.fhir.outcome import Issue, operation_outcome
from app.fhir.validation import (
    FastBundle,
    bundle_issues,
    decode_fast,
    fits_report,
    loose,
    report_issues,
)
from app.fields import FieldError
from app.ingestion import BatchOptions, ingest

_STATUS = {
    "created": "201 Created",
    "revised": "200 OK",
    "unchanged": "200 OK",
    "skipped": "200 OK",
}
_MESSAGES = {
    "created": "stored as the first revision of this establishment and period",
    "revised": "stored as a new revision of this establishment and period",
    "unchanged": "the same counts as the latest revision: nothing stored",
}


class FhirRefused(DomainError):
    """A request refused as a whole, with the OperationOutcome that says why (the session
    is rolled back: nothing of it is stored)."""

    def __init__(self, status: int, issues: list[Issue], urls: Urls, detail: str):
        super().__init__(detail, outcome=operation_outcome(issues, urls))
        self.status = status
        self.title = {400: "Bad request", 404: "Not found", 409: "Conflict"}.get(
            status, "Invalid request"
        )
        self.code = "fhir_refused"


def urls() -> Urls:
    return Urls(get_settings().public_url)


def _version() -> str:
    return str(current_campaign().year)


def _request_issues(method: Any, url: Any, at: str) -> list[Issue]:
    if method in ("POST", "PUT") and isinstance(url, str) and url.startswith("MeasureReport"):
        return []
    return [
        Issue(
            "error",
            "required",
            "each entry carries request {method: POST, url: MeasureReport}",
            (f"{at}.request",),
        )
    ]


def _read_fast(bundle: FastBundle, links: Urls, version: str) -> list[Mapped]:
    """The entries of a Bundle of the plain shape (checked as a whole when decoded)."""
    mapped = []
    for i, entry in enumerate(bundle.entry or ()):
        at = f"Bundle.entry[{i}]"
        request = entry.request
        one = report_to_row(entry.resource, f"{at}.resource", links, version)
        early = _request_issues(request and request.method, request and request.url, at)
        mapped.append(Mapped(None, early + one.issues, one.at, one.sources) if early else one)
    return mapped


def _read_checked(entries: list[Any], links: Urls, version: str) -> list[Mapped]:
    """The entries of any other Bundle, each report checked by the models first (a report
    they refuse is refused with what they say)."""
    mapped = []
    for i, entry in enumerate(entries):
        at = f"Bundle.entry[{i}]"
        resource = entry.get("resource")
        request = entry.get("request") or {}
        early = _request_issues(request.get("method"), request.get("url"), at)
        early += report_issues(resource, f"{at}.resource")
        if early:
            mapped.append(Mapped(None, early, f"{at}.resource"))
            continue
        report = fits_report(resource) or loose(resource) if isinstance(resource, dict) else None
        mapped.append(report_to_row(report, f"{at}.resource", links, version))
    return mapped


def _outcome_status(issues: Sequence[Issue]) -> int:
    errors = [i for i in issues if i.severity == "error"]
    # As everywhere in the API, an establishment out of the caller's scope is not found.
    if errors and all(i.code in ("unknown_finess", "not_covered") for i in errors):
        return 404
    return 422


@dataclass(slots=True)
class _Entry:
    mapped: Mapped
    outcome: str = "rejected"
    revision: int | None = None
    issues: tuple[Issue, ...] = ()


async def push(
    session: AsyncSession,
    principal: Principal,
    body: bytes,
) -> dict[str, Any]:
    """Store the MeasureReports of a batch or transaction Bundle (its JSON body); the
    response Bundle."""
    links = urls()
    version = _version()
    with collector_paused():
        fast = decode_fast(body)
    if fast is not None:
        kind, count = fast.type, len(fast.entry or ())
    else:
        with collector_paused():
            document = parse_json(body)  # strict, as every JSON body of the API
        issues = bundle_issues(document)
        if issues:
            raise FhirRefused(400, issues, links, "The Bundle does not match FHIR R4.")
        kind, count = document.get("type"), len(document.get("entry") or ())
    if kind not in ("batch", "transaction"):
        raise FhirRefused(
            422,
            [
                Issue(
                    "error",
                    "wrong_type",
                    f"POST a Bundle of type batch or transaction, got {kind!r}",
                    ("Bundle.type",),
                )
            ],
            links,
            "Only batch and transaction Bundles are accepted.",
        )
    limit = get_settings().max_batch_rows
    if count > limit:
        raise TooLarge(
            f"A Bundle holds at most {limit} entries; this one has {count}.",
            [FieldError("Bundle.entry", "too_large", f"at most {limit} entries")],
        )
    with collector_paused():
        mapped = (
            _read_fast(fast, links, version)
            if fast is not None
            else _read_checked(document.get("entry") or [], links, version)
        )
    entries = [_Entry(m, issues=tuple(m.issues)) for m in mapped]

    transaction = kind == "transaction"
    sent = [e for e in entries if e.mapped.row is not None]
    refused_early = len(sent) < len(entries)
    if sent:
        summary = await ingest(
            session,
            principal,
            [e.mapped.row for e in sent],
            # A transaction with a refused report stores nothing: the others are only
            # checked, so that the answer lists every problem at once.
            BatchOptions(dry_run=transaction and refused_early, atomic=transaction),
            EXTRACTS,
            payload=body,
        )
        for entry, result in zip(sent, summary["results"], strict=True):
            entry.outcome, entry.revision = result["outcome"], result["revision"]
            entry.issues = (
                *entry.mapped.issues_of(result["errors"], "error"),
                *entry.mapped.issues_of(result["warnings"], "warning"),
            )
    if transaction and any(e.outcome == "rejected" for e in entries):
        issues = [i for e in entries if e.outcome == "rejected" for i in e.issues]
        raise FhirRefused(
            _outcome_status(issues),
            issues,
            links,
            "The transaction was refused: nothing was stored.",
        )
    return {
        "resourceType": "Bundle",
        "type": "transaction-response" if transaction else "batch-response",
        "entry": [_response(e, links) for e in entries],
    }


@lru_cache(maxsize=16)
def _plain_outcome(said: Issue, links: Urls) -> dict[str, Any]:
    return operation_outcome([said], links)


def _response(entry: _Entry, links: Urls) -> dict[str, Any]:
    row = entry.mapped.row
    if entry.outcome == "rejected" or row is None:
        return {
            "response": {
                "status": "404 Not Found"
                if _outcome_status(entry.issues) == 404
                else "422 Unprocessable Entity",
                "outcome": operation_outcome(entry.issues, links),
            }
        }
    said = Issue("information", entry.outcome, _MESSAGES.get(entry.outcome, entry.outcome), ())
    outcome = (
        operation_outcome([said, *entry.issues], links)
        if entry.issues
        else _plain_outcome(said, links)  # most entries: one of three, shared
    )
    logical = report_id(row["finess"], Month.parse(row["period_start"]).first_day)
    response: dict[str, Any] = {
        "status": _STATUS[entry.outcome],
        "outcome": outcome,
    }
    if entry.revision is not None:
        response["location"] = f"MeasureReport/{logical}/_history/{entry.revision}"
        response["etag"] = f'W/"{entry.revision}"'
    return {"response": response}


async def search(
    session: AsyncSession,
    principal: Principal,
    reporters: list[str],
    start: date | None,
    end: date | None,
    measure: Indicator | None,
) -> list[dict[str, Any]]:
    """The MeasureReports of these establishments (latest revisions), oldest period first;
    an establishment the caller may not see is not found."""
    names = await repository.visible_names(session, principal, reporters)
    missing = [f for f in reporters if f not in names]
    if missing:
        raise NotFound(
            f"Establishment {missing[0]} not found.",
            [FieldError("reporter", "not_found", f"no establishment {missing[0]}")],
        )
    links = urls()
    targets = current_campaign().targets
    stored: list[StoredReport] = await repository.latest_reports(session, names, start, end)
    return [report_of(s, links, targets, measure) for s in stored]
