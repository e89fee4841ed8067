"""MeasureReport <-> extract counts, without HTTP nor database: tables of reports, what they
become, what is refused and where, and what the FHIR R4B models say of our resources."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from decimal import Decimal

import orjson
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.measure import Measure
from fhir.resources.R4B.measurereport import MeasureReport
from fhir.resources.R4B.operationoutcome import OperationOutcome

from app.errors import DomainError
from app.fhir.mapping import StoredReport, report_of, report_to_row
from app.fhir.measures import BY_CODE, MEASURE_POPULATION, Urls, capability_statement, measures
from app.fhir.outcome import Issue, dumps, operation_outcome
from app.fhir.validation import decode_fast, report_issues
from app.fields import FieldError

URLS = Urls("https://esms.example.fr")
AT = "Bundle.entry[0].resource"
TARGETS = {
    "mssante_rate": Decimal(70),
    "dmp_rate": Decimal(70),
    "active_files_rate": Decimal(90),
    "care_project_rate": Decimal(90),
    "agenda_rate": Decimal(90),
}
COUNTS = {
    "accompanied_persons": 80,
    "eligible_persons": 75,
    "mssante_messages_sent": 60,
    "dmp_fed_persons": 55,
    "active_files": 78,
    "active_files_with_care_project": 72,
    "active_files_with_agenda_event": 74,
}


def group(code: str, *populations: tuple[str, int]) -> dict:
    return {
        "code": {"coding": [{"system": URLS.indicator_system, "code": code}]},
        "population": [
            {"code": {"coding": [{"system": MEASURE_POPULATION, "code": kind}]}, "count": n}
            for kind, n in populations
        ],
    }


def rate(code: str, numerator: int, denominator: int) -> dict:
    return group(code, ("numerator", numerator), ("denominator", denominator))


def report(c: dict | None = None, **changes) -> dict:
    c = {**COUNTS, **(c or {})}
    resource = {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "summary",
        "measure": URLS.composite,
        "reporter": {
            "identifier": {"system": "https://finess.esante.gouv.fr", "value": "750712184"}
        },
        "period": {"start": "2025-01-01", "end": "2025-03-31"},
        "group": [
            rate("mssante_rate", c["mssante_messages_sent"], c["eligible_persons"]),
            rate("dmp_rate", c["dmp_fed_persons"], c["eligible_persons"]),
            rate("active_files_rate", c["active_files"], c["accompanied_persons"]),
            rate("care_project_rate", c["active_files_with_care_project"], c["active_files"]),
            rate("agenda_rate", c["active_files_with_agenda_event"], c["active_files"]),
        ],
    }
    resource.update(changes)
    return resource


def errors_of(resource: dict) -> list[tuple[str, tuple[str, ...]]]:
    mapped = report_to_row(resource, AT, URLS, "2023")
    return [(i.code, i.expressions) for i in mapped.issues]


def test_the_five_groups_give_the_seven_counts_of_an_extract():
    mapped = report_to_row(report(), AT, URLS, "2023")
    assert mapped.issues == []
    assert mapped.row == {
        "finess": "750712184",
        "period_start": "2025-01",
        "period_end": "2025-03",
        **COUNTS,
    }


def test_optional_counts_are_cohort_groups():
    resource = report()
    resource["group"] += [
        group("eprescription_count", ("initial-population", 12)),
        group("eparcours_count", ("initial-population", 3)),
    ]
    row = report_to_row(resource, AT, URLS, "2023").row
    assert row["eprescriptions_imported"] == 12
    assert row["eparcours_exchanges"] == 3


G = f"{AT}.group"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # The MS Santé and DMP denominators are both the eligible persons.
        (
            lambda r: r["group"][1]["population"][1].update(count=74),
            [
                (
                    "groups_disagree",
                    (f"{G}[0].population[1].count", f"{G}[1].population[1].count"),
                )
            ],
        ),
        # Active files: numerator of one group, denominator of two others.
        (
            lambda r: r["group"][4]["population"][1].update(count=77),
            [
                (
                    "groups_disagree",
                    (
                        f"{G}[2].population[0].count",
                        f"{G}[3].population[1].count",
                        f"{G}[4].population[1].count",
                    ),
                )
            ],
        ),
        (
            lambda r: r.update(measure="https://esms.example.fr/fhir/Measure/other"),
            [("unknown_measure", (f"{AT}.measure",))],
        ),
        (
            lambda r: r.update(measure=URLS.measure("dmp-rate")),
            [("unknown_measure", (f"{AT}.measure",))],
        ),
        (
            lambda r: r.update(measure=URLS.composite + "|2019"),
            [("unknown_measure", (f"{AT}.measure",))],
        ),
        (
            lambda r: r["reporter"]["identifier"].update(system="urn:oid:1.2.250.1.71.4.2.1"),
            [("wrong_identifier_system", (f"{AT}.reporter.identifier.system",))],
        ),
        (
            lambda r: r.update(reporter={"reference": "Organization/1"}),
            [("required", (f"{AT}.reporter.identifier",))],
        ),
        (
            lambda r: r["period"].update(start="2025-01-15"),
            [("not_whole_month", (f"{AT}.period.start",))],
        ),
        (
            lambda r: r["period"].update(end="2025-03-30"),
            [("not_whole_month", (f"{AT}.period.end",))],
        ),
        (
            lambda r: r["period"].update(end="2025-02-30"),
            [("invalid_month", (f"{AT}.period.end",))],
        ),
        (lambda r: r.update(status="pending"), [("wrong_status", (f"{AT}.status",))]),
        (lambda r: r.update(type="individual"), [("wrong_type", (f"{AT}.type",))]),
        (lambda r: r["group"].pop(3), [("required", (f"{G}",))]),
        (
            lambda r: r["group"][0]["code"]["coding"][0].update(code="mssante"),
            [("unknown_indicator", (f"{G}[0].code",)), ("required", (f"{G}",))],
        ),
        (
            lambda r: r["group"].append(copy.deepcopy(r["group"][0])),
            [("duplicate_group", (f"{G}[5].code",))],
        ),
        (
            lambda r: r["group"][2]["population"][0]["code"]["coding"][0].update(
                code="initial-population"
            ),
            [
                ("unknown_population", (f"{G}[2].population[0].code",)),
                ("required", (f"{G}[2].population",)),
            ],
        ),
        (
            lambda r: r["group"][0]["population"].pop(0),
            [("required", (f"{G}[0].population",))],
        ),
    ],
)
def test_refusals_name_the_element_at_fault(change, expected):
    resource = report()
    change(resource)
    assert errors_of(resource) == expected


@pytest.mark.parametrize(
    ("identifier", "finess"),
    [
        ({"system": "https://finess.esante.gouv.fr", "value": "750712184"}, "750712184"),
        ({"system": "http://finess.sante.gouv.fr", "value": "750712184"}, "750712184"),
        ({"system": "urn:oid:1.2.250.1.71.4.2.2", "value": "1750712184"}, "750712184"),
    ],
)
def test_the_reporter_is_named_by_its_finess_in_any_accepted_system(identifier, finess):
    row = report_to_row(report(reporter={"identifier": identifier}), AT, URLS, "2023").row
    assert row["finess"] == finess


@pytest.mark.parametrize(
    ("start", "end", "months"),
    [
        ("2025-01", "2025-03", ("2025-01", "2025-03")),
        ("2025-01-01", "2025-03-31", ("2025-01", "2025-03")),
        # Midnight in Paris on 1 January is still 31 December in UTC.
        ("2024-12-31T23:00:00Z", "2025-03-31T23:59:59+02:00", ("2025-01", "2025-03")),
        ("2024-02-01", "2024-02-29", ("2024-02", "2024-02")),
    ],
)
def test_periods_are_whole_months_in_paris(start, end, months):
    row = report_to_row(report(period={"start": start, "end": end}), AT, URLS, "2023").row
    assert (row["period_start"], row["period_end"]) == months


def test_ingestion_errors_go_back_to_every_element_their_field_came_from():
    mapped = report_to_row(report(), AT, URLS, "2023")
    issues = mapped.issues_of(
        [
            FieldError("eligible_persons", "exceeds_accompanied_persons", "75 > 70"),
            {"field": "finess", "code": "not_covered", "message": "not yours"},
            {"field": "period_end", "code": "period_not_completed", "message": "not yet"},
        ],
        "error",
    )
    assert [(i.code, i.issue_type, i.expressions) for i in issues] == [
        (
            "exceeds_accompanied_persons",
            "business-rule",
            (f"{G}[0].population[1].count", f"{G}[1].population[1].count"),
        ),
        ("not_covered", "not-found", (f"{AT}.reporter.identifier.value",)),
        ("period_not_completed", "business-rule", (f"{AT}.period.end",)),
    ]


def stored(**counts) -> StoredReport:
    return StoredReport(
        "750712184",
        "EHPAD",
        date(2025, 4, 1),
        date(2025, 4, 1),
        3,
        datetime(2025, 5, 2, tzinfo=UTC),
        False,
        {**COUNTS, "eprescriptions_imported": None, "eparcours_exchanges": None, **counts},
    )


def scores(resource: dict) -> dict[str, tuple]:
    out = {}
    for g in resource["group"]:
        met = [e["valueBoolean"] for e in g.get("extension", []) if e["url"].endswith("met")]
        out[g["code"]["coding"][0]["code"]] = (
            g.get("measureScore", {}).get("value"),
            met[0] if met else None,
        )
    return out


def test_a_stored_measurement_reads_back_with_its_scores_and_targets():
    resource = report_of(stored(), URLS, TARGETS)
    assert resource["id"] == "750712184-2025-04"
    assert resource["meta"]["versionId"] == "3"
    assert resource["period"] == {"start": "2025-04-01", "end": "2025-04-30"}
    assert scores(resource) == {
        "mssante_rate": (Decimal("80.0"), True),  # 60 / 75
        "dmp_rate": (Decimal("73.3"), True),  # 55 / 75
        "active_files_rate": (Decimal("97.5"), True),  # 78 / 80
        "care_project_rate": (Decimal("92.3"), True),  # 72 / 78
        "agenda_rate": (Decimal("94.9"), True),  # 74 / 78
    }
    assert resource["extension"][1]["valueBoolean"] is True  # meets-targets
    # What is read back is a report the service takes in again, with the same counts.
    row = report_to_row(orjson.loads(dumps(resource)), AT, URLS, "2023").row
    assert row == {
        "finess": "750712184",
        "period_start": "2025-04",
        "period_end": "2025-04",
        **COUNTS,
    }


def test_rates_are_compared_exactly_and_a_zero_denominator_meets_nothing():
    # 6999 / 10000 = 69.99 %: shown 70.0, misses 70 %.
    near = report_of(
        stored(
            mssante_messages_sent=6999,
            eligible_persons=10000,
            dmp_fed_persons=7000,
            accompanied_persons=10000,
        ),
        URLS,
        TARGETS,
    )
    assert scores(near)["mssante_rate"] == (Decimal("70.0"), False)
    assert scores(near)["dmp_rate"] == (Decimal("70.0"), True)
    assert near["extension"][1]["valueBoolean"] is False
    empty = report_of(
        stored(active_files=0, active_files_with_care_project=0, active_files_with_agenda_event=0),
        URLS,
        TARGETS,
    )
    assert scores(empty)["care_project_rate"] == (None, False)


def test_one_indicator_measure_reads_back_its_own_group():
    resource = report_of(stored(), URLS, TARGETS, BY_CODE["dmp_rate"])
    assert resource["measure"] == URLS.measure("dmp-rate")
    assert list(scores(resource)) == ["dmp_rate"]


def test_what_the_service_produces_is_valid_fhir():
    resources = [
        (MeasureReport, report_of(stored(eprescriptions_imported=4), URLS, TARGETS)),
        (CapabilityStatement, capability_statement(URLS, "2025-05-01")),
        (
            OperationOutcome,
            operation_outcome([Issue("error", "groups_disagree", "x", (f"{G}[0]",))], URLS),
        ),
        *((Measure, m) for m in measures(URLS, TARGETS, (3, 1), 2023)),
    ]
    for model, resource in resources:
        model.model_validate(orjson.loads(dumps(resource)))


def bundle(*resources: dict) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": r, "request": {"method": "POST", "url": "MeasureReport"}}
            for r in resources
        ],
    }


def with_score(resource: dict) -> dict:
    resource["group"][0]["measureScore"] = {"value": 80.0, "unit": "%", "code": "%"}
    return resource


FITS = [
    report(),
    report(id="750712184-2025-01"),
    with_score(report()),
    report(period={"start": "2025-01", "end": "2025-03"}),
]
# Shapes that leave the fast path: the models decide (the first four are valid FHIR).
LEAVES = [
    report(meta={"versionId": "1"}),
    report(extension=[{"url": "https://x", "valueBoolean": True}]),
    report(period={"start": "2024-12-31T23:00:00Z", "end": "2025-03-31"}),
    report(date="2025-04-02"),
    report(status=" complete"),
    report(id="a_b"),
    report(group=[{"population": [{"count": True}]}]),
    report(group=[]),
    report(period={"start": "2025-13"}),
]


@pytest.mark.parametrize("resource", FITS)
def test_a_bundle_on_the_fast_path_is_one_the_models_accept(resource):
    document = bundle(resource)
    assert decode_fast(orjson.dumps(document)) is not None
    Bundle.model_validate(document)
    assert report_issues(resource, AT) == []


@pytest.mark.parametrize("resource", LEAVES)
def test_other_shapes_are_checked_by_the_models(resource):
    assert decode_fast(orjson.dumps(bundle(resource))) is None


def test_the_models_name_the_element_at_fault():
    issues = report_issues(report(id="a_b", period={"start": "2025-13"}), AT)
    assert [(i.code, i.expressions) for i in issues] == [
        ("structure", (f"{AT}.id",)),
        ("structure", (f"{AT}.period.start",)),
    ]
    r5 = report()
    r5["group"][0]["measureScoreQuantity"] = {"value": 80}  # R5, unknown in R4
    assert [i.expressions for i in report_issues(r5, AT)] == [(f"{G}[0].measureScoreQuantity",)]


def test_a_member_named_twice_is_refused_though_the_decoder_would_keep_the_last():
    body = orjson.dumps(bundle(report()))
    twice = body.replace(b'"count":75', b'"count":75,"count":7', 1)
    assert decode_fast(body) is not None
    with pytest.raises(DomainError) as refused:
        decode_fast(twice)
    assert refused.value.errors[0].code == "duplicate_member"
    # Spaces around a colon change nothing: colons are counted, not key endings.
    with pytest.raises(DomainError):
        decode_fast(twice.replace(b'"status":', b'"status" :', 1))
    # A \u escape sends the body to the slow check, which finds no member twice.
    spaced = body.replace(b'"status":', b'"status" :', 1).replace(b"summary", b"\\u0073ummary")
    assert decode_fast(spaced) is not None
