"""Structure checks of a received Bundle and its MeasureReports against the FHIR models.

The models are those of `fhir.resources` for R4B (see app.fhir): every element known, of
its type, every primitive matching its FHIR regex, the required elements present. Checking
one MeasureReport with them takes the best part of a millisecond, so 5 000 reports would
take seconds. Most reports have the same plain shape (the elements a vendor needs and
nothing else): `FastBundle` below describes that shape with the same element types and the
same primitive patterns, only stricter (no other element, no empty array, JSON integers
only), and msgspec checks a whole Bundle against it in a few milliseconds. A Bundle that fits
it is one the models accept (tests/unit/test_fhir_mapping.py checks a table of them with
both); any other Bundle, and any report that does not fit, goes through the models, which
name what is wrong. The counts' values, the codes, the identifier system and the period are
then checked by app.fhir.mapping and by the ingestion core, on either path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.measurereport import MeasureReport
from pydantic import ValidationError

from app.fhir.mapping import Issue

# The patterns of fhir_core's primitive types, applied as pydantic applies them (a search).
_CODE = r"^[^\s]+(\s[^\s]+)*$"
_STRING = r"[ \r\n\t\S]+"
_ID = r"^[A-Za-z0-9\-.]+$"
# A day or a month: a subset of FHIR's dateTime (the mapping checks that the day exists).
_DATE = r"^[1-9][0-9]{3}-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?$"

Code = Annotated[str, msgspec.Meta(pattern=_CODE)]
String = Annotated[str, msgspec.Meta(pattern=_STRING)]
Uri = Annotated[str, msgspec.Meta(min_length=1, pattern=r"^\S+$")]
Id = Annotated[str, msgspec.Meta(pattern=_ID, max_length=64)]
DateTime = Annotated[str, msgspec.Meta(pattern=_DATE)]
Integer = Annotated[int, msgspec.Meta(ge=-2_147_483_648, le=2_147_483_647)]
_UNSET: Any = msgspec.UNSET


class _Strict(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    pass


class FastCoding(_Strict):
    system: Uri = _UNSET
    code: Code = _UNSET
    display: String = _UNSET


class FastConcept(_Strict):
    coding: Annotated[list[FastCoding], msgspec.Meta(min_length=1)] = _UNSET
    text: String = _UNSET


class FastQuantity(_Strict):
    value: int | float = _UNSET
    unit: String = _UNSET
    system: Uri = _UNSET
    code: Code = _UNSET


class FastPopulation(_Strict):
    code: FastConcept = _UNSET
    count: Integer = _UNSET


class FastGroup(_Strict):
    code: FastConcept = _UNSET
    population: Annotated[list[FastPopulation], msgspec.Meta(min_length=1)] = _UNSET
    measureScore: FastQuantity = _UNSET


class FastIdentifier(_Strict):
    system: Uri = _UNSET
    value: String = _UNSET


class FastReference(_Strict):
    identifier: FastIdentifier = _UNSET
    display: String = _UNSET


class FastPeriod(_Strict):
    start: DateTime = _UNSET
    end: DateTime = _UNSET


class FastMeasureReport(_Strict):
    resourceType: Literal["MeasureReport"]
    status: Code
    type: Code
    measure: Uri
    period: FastPeriod
    id: Id = _UNSET
    reporter: FastReference = _UNSET
    group: Annotated[list[FastGroup], msgspec.Meta(min_length=1)] = _UNSET


class FastRequest(_Strict):
    method: Code
    url: Uri


class FastEntry(_Strict):
    resource: FastMeasureReport
    request: FastRequest = _UNSET
    fullUrl: Uri = _UNSET


class FastBundle(_Strict):
    resourceType: Literal["Bundle"]
    type: Code
    id: Id = _UNSET
    entry: Annotated[list[FastEntry], msgspec.Meta(min_length=1)] = _UNSET


def fits_fast(document: Any) -> bool:
    """Whether a whole Bundle has the plain shape (then the models would accept it)."""
    try:
        msgspec.convert(document, FastBundle)
    except msgspec.ValidationError:
        return False
    return True


def _fits_report(resource: Any) -> bool:
    try:
        msgspec.convert(resource, FastMeasureReport)
    except msgspec.ValidationError:
        return False
    return True


def _path(at: str, loc: tuple[Any, ...]) -> str:
    path = at
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _issues(exc: ValidationError, at: str) -> list[Issue]:
    return [
        Issue("error", "structure", f"{error['msg']} (FHIR R4)", (_path(at, error["loc"]),))
        for error in exc.errors(include_url=False)
    ]


def bundle_issues(document: Any) -> list[Issue]:
    """What is wrong with a Bundle apart from its entries' resources (then nothing is read)."""
    if not isinstance(document, Mapping) or document.get("resourceType") != "Bundle":
        kind = document.get("resourceType") if isinstance(document, Mapping) else None
        return [
            Issue(
                "error",
                "wrong_resource_type",
                f"POST a Bundle (type batch or transaction) to the FHIR base, got {kind!r}",
                ("Bundle",),
            )
        ]
    entries = document.get("entry")
    shell = dict(document)
    if isinstance(entries, list):
        shell["entry"] = [
            {k: v for k, v in e.items() if k != "resource"} if isinstance(e, Mapping) else e
            for e in entries
        ]
    try:
        Bundle.model_validate(shell)
    except ValidationError as exc:
        return _issues(exc, "Bundle")
    return []


def report_issues(resource: Any, at: str) -> list[Issue]:
    """What the models find wrong with one entry's MeasureReport (another resource type is
    the mapping's to refuse)."""
    if not isinstance(resource, Mapping) or resource.get("resourceType") != "MeasureReport":
        return []
    if _fits_report(resource):
        return []
    try:
        MeasureReport.model_validate(resource)
    except ValidationError as exc:
        return _issues(exc, at)
    return []
