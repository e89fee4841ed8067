"""The annexe 2 indicators as FHIR Measure resources, and the CapabilityStatement.

Each indicator is a Measure of its own (`{base}/fhir/Measure/mssante-rate`, …), and one
more, `esms-numerique-usage`, gathers them as its groups: a vendor's MeasureReport refers to
it, one report per establishment and collection period with one group per indicator, so the
seven counts of an extract travel together. A group is named by its code in the service's
CodeSystem (`{base}/fhir/CodeSystem/esms-indicator`), the indicator codes of the JSON API.
Pure: the base URL and the campaign come in as arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.indicators.rules import COUNTS, RATES

FHIR_VERSION = "4.0.1"
MEASURE_POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
MEASURE_SCORING = "http://terminology.hl7.org/CodeSystem/measure-scoring"
IMPROVEMENT = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
UCUM = "http://unitsofmeasure.org"
COMPOSITE_ID = "esms-numerique-usage"


@dataclass(frozen=True, slots=True)
class Indicator:
    """One annexe 2 indicator as FHIR sees it: a group, its populations and their counts."""

    code: str  # as in the JSON API: mssante_rate, …
    title: str
    numerator: str | None  # the count fields of an extract (None for the optional counts)
    denominator: str | None
    numerator_text: str
    denominator_text: str | None

    @property
    def measure_id(self) -> str:
        return self.code.replace("_", "-")

    @property
    def is_rate(self) -> bool:
        return self.code in RATES


# Texts of annexe 2 ("Mode de calcul"), instruction DGCS/DNS/CNSA/2023/13.
_ELIGIBLE = (
    "Nombre de personnes accompagnées pouvant bénéficier d'un projet d'accueil et d'accompagnement"
)
INDICATORS: tuple[Indicator, ...] = (
    Indicator(
        "mssante_rate",
        "Taux d'utilisation de la MS Santé",
        *RATES["mssante_rate"],
        "Nombre de messages envoyés via la MS Santé",
        _ELIGIBLE,
    ),
    Indicator(
        "dmp_rate",
        "Taux d'utilisation du DMP",
        *RATES["dmp_rate"],
        "Nombre de DMP alimentés avec au moins un document",
        _ELIGIBLE,
    ),
    Indicator(
        "active_files_rate",
        "Taux de dossiers actifs",
        *RATES["active_files_rate"],
        "Nombre de dossiers actifs",
        "Nombre de personnes accompagnées dans la structure",
    ),
    Indicator(
        "care_project_rate",
        "Taux de dossiers actifs avec un projet personnalisé",
        *RATES["care_project_rate"],
        "Nombre de dossiers actifs sur la période de recueil ET ayant un projet personnalisé "
        "en préparation ou actif",
        "Nombre de dossiers actifs",
    ),
    Indicator(
        "agenda_rate",
        "Taux de dossiers actifs ayant au moins un événement dans l'agenda",
        *RATES["agenda_rate"],
        "Nombre de dossiers actifs sur la période de recueil ET ayant au moins un événement "
        "d'agenda dans son DUI",
        "Nombre de dossiers actifs",
    ),
    Indicator(
        "eprescription_count",
        "Nombre de données échangées entre le DUI et l'outil e-prescription",
        COUNTS["eprescription_count"],
        None,
        "Nombre de fois dans le mois où une prescription électronique est importée dans la "
        "solution DUI",
        None,
    ),
    Indicator(
        "eparcours_count",
        "Nombre de données échangées entre une plateforme e-parcours et le dossier usager "
        "informatisé",
        COUNTS["eparcours_count"],
        None,
        "Nombre d'échanges réalisés via le cahier de liaison entre la solution DUI et la "
        "plateforme",
        None,
    ),
)
BY_CODE: dict[str, Indicator] = {i.code: i for i in INDICATORS}
BY_MEASURE_ID: dict[str, Indicator] = {i.measure_id: i for i in INDICATORS}
# The optional counts are cohorts: their one population is the initial population.
COUNT_POPULATION = "initial-population"


@dataclass(frozen=True, slots=True)
class Urls:
    """The canonical URLs of the service, all under its own base (ESMS_PUBLIC_URL)."""

    base: str
    fhir: str = field(init=False)  # the FHIR base, `{base}/fhir`
    composite: str = field(init=False)
    indicator_system: str = field(init=False)
    issue_system: str = field(init=False)  # the service's error and outcome codes

    def __post_init__(self) -> None:
        # Read for every report of a batch: written once.
        fhir = f"{self.base.rstrip('/')}/fhir"
        object.__setattr__(self, "fhir", fhir)
        object.__setattr__(self, "composite", f"{fhir}/Measure/{COMPOSITE_ID}")
        object.__setattr__(self, "indicator_system", f"{fhir}/CodeSystem/esms-indicator")
        object.__setattr__(self, "issue_system", f"{fhir}/CodeSystem/esms-issue")

    def measure(self, measure_id: str) -> str:
        return f"{self.fhir}/Measure/{measure_id}"

    def extension(self, name: str) -> str:
        return f"{self.fhir}/StructureDefinition/{name}"


def _description(indicator: Indicator, windows: tuple[int, int]) -> str:
    first, later = windows
    formula = (
        f"({indicator.numerator_text} / {indicator.denominator_text}) x 100"
        if indicator.denominator_text
        else indicator.numerator_text
    )
    return (
        f"Annexe 2 de l'instruction DGCS/DNS/CNSA/2023/13. Sur le mois écoulé mesuré à chaque "
        f"fin de mois, avec une période de {first} mois pour la première mesure (puis "
        f"{later} mois) : {formula}."
    )


def _population(code: str, text: str, field: str | None) -> dict[str, Any]:
    # The criteria (required in R4) name the count of POST /api/v1/extracts it is.
    return {
        "code": {"coding": [{"system": MEASURE_POPULATION, "code": code}]},
        "description": text,
        "criteria": {"language": "text/plain", "description": text, "expression": field},
    }


def _group(indicator: Indicator, urls: Urls, target: Decimal | None) -> dict[str, Any]:
    if indicator.is_rate:
        populations = [
            _population("numerator", indicator.numerator_text, indicator.numerator),
            _population("denominator", indicator.denominator_text or "", indicator.denominator),
        ]
    else:
        populations = [_population(COUNT_POPULATION, indicator.numerator_text, indicator.numerator)]
    group: dict[str, Any] = {
        "id": indicator.measure_id,
        "code": {
            "coding": [
                {
                    "system": urls.indicator_system,
                    "code": indicator.code,
                    "display": indicator.title,
                }
            ]
        },
        "description": indicator.title
        + (f" (cible : {target} %)" if target is not None else " (pas de valeur cible)"),
        "population": populations,
    }
    if target is not None:
        group["extension"] = [
            {
                "url": urls.extension("target"),
                "valueQuantity": {
                    "value": target,
                    "unit": "%",
                    "system": UCUM,
                    "code": "%",
                },
            }
        ]
    return group


def _measure(
    measure_id: str,
    title: str,
    description: str,
    scoring: str,
    groups: list[dict[str, Any]],
    urls: Urls,
    version: str,
    guidance: str,
) -> dict[str, Any]:
    return {
        "resourceType": "Measure",
        "id": measure_id,
        "url": urls.measure(measure_id),
        "version": version,
        "name": "".join(part.capitalize() for part in measure_id.split("-")),
        "title": title,
        "status": "active",
        "publisher": "ESMS Numérique usage monitoring",
        "description": description,
        "jurisdiction": [{"coding": [{"system": "urn:iso:std:iso:3166", "code": "FR"}]}],
        "scoring": {"coding": [{"system": MEASURE_SCORING, "code": scoring}]},
        "improvementNotation": {"coding": [{"system": IMPROVEMENT, "code": "increase"}]},
        "guidance": guidance,
        "group": groups,
    }


def measures(
    urls: Urls, targets: Mapping[str, Decimal], windows: tuple[int, int], year: int
) -> list[dict[str, Any]]:
    """The Measure resources: the composite one first, then one per indicator."""
    version = str(year)
    guidance = (
        "A rate whose denominator is 0 is not computable and does not meet its target. The "
        "exact ratio is compared with the target (69.99 % misses 70 %); measureScore is the "
        "percentage rounded half-up to one decimal. The MS Santé rate counts messages and may "
        "exceed 100 %."
    )
    composite = _measure(
        COMPOSITE_ID,
        "Cibles d'usage du programme ESMS Numérique (annexe 2)",
        "The five annexe 2 usage indicators and the two optional counts, one group each, "
        "for one establishment (FINESS ET) and one collection period: "
        + " ".join(f"{i.code}: {_description(i, windows)}" for i in INDICATORS if i.is_rate),
        "proportion",
        [_group(i, urls, targets.get(i.code)) for i in INDICATORS],
        urls,
        version,
        guidance + " Groups that share a count must carry the same value: the MS Santé and DMP "
        "denominators (eligible persons), and the active files, numerator of "
        "active_files_rate and denominator of care_project_rate and agenda_rate.",
    )
    single = [
        _measure(
            i.measure_id,
            i.title,
            _description(i, windows),
            "proportion" if i.is_rate else "cohort",
            [_group(i, urls, targets.get(i.code))],
            urls,
            version,
            guidance,
        )
        for i in INDICATORS
    ]
    return [composite, *single]


def capability_statement(urls: Urls, date: str) -> dict[str, Any]:
    """What the FHIR endpoint supports (`GET /fhir/metadata`)."""
    search = [
        {
            "name": "reporter",
            "type": "reference",
            "documentation": "The establishment: its FINESS, `system|value` of its identifier, "
            "or `Organization/{finess}`; several separated by commas. Required.",
        },
        {
            "name": "period",
            "type": "date",
            "documentation": "Collection periods overlapping the given dates (prefixes ge, "
            "le, gt, lt, eq; repeat for a range).",
        },
        {
            "name": "measure",
            "type": "reference",
            "documentation": "A Measure's canonical URL: the composite measure gives every "
            "group, an indicator's measure only its own.",
        },
    ]
    return {
        "resourceType": "CapabilityStatement",
        "id": "esms-usage",
        "url": f"{urls.fhir}/metadata",
        "name": "EsmsUsage",
        "title": "ESMS Numérique usage monitoring, FHIR endpoint",
        "status": "active",
        "date": date,
        "publisher": "ESMS Numérique usage monitoring",
        "kind": "instance",
        "implementation": {
            "description": "The annexe 2 usage figures as MeasureReport",
            "url": urls.fhir,
        },
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Every call carries `Authorization: Bearer <token>`. A "
                "MeasureReport is stored as a usage extract, under the same rules as "
                "POST /api/v1/extracts (revisions, first window, frozen periods, "
                "Idempotency-Key, limits, audit, access).",
                "security": {
                    "description": "Bearer tokens of the service (vendor, ars, grades, "
                    "national); anything outside the caller's scope is not found."
                },
                "resource": [
                    {
                        "type": "Measure",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                    },
                    {
                        "type": "MeasureReport",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "versioning": "versioned",
                        "documentation": "Reports are stored by POST of a batch or "
                        "transaction Bundle to the FHIR base; the id of one is "
                        "{finess}-{YYYY-MM} (its establishment and first month).",
                        "searchParam": search,
                    },
                ],
                "interaction": [{"code": "batch"}, {"code": "transaction"}],
            }
        ],
    }
