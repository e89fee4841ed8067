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
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

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
from app.fhir.outcome import Issue
from app.fhir.validation import loose
from app.fields import FieldError
from app.indicators.rules import RATES, Ratio, display, meets

FINESS_SYSTEMS = ("https://finess.esante.gouv.fr", "http://finess.sante.gouv.fr")
# Identifiant national de structure (FR Core): "1" followed by the FINESS.
NATIONAL_STRUCTURE = "urn:oid:1.2.250.1.71.4.2.2"

# field -> [(value, group index, population index, indicator code)], in the report's order
_Sources = dict[str, list[tuple[Any, int, int, str]]]


@dataclass(slots=True)
class Mapped:
    """A report read as an extract row (None when the report itself is refused), the
    problems found, and where each count came from (for the core's errors)."""

    row: dict[str, Any] | None
    issues: list[Issue]
    at: str = ""
    sources: _Sources | None = None

    def places(self, field_: str) -> tuple[str, ...]:
        """The elements a field of the extract row came from (FHIRPath from the Bundle)."""
        at = self.at
        if field_ == "finess":
            return (f"{at}.reporter.identifier.value",)
        if field_ in ("period_start", "period_end"):
            return (f"{at}.period.{field_.removeprefix('period_')}",)
        if self.sources and field_ in self.sources:
            return tuple(
                f"{at}.group[{j}].population[{k}].count" for _, j, k, _ in self.sources[field_]
            )
        return (at,)

    def issues_of(
        self, errors: Iterable[FieldError | Mapping[str, str]], severity: str
    ) -> list[Issue]:
        """The ingestion core's errors or warnings on this row (FieldError, or as in its
        summary), each placed at every element its field came from."""
        issues = []
        for e in errors:
            field_, code, message = (
                (e.field, e.code, e.message)
                if isinstance(e, FieldError)
                else (e["field"], e["code"], e["message"])
            )
            issues.append(Issue(severity, code, message, self.places(field_)))
        return issues


def _error(code: str, message: str, *expressions: str) -> Issue:
    return Issue("error", code, message, expressions)


def _code_in(concept: Any, system: str) -> Any:
    """The code of a CodeableConcept's coding in `system` (the first one), else None."""
    if concept is None:
        return None
    for coding in concept.coding or ():
        if coding.system == system:
            return coding.code
    return None


@lru_cache(maxsize=256)
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
    value = identifier.value if identifier is not None else None
    if value is None or value == "":
        return None, [
            _error(
                "required",
                "reporter.identifier is required: the establishment's FINESS "
                f"(system {FINESS_SYSTEMS[0]})",
                f"{at}.identifier",
            )
        ]
    system = identifier.system
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


@lru_cache(maxsize=1024)
def _bound(value: str, end: bool) -> tuple[str | None, str | None]:
    """(YYYY-MM, None) for a bound that opens (or closes) a month, else (None, error code)."""
    try:
        if len(value) == 7:
            return str(Month.parse(value)), None
        day = _day(value)
    except ValueError:
        day = None
    if day is None:
        return None, "invalid_month"
    last = calendar.monthrange(day.year, day.month)[1]
    if day.day == (last if end else 1):
        return str(Month.of(day)), None
    return None, "not_whole_month"


def read_period_bound(value: Any, end: bool, at: str) -> tuple[str | None, list[Issue]]:
    """A period bound as the month it opens (start) or closes (end), written YYYY-MM.

    Collection periods are whole months: `2025-01` or `2025-01-01` opens January,
    `2025-03` or `2025-03-31` closes March (a dateTime is read in Europe/Paris).
    """
    name = "end" if end else "start"
    if not isinstance(value, str) or not value:
        return None, [_error("required", f"period.{name} is required", at)]
    month, problem = _bound(value, end)
    if problem is None:
        return month, []
    if problem == "not_whole_month":
        wanted = "the last day" if end else "the first day"
        message = (
            f"period.{name} must be {wanted} of a month (collection periods are whole "
            f"months, Europe/Paris), got {value!r}"
        )
    else:
        message = f"period.{name} must be a month (YYYY-MM) or a day (YYYY-MM-DD), got {value!r}"
    return None, [_error(problem, message, at)]


