"""MeasureReport <-> the counts of a usage extract, and the OperationOutcome of their errors.

A vendor's report is one establishment (its FINESS, `reporter.identifier`) and one
collection period (`period`, whole months), with one group per indicator of the composite
measure (app.fhir.measures). The five rates share counts: the MS Santé and DMP denominators
are both the eligible persons, and the active files are the numerator of active_files_rate
and the denominator of care_project_rate and agenda_rate. So the seven required counts of an
extract come out of the five groups only when the groups that share a count agree; when they
do not, the report is refused naming both groups and both values. The optional counts are
two cohort groups (their initial population). `measureScore` is not read: the service
computes it again from the counts.

Every problem names the element at fault as a FHIRPath expression from the Bundle
(`Bundle.entry[3].resource.group[1].population[0].count`); the ingestion core's errors, which
name a field of the extract, are sent back to every element that field came from. Pure: no
HTTP, no database.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

from app.clock import PARIS, Month
from app.fhir.measures import (
    BY_CODE,
    BY_MEASURE_ID,
    COUNT_POPULATION,
    INDICATORS,
    MEASURE_POPULATION,
    UCUM,
    Indicator,
    Urls,
)
from app.fields import FieldError
from app.indicators.rules import Ratio, display, meets

FINESS_SYSTEMS = ("https://finess.esante.gouv.fr", "http://finess.sante.gouv.fr")
# Identifiant national de structure (FR Core): "1" followed by the FINESS.
NATIONAL_STRUCTURE = "urn:oid:1.2.250.1.71.4.2.2"

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


@dataclass(slots=True)
class Mapped:
    """A report read as an extract row (None when the report itself is refused), the
    problems found, and where each field of the row came from (for the core's errors)."""

    row: dict[str, Any] | None
    issues: list[Issue]
    places: dict[str, list[str]] = field(default_factory=dict)

    def issues_of(
        self, errors: Iterable[FieldError | Mapping[str, str]], severity: str
    ) -> list[Issue]:
        """The ingestion core's errors or warnings on this row (FieldError, or as in its
        summary), each placed at every element its field came from."""
        fallback = self.places.get("extract", [])
        issues = []
        for e in errors:
            field_, code, message = (
                (e.field, e.code, e.message)
                if isinstance(e, FieldError)
                else (e["field"], e["code"], e["message"])
            )
            issues.append(Issue(severity, code, message, tuple(self.places.get(field_, fallback))))
        return issues


def _error(code: str, message: str, *expressions: str) -> Issue:
    return Issue("error", code, message, expressions)


def _codes(concept: Any) -> list[tuple[Any, Any]]:
    """(system, code) of each coding of a CodeableConcept (as sent: anything may be wrong)."""
    if not isinstance(concept, Mapping):
        return []
    codings = concept.get("coding")
    if not isinstance(codings, list):
        return []
    return [(c.get("system"), c.get("code")) for c in codings if isinstance(c, Mapping)]


def _code_in(concept: Any, system: str) -> str | None:
    for s, c in _codes(concept):
        if s == system and isinstance(c, str):
            return c
    return None


def read_measure(canonical: Any, urls: Urls, version: str) -> Indicator | str | None:
    """The measure a canonical names: "composite", an Indicator, or None when unknown."""
    if not isinstance(canonical, str):
        return None
    url, _, wanted = canonical.partition("|")
    if wanted and wanted != version:
        return None
    if url == urls.composite:
        return "composite"
    prefix = urls.measure("")
    if url.startswith(prefix):
        return BY_MEASURE_ID.get(url[len(prefix) :])
    return None


def read_finess(identifier: Any, at: str) -> tuple[str | None, list[Issue]]:
    """The FINESS of `reporter.identifier` (FINESS system or national structure id)."""
    if not isinstance(identifier, Mapping) or identifier.get("value") in (None, ""):
        return None, [
            _error(
                "required",
                "reporter.identifier is required: the establishment's FINESS "
                f"(system {FINESS_SYSTEMS[0]})",
                f"{at}.identifier",
            )
        ]
    system, value = identifier.get("system"), identifier.get("value")
    if system in FINESS_SYSTEMS:
        return value, []
    if system == NATIONAL_STRUCTURE:
        if isinstance(value, str) and value.startswith("1"):
            return value[1:], []
        return None, [
            _error(
                "invalid_finess",
                f"a national structure identifier ({NATIONAL_STRUCTURE}) of an establishment "
                f"is 1 followed by its FINESS, got {value!r}",
                f"{at}.identifier.value",
            )
        ]
    return None, [
        _error(
            "wrong_identifier_system",
            f"the reporter is identified by its FINESS: system {FINESS_SYSTEMS[0]} (or "
            f"{FINESS_SYSTEMS[1]}), or {NATIONAL_STRUCTURE} with 1 + FINESS; got {system!r}",
            f"{at}.identifier.system",
        )
    ]


def _day(text: str) -> date | None:
    """The day a FHIR date or dateTime names, in Europe/Paris (None for a month or a year)."""
    if len(text) == 10:
        return date.fromisoformat(text)
    if "T" in text:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment.astimezone(PARIS).date()
    return None


def read_period_bound(value: Any, end: bool, at: str) -> tuple[str | None, list[Issue]]:
    """A period bound as the month it opens (start) or closes (end), written YYYY-MM.

    Collection periods are whole months: `2025-01` or `2025-01-01` opens January,
    `2025-03` or `2025-03-31` closes March (a dateTime is read in Europe/Paris).
    """
    name = "end" if end else "start"
    if not isinstance(value, str) or not value:
        return None, [_error("required", f"period.{name} is required", at)]
    try:
        if len(value) == 7:
            return str(Month.parse(value)), []
        day = _day(value)
    except ValueError:
        day = None
    if day is not None:
        last = calendar.monthrange(day.year, day.month)[1]
        if day.day == (last if end else 1):
            return str(Month.of(day)), []
        wanted = "the last day" if end else "the first day"
        return None, [
            _error(
                "not_whole_month",
                f"period.{name} must be {wanted} of a month (collection periods are whole "
                f"months, Europe/Paris), got {value!r}",
                at,
            )
        ]
    return None, [
        _error(
            "invalid_month",
            f"period.{name} must be a month (YYYY-MM) or a day (YYYY-MM-DD), got {value!r}",
            at,
        )
    ]


def report_to_row(resource: Any, at: str, urls: Urls, version: str) -> Mapped:
    """A vendor's MeasureReport as an extract row for the ingestion core.

    `at` is the report's path in the request (`Bundle.entry[3].resource`).
    """
    if not isinstance(resource, Mapping) or resource.get("resourceType") != "MeasureReport":
        kind = resource.get("resourceType") if isinstance(resource, Mapping) else None
        return Mapped(
            None,
            [
                _error(
                    "wrong_resource_type",
                    f"only MeasureReport resources are accepted here, got {kind!r}",
                    at,
                )
            ],
        )
    issues: list[Issue] = []
    if resource.get("status") != "complete":
        issues.append(
            _error(
                "wrong_status",
                f"only complete reports are stored (status complete), got "
                f"{resource.get('status')!r}",
                f"{at}.status",
            )
        )
    if resource.get("type") != "summary":
        issues.append(
            _error(
                "wrong_type",
                f"a report covers one establishment as a whole (type summary), got "
                f"{resource.get('type')!r}",
                f"{at}.type",
            )
        )
    measure = read_measure(resource.get("measure"), urls, version)
    if measure != "composite":
        hint = (
            f"{measure.measure_id} is one indicator; a report carries them all"
            if isinstance(measure, Indicator)
            else f"{resource.get('measure')!r} is not a measure of this service"
        )
        issues.append(
            _error(
                "unknown_measure",
                f"{hint}: measure must be {urls.composite} (version {version} optional)",
                f"{at}.measure",
            )
        )
    reporter = resource.get("reporter")
    finess, found = read_finess(
        reporter.get("identifier") if isinstance(reporter, Mapping) else None, f"{at}.reporter"
    )
    issues.extend(found)
    period = resource.get("period")
    period = period if isinstance(period, Mapping) else {}
    start, found = read_period_bound(period.get("start"), False, f"{at}.period.start")
    issues.extend(found)
    end, found = read_period_bound(period.get("end"), True, f"{at}.period.end")
    issues.extend(found)

    values, found = _group_counts(resource.get("group"), at, urls)
    issues.extend(found)
    counts, found = _agreed(values)
    issues.extend(found)
    places = {name: [where for _, where, _ in seen] for name, seen in values.items()}
    places |= {
        "finess": [f"{at}.reporter.identifier.value"],
        "period_start": [f"{at}.period.start"],
        "period_end": [f"{at}.period.end"],
        "extract": [at],
    }
    if issues:
        return Mapped(None, issues, places)
    return Mapped(
        {"finess": finess, "period_start": start, "period_end": end, **counts}, [], places
    )


# field -> [(value, expression, group code)], in the order of the report's groups
_Values = dict[str, list[tuple[Any, str, str]]]


def _group_counts(groups: Any, at: str, urls: Urls) -> tuple[_Values, list[Issue]]:
    """Every count the groups carry, with where it was found; problems of the groups."""
    values: _Values = {}
    issues: list[Issue] = []
    if not isinstance(groups, list):
        groups = []
    seen: dict[str, int] = {}
    for j, group in enumerate(groups):
        here = f"{at}.group[{j}]"
        code = _code_in(
            group.get("code") if isinstance(group, Mapping) else None, urls.indicator_system
        )
        indicator = BY_CODE.get(code) if code else None
        if indicator is None:
            issues.append(
                _error(
                    "unknown_indicator",
                    f"group.code must be one of {', '.join(BY_CODE)} in "
                    f"{urls.indicator_system}, got {code!r}",
                    f"{here}.code",
                )
            )
            continue
        if indicator.code in seen:
            issues.append(
                _error(
                    "duplicate_group",
                    f"{indicator.code} is already group[{seen[indicator.code]}]",
                    f"{here}.code",
                )
            )
            continue
        seen[indicator.code] = j
        wanted = (
            {"numerator": indicator.numerator, "denominator": indicator.denominator}
            if indicator.is_rate
            else {COUNT_POPULATION: indicator.numerator}
        )
        found: dict[str, int] = {}
        populations = group.get("population")
        for k, population in enumerate(populations if isinstance(populations, list) else []):
            there = f"{here}.population[{k}]"
            kind = _code_in(
                population.get("code") if isinstance(population, Mapping) else None,
                MEASURE_POPULATION,
            )
            if kind not in wanted:
                issues.append(
                    _error(
                        "unknown_population",
                        f"{indicator.code} has the populations {', '.join(wanted)} "
                        f"({MEASURE_POPULATION}), got {kind!r}",
                        f"{there}.code",
                    )
                )
                continue
            if kind in found:
                issues.append(
                    _error(
                        "duplicate_population",
                        f"{indicator.code} already has its {kind} at population[{found[kind]}]",
                        f"{there}.code",
                    )
                )
                continue
            found[kind] = k
            name = wanted[kind]
            assert name is not None
            values.setdefault(name, []).append(
                (population.get("count"), f"{there}.count", indicator.code)
            )
        for kind in wanted:
            if kind not in found:
                issues.append(
                    _error(
                        "required",
                        f"{indicator.code} needs its {kind} population",
                        f"{here}.population",
                    )
                )
    for indicator in INDICATORS:
        if indicator.is_rate and indicator.code not in seen:
            issues.append(
                _error(
                    "required",
                    f"the group of {indicator.code} is missing: a report carries the five "
                    "annexe 2 rates",
                    f"{at}.group",
                )
            )
    return values, issues


def _agreed(values: _Values) -> tuple[dict[str, Any], list[Issue]]:
    """One value per count; groups that carry the same count with different values are
    refused, naming the groups and their values."""
    counts: dict[str, Any] = {}
    issues: list[Issue] = []
    for name, seen in values.items():
        first = seen[0][0]
        if all(value == first and type(value) is type(first) for value, _, _ in seen[1:]):
            counts[name] = first
            continue
        described = " vs ".join(f"{code} {value!r}" for value, _, code in seen)
        issues.append(
            _error(
                "groups_disagree",
                f"the groups that share {name} disagree: {described}",
                *(where for _, where, _ in seen),
            )
        )
    return counts, issues


# --- Stored measurements as MeasureReport --------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredReport:
    """What is stored of one establishment-period (its latest revision)."""

    finess: str
    name: str | None
    period_start: date
    period_end: date
    revision: int
    received_at: datetime
    first_window: bool
    counts: Mapping[str, int | None]


def report_id(finess: str, start: date) -> str:
    """The logical id of an establishment-period: `750712184-2025-01`."""
    return f"{finess}-{start:%Y-%m}"


def _score(ratio: Ratio | None) -> dict[str, Any] | None:
    value = display(ratio)
    if value is None:
        return None
    return {"value": value, "unit": "%", "system": UCUM, "code": "%"}


def _population_out(code: str, count: int | None) -> dict[str, Any]:
    population: dict[str, Any] = {
        "code": {"coding": [{"system": MEASURE_POPULATION, "code": code}]}
    }
    if count is not None:
        population["count"] = count
    return population


def report_of(
    stored: StoredReport,
    urls: Urls,
    targets: Mapping[str, Decimal],
    measure: Indicator | None = None,
) -> dict[str, Any]:
    """The MeasureReport of a stored measurement: every group (the composite measure), or
    the group of one indicator; each rate with its score and whether it meets its target."""
    chosen = [measure] if measure is not None else list(INDICATORS)
    groups = []
    all_met = True
    for indicator in chosen:
        numerator = stored.counts.get(indicator.numerator or "")
        if not indicator.is_rate:
            if numerator is None:
                continue  # an optional count not sent
            groups.append(
                {
                    "code": _indicator_code(indicator, urls),
                    "population": [_population_out(COUNT_POPULATION, numerator)],
                    "measureScore": {"value": numerator},
                }
            )
            continue
        denominator = stored.counts.get(indicator.denominator or "")
        ratio = Ratio(numerator, denominator) if numerator is not None and denominator else None
        met = meets(ratio, targets[indicator.code])
        all_met = all_met and met
        group: dict[str, Any] = {
            "extension": [{"url": urls.extension("target-met"), "valueBoolean": met}],
            "code": _indicator_code(indicator, urls),
            "population": [
                _population_out("numerator", numerator),
                _population_out("denominator", denominator),
            ],
        }
        score = _score(ratio)
        if score is not None:
            group["measureScore"] = score
        groups.append(group)
    extensions = [{"url": urls.extension("first-window"), "valueBoolean": stored.first_window}]
    if measure is None:
        extensions.append({"url": urls.extension("meets-targets"), "valueBoolean": all_met})
    reporter: dict[str, Any] = {"identifier": {"system": FINESS_SYSTEMS[0], "value": stored.finess}}
    if stored.name:
        reporter["display"] = stored.name
    return {
        "resourceType": "MeasureReport",
        "id": report_id(stored.finess, stored.period_start),
        "meta": {
            "versionId": str(stored.revision),
            "lastUpdated": stored.received_at.isoformat(),
        },
        "extension": extensions,
        "status": "complete",
        "type": "summary",
        "measure": urls.measure(measure.measure_id) if measure else urls.composite,
        "date": stored.received_at.isoformat(),
        "reporter": reporter,
        "period": {
            "start": stored.period_start.isoformat(),
            "end": _last_day(stored.period_end).isoformat(),
        },
        "group": groups,
    }


def _indicator_code(indicator: Indicator, urls: Urls) -> dict[str, Any]:
    return {
        "coding": [
            {"system": urls.indicator_system, "code": indicator.code, "display": indicator.title}
        ]
    }


def _last_day(first: date) -> date:
    return first.replace(day=calendar.monthrange(first.year, first.month)[1])
