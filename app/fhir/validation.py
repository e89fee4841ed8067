"""Structure checks of a received Bundle and its MeasureReports against the FHIR models.

The models are those of `fhir.resources` for R4B (see app.fhir): every element known, of
its type, every primitive matching its FHIR pattern, the required elements present.
Checking one MeasureReport with them takes about a millisecond, so a Bundle of 5 000 reports
would take five seconds or more. Most reports have the same plain shape (the elements a
vendor needs and nothing else): `FastBundle` describes it with the same element types and
primitive patterns, only stricter (no other element, no empty array, no null, JSON integers
only), and msgspec decodes a whole Bundle against it in one pass, at a few tens of
microseconds per report. A Bundle that fits it is one the models accept
(tests/test_fhir_mapping.py checks a table of them with both); any other Bundle goes through
the models, entry by entry, which name what is wrong. The values (codes, identifier system,
period, counts) are then checked by app.fhir.mapping and by the ingestion core, whichever
the path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.measurereport import MeasureReport
from pydantic import ValidationError

from app.batches import reject_duplicate_members
from app.fhir.outcome import Issue

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
# Absent elements read as None; a JSON null is still refused (FHIR has no null).
_ABSENT: Any = None


class _Strict(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    pass


class FastCoding(_Strict):
    system: Uri = _ABSENT
    code: Code = _ABSENT
    display: String = _ABSENT


class FastConcept(_Strict):
    coding: Annotated[list[FastCoding], msgspec.Meta(min_length=1)] = _ABSENT
    text: String = _ABSENT


class FastQuantity(_Strict):
    value: int | float = _ABSENT
    unit: String = _ABSENT
    system: Uri = _ABSENT
    code: Code = _ABSENT


class FastPopulation(_Strict):
    code: FastConcept = _ABSENT
    count: Integer = _ABSENT


class FastGroup(_Strict):
    code: FastConcept = _ABSENT
    population: Annotated[list[FastPopulation], msgspec.Meta(min_length=1)] = _ABSENT
    measureScore: FastQuantity = _ABSENT


class FastIdentifier(_Strict):
    system: Uri = _ABSENT
    value: String = _ABSENT


class FastReference(_Strict):
    identifier: FastIdentifier = _ABSENT
    display: String = _ABSENT


class FastPeriod(_Strict):
    start: DateTime = _ABSENT
    end: DateTime = _ABSENT


class FastMeasureReport(_Strict):
    resourceType: Literal["MeasureReport"]
    status: Code
    type: Code
    measure: Uri
    period: FastPeriod
    id: Id = _ABSENT
    reporter: FastReference = _ABSENT
    group: Annotated[list[FastGroup], msgspec.Meta(min_length=1)] = _ABSENT


class FastRequest(_Strict):
    method: Code
    url: Uri


class FastEntry(_Strict):
    resource: FastMeasureReport
    request: FastRequest = _ABSENT
    fullUrl: Uri = _ABSENT


class FastBundle(_Strict):
    resourceType: Literal["Bundle"]
    type: Code
    id: Id = _ABSENT
    entry: Annotated[list[FastEntry], msgspec.Meta(min_length=1)] = _ABSENT


_FAST = msgspec.json.Decoder(FastBundle)


def decode_fast(body: bytes) -> FastBundle | None:
    """The Bundle decoded in one pass when it has the plain shape (then the models would
    accept it), else None. A member named twice in one object is refused (400) as
    everywhere in the API, though the decoder itself would keep the last one."""
    try:
        bundle = _FAST.decode(body)
    except (msgspec.MsgspecError, ValueError, RecursionError):
        return None
    # Outside strings, a colon ends a member's name. Written back, the decoded Bundle has
    # every member it kept and the same strings (when the body has no \u escape, which could
    # write a colon): as many colons means that no member was dropped for being named twice.
    # Otherwise the body is read again, slowly, to say which one.
    if b"\\u" in body or body.count(b":") != msgspec.json.encode(bundle).count(b":"):
        reject_duplicate_members(body)
    return bundle


# The same elements, as read from a report the models accepted (anything else ignored):
# what app.fhir.mapping reads, whichever way the report came.


class _Loose(msgspec.Struct, gc=False):
    pass


class LooseCoding(_Loose):
    system: Any = None
    code: Any = None


class LooseConcept(_Loose):
    coding: list[LooseCoding] = []


class LoosePopulation(_Loose):
    code: LooseConcept | None = None
    count: Any = None


class LooseGroup(_Loose):
    code: LooseConcept | None = None
    population: list[LoosePopulation] = []


class LooseIdentifier(_Loose):
    system: Any = None
    value: Any = None


class LooseReference(_Loose):
    identifier: LooseIdentifier | None = None


class LoosePeriod(_Loose):
    start: Any = None
    end: Any = None


class LooseMeasureReport(_Loose):
    resourceType: Any = None
    status: Any = None
    type: Any = None
    measure: Any = None
    period: LoosePeriod | None = None
    reporter: LooseReference | None = None
    group: list[LooseGroup] = []


def loose(resource: Any) -> LooseMeasureReport | None:
    """A report given as JSON objects, read as the mapping reads it (None if its shape
    is not that of a MeasureReport at all)."""
    try:
        return msgspec.convert(resource, LooseMeasureReport, strict=False)
    except msgspec.ValidationError:
        return None


def fits_report(resource: Any) -> FastMeasureReport | None:
    try:
        return msgspec.convert(resource, FastMeasureReport)
    except msgspec.ValidationError:
        return None


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
    if fits_report(resource) is not None:
        return []
    try:
        MeasureReport.model_validate(resource)
    except ValidationError as exc:
        return _issues(exc, at)
    return []