def report_to_row(resource: Any, at: str, urls: Urls, version: str) -> Mapped:
    """A vendor's MeasureReport as an extract row for the ingestion core.

    `resource` is a report decoded by app.fhir.validation (or JSON objects, read the same
    way); `at` is its path in the request (`Bundle.entry[3].resource`).
    """
    if isinstance(resource, Mapping):
        resource = loose(resource)
    if resource is None or resource.resourceType != "MeasureReport":
        kind = getattr(resource, "resourceType", None)
        return Mapped(
            None,
            [
                _error(
                    "wrong_resource_type",
                    f"only MeasureReport resources are accepted here, got {kind!r}",
                    at,
                )
            ],
            at,
        )
    issues: list[Issue] = []
    if resource.status != "complete":
        issues.append(
            _error(
                "wrong_status",
                f"only complete reports are stored (status complete), got {resource.status!r}",
                f"{at}.status",
            )
        )
    if resource.type != "summary":
        issues.append(
            _error(
                "wrong_type",
                f"a report covers one establishment as a whole (type summary), got "
                f"{resource.type!r}",
                f"{at}.type",
            )
        )
    measure = read_measure(resource.measure, urls, version)
    if measure != "composite":
        hint = (
            f"{measure.measure_id} is one indicator; a report carries them all"
            if isinstance(measure, Indicator)
            else f"{resource.measure!r} is not a measure of this service"
        )
        issues.append(
            _error(
                "unknown_measure",
                f"{hint}: measure must be {urls.composite} (version {version} optional)",
                f"{at}.measure",
            )
        )
    reporter = resource.reporter
    finess, found = read_finess(
        reporter.identifier if reporter is not None else None, f"{at}.reporter"
    )
    issues.extend(found)
    period = resource.period
    start, found = read_period_bound(period.start if period else None, False, f"{at}.period.start")
    issues.extend(found)
    end, found = read_period_bound(period.end if period else None, True, f"{at}.period.end")
    issues.extend(found)

    sources, found = _group_counts(resource.group, at, urls)
    issues.extend(found)
    counts, found = _agreed(sources, at)
    issues.extend(found)
    if issues:
        return Mapped(None, issues, at, sources)
    row = {"finess": finess, "period_start": start, "period_end": end}
    row.update(counts)
    return Mapped(row, issues, at, sources)


_RATE_POPULATIONS = ("numerator", "denominator")
_COUNT_POPULATIONS = (COUNT_POPULATION,)


def _group_counts(groups: Any, at: str, urls: Urls) -> tuple[_Sources, list[Issue]]:
    """Every count the groups carry, with where it was found; problems of the groups."""
    sources: _Sources = {}
    issues: list[Issue] = []
    seen: dict[str, int] = {}
    system = urls.indicator_system
    for j, group in enumerate(groups or ()):
        code = _code_in(group.code, system)
        indicator = BY_CODE.get(code) if isinstance(code, str) else None
        if indicator is None:
            issues.append(
                _error(
                    "unknown_indicator",
                    f"group.code must be one of {', '.join(BY_CODE)} in {system}, got {code!r}",
                    f"{at}.group[{j}].code",
                )
            )
            continue
        if indicator.code in seen:
            issues.append(
                _error(
                    "duplicate_group",
                    f"{indicator.code} is already group[{seen[indicator.code]}]",
                    f"{at}.group[{j}].code",
                )
            )
            continue
        seen[indicator.code] = j
        kinds: tuple[str, ...]
        fields: tuple[str | None, ...]
        if indicator.is_rate:
            kinds, fields = _RATE_POPULATIONS, (indicator.numerator, indicator.denominator)
        else:
            kinds, fields = _COUNT_POPULATIONS, (indicator.numerator,)
        found: dict[str, int] = {}
        for k, population in enumerate(group.population or ()):
            kind = _code_in(population.code, MEASURE_POPULATION)
            if kind not in kinds:
                issues.append(
                    _error(
                        "unknown_population",
                        f"{indicator.code} has the populations {', '.join(kinds)} "
                        f"({MEASURE_POPULATION}), got {kind!r}",
                        f"{at}.group[{j}].population[{k}].code",
                    )
                )
                continue
            if kind in found:
                issues.append(
                    _error(
                        "duplicate_population",
                        f"{indicator.code} already has its {kind} at population[{found[kind]}]",
                        f"{at}.group[{j}].population[{k}].code",
                    )
                )
                continue
            found[kind] = k
            name = fields[kinds.index(kind)]
            assert name is not None
            entry = (population.count, j, k, indicator.code)
            if name in sources:
                sources[name].append(entry)
            else:
                sources[name] = [entry]
        if len(found) < len(kinds):
            issues.extend(
                _error(
                    "required",
                    f"{indicator.code} needs its {kind} population",
                    f"{at}.group[{j}].population",
                )
                for kind in kinds
                if kind not in found
            )
    if len(seen) < len(RATES):
        issues.extend(
            _error(
                "required",
                f"the group of {indicator.code} is missing: a report carries the five "
                "annexe 2 rates",
                f"{at}.group",
            )
            for indicator in INDICATORS
            if indicator.is_rate and indicator.code not in seen
        )
    return sources, issues


def _agreed(sources: _Sources, at: str) -> tuple[dict[str, Any], list[Issue]]:
    """One value per count; groups that carry the same count with different values are
    refused, naming the groups and their values."""
    counts: dict[str, Any] = {}
    issues: list[Issue] = []
    for name, seen in sources.items():
        first = seen[0][0]
        if len(seen) == 1 or all(
            value == first and type(value) is type(first) for value, _, _, _ in seen[1:]
        ):
            counts[name] = first
            continue
        described = " vs ".join(f"{code} {value!r}" for value, _, _, code in seen)
        issues.append(
            _error(
                "groups_disagree",
                f"the groups that share {name} disagree: {described}",
                *(f"{at}.group[{j}].population[{k}].count" for _, j, k, _ in seen),
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
