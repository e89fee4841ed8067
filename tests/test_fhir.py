"""The FHIR endpoint on the real database: MeasureReports pushed in batch and transaction
Bundles through the ingestion core, read back as a searchset, each refusal an
OperationOutcome naming the element at fault, and the callers' scopes."""

from __future__ import annotations

import copy

import orjson
import pytest
from sqlalchemy import update

from app.config import get_settings
from app.extracts.models import Measurement
from app.fhir.measures import MEASURE_POPULATION, Urls
from tests.test_extracts import COUNTS, extract, push

FHIR = "application/fhir+json"
URLS = Urls(get_settings().public_url)


def rate(code: str, numerator: int, denominator: int) -> dict:
    return {
        "code": {"coding": [{"system": URLS.indicator_system, "code": code}]},
        "population": [
            {"code": {"coding": [{"system": MEASURE_POPULATION, "code": kind}]}, "count": n}
            for kind, n in (("numerator", numerator), ("denominator", denominator))
        ],
    }


def report(finess: str, start: str, end: str, **counts) -> dict:
    c = {**COUNTS, **counts}
    return {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "summary",
        "measure": URLS.composite,
        "reporter": {"identifier": {"system": "https://finess.esante.gouv.fr", "value": finess}},
        "period": {"start": start, "end": end},
        "group": [
            rate("mssante_rate", c["mssante_messages_sent"], c["eligible_persons"]),
            rate("dmp_rate", c["dmp_fed_persons"], c["eligible_persons"]),
            rate("active_files_rate", c["active_files"], c["accompanied_persons"]),
            rate("care_project_rate", c["active_files_with_care_project"], c["active_files"]),
            rate("agenda_rate", c["active_files_with_agenda_event"], c["active_files"]),
        ],
    }


def bundle(*resources: dict, kind: str = "batch") -> dict:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {"resource": r, "request": {"method": "POST", "url": "MeasureReport"}}
            for r in resources
        ],
    }


async def post(client, headers, document, status=200, **extra_headers):
    response = await client.post(
        "/fhir",
        json=document,
        headers={**headers, "Content-Type": FHIR, **extra_headers},
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == FHIR
    return response.json()


def outcomes(answer: dict) -> list[tuple[str, list[str]]]:
    """Per entry: its status and the codes of its outcome's issues."""
    return [
        (
            e["response"]["status"],
            [i["details"]["coding"][0]["code"] for i in e["response"]["outcome"]["issue"]],
        )
        for e in answer["entry"]
    ]


def issues(outcome: dict) -> list[tuple[str, str, list[str]]]:
    return [
        (i["code"], i["details"]["coding"][0]["code"], i["expression"]) for i in outcome["issue"]
    ]


async def search(client, headers, status=200, **params):
    response = await client.get("/fhir/MeasureReport", params=params, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == FHIR
    return response.json()


async def test_round_trip_json_then_fhir_then_fhir_again_is_unchanged(client, factory):
    _, (a, b), headers = await factory.vendor_with_establishments(2)
    summary = await push(
        client,
        headers,
        extract(a, "2025-01", "2025-03"),
        extract(a, "2025-04", "2025-04", eprescriptions_imported=9),
        extract(b, "2025-01", "2025-03", mssante_messages_sent=20),
    )
    assert summary["counts"]["created"] == 3

    found = await search(client, headers, reporter=f"{a},{b}")
    assert found["type"] == "searchset" and found["total"] == 3
    reports = [e["resource"] for e in found["entry"]]
    assert [r["id"] for r in reports] == [f"{a}-2025-01", f"{a}-2025-04", f"{b}-2025-01"]
    # b's MS Santé rate is 20 / 75 = 26.7 %: below its 70 % target.
    mssante = reports[2]["group"][0]
    assert mssante["measureScore"]["value"] == 26.7
    assert mssante["extension"][0]["valueBoolean"] is False
    assert reports[0]["extension"][1]["valueBoolean"] is True  # meets-targets

    again = await post(client, headers, bundle(*reports))
    assert again["type"] == "batch-response"
    assert outcomes(again) == [("200 OK", ["unchanged"])] * 3
    assert again["entry"][1]["response"]["location"] == f"MeasureReport/{a}-2025-04/_history/1"
    # Each is also read on its own, at the location its push answered.
    one = await client.get(f"/fhir/MeasureReport/{a}-2025-04", headers=headers)
    assert one.json() == reports[1]
    for unknown in (f"{a}-2025-05", f"{a}-2025-4", "nonsense", f"{b}-2025-02"):
        missing = await client.get(f"/fhir/MeasureReport/{unknown}", headers=headers)
        assert missing.status_code == 404, unknown
        assert missing.json()["resourceType"] == "OperationOutcome"
    # …and once more, sent as FHIR from what FHIR read back.
    third = await post(client, headers, bundle(*reports, kind="transaction"))
    assert outcomes(third) == [("200 OK", ["unchanged"])] * 3
    series = await client.get(f"/api/v1/establishments/{a}/measurements", headers=headers)
    assert [i["revision"] for i in series.json()["items"]] == [1, 1]


async def test_pushed_reports_are_the_extracts_of_the_json_api(client, factory):
    _, (finess,), headers = await factory.vendor_with_establishments()
    first = await post(client, headers, bundle(report(finess, "2025-01-01", "2025-03-31")))
    assert outcomes(first) == [("201 Created", ["created"])]
    assert first["entry"][0]["response"]["location"] == (
        f"MeasureReport/{finess}-2025-01/_history/1"
    )
    revised = await post(
        client, headers, bundle(report(finess, "2025-01", "2025-03", active_files_rate=1))
    )
    assert outcomes(revised) == [("200 OK", ["unchanged"])]
    changed = await post(
        client, headers, bundle(report(finess, "2025-01", "2025-03", dmp_fed_persons=50))
    )
    assert outcomes(changed) == [("200 OK", ["revised"])]
    series = await client.get(f"/api/v1/establishments/{finess}/measurements", headers=headers)
    item = series.json()["items"][0]
    assert (item["revision"], item["counts"]["dmp_fed_persons"]) == (2, 50)
    # Audited as the JSON batches are: one entry per batch that stored something.
    admin = await factory.token("national")
    audit = await client.get("/api/v1/audit", params={"action": "extracts.import"}, headers=admin)
    assert len(audit.json()["items"]) == 2  # created, then revised; unchanged stores nothing
    # A later month that skips one: stored with the gap warning, placed on period.start.
    gap = await post(client, headers, bundle(report(finess, "2025-05", "2025-05")))
    assert outcomes(gap) == [("201 Created", ["created", "gap"])]
    warning = gap["entry"][0]["response"]["outcome"]["issue"][1]
    assert warning["severity"] == "warning"
    assert warning["expression"] == ["Bundle.entry[0].resource.period.start"]


async def test_each_trap_answers_its_operation_outcome(client, factory, session):
    _, (finess,), headers = await factory.vendor_with_establishments()
    good = report(finess, "2025-01", "2025-03")
    disagree = report(finess, "2025-01", "2025-03")
    disagree["group"][1]["population"][1]["count"] = 74  # DMP denominator: 74, MS Santé: 75
    unknown_measure = {**good, "measure": URLS.measure("nps")}
    wrong_system = copy.deepcopy(good)
    wrong_system["reporter"]["identifier"]["system"] = "urn:oid:1.2.250.1.71.4.2.1"
    not_completed = report(finess, "2099-01", "2099-01")
    not_a_month = report(finess, "2025-01-01", "2025-03-15")
    answer = await post(
        client,
        headers,
        bundle(disagree, unknown_measure, wrong_system, not_completed, not_a_month, good),
    )
    e = "Bundle.entry[{}].resource"
    found = [issues(entry["response"]["outcome"]) for entry in answer["entry"]]
    assert found[0] == [
        (
            "invariant",
            "groups_disagree",
            [
                f"{e.format(0)}.group[0].population[1].count",
                f"{e.format(0)}.group[1].population[1].count",
            ],
        )
    ]
    message = answer["entry"][0]["response"]["outcome"]["issue"][0]["details"]["text"]
    assert "mssante_rate 75 vs dmp_rate 74" in message
    assert found[1] == [("not-found", "unknown_measure", [f"{e.format(1)}.measure"])]
    assert found[2] == [
        ("code-invalid", "wrong_identifier_system", [f"{e.format(2)}.reporter.identifier.system"])
    ]
    assert found[3] == [("business-rule", "period_not_completed", [f"{e.format(3)}.period.end"])]
    assert found[4] == [("value", "not_whole_month", [f"{e.format(4)}.period.end"])]
    assert [s for s, _ in outcomes(answer)] == ["422 Unprocessable Entity"] * 5 + ["201 Created"]

    # A frozen period: refused, named on period.start.
    await session.execute(
        update(Measurement).where(Measurement.finess == finess).values(locked_by_event_id=1)
    )
    await session.flush()
    locked = await post(
        client, headers, bundle(report(finess, "2025-01", "2025-03", dmp_fed_persons=1))
    )
    assert issues(locked["entry"][0]["response"]["outcome"]) == [
        ("conflict", "period_locked", [f"{e.format(0)}.period.start"])
    ]
    # A count that breaks a rule of the core is placed on each group that carries it.
    too_many = await post(
        client, headers, bundle(report(finess, "2025-04", "2025-04", eligible_persons=90))
    )
    assert issues(too_many["entry"][0]["response"]["outcome"]) == [
        (
            "business-rule",
            "exceeds_accompanied_persons",
            [
                f"{e.format(0)}.group[0].population[1].count",
                f"{e.format(0)}.group[1].population[1].count",
            ],
        ),
    ]


async def test_transaction_is_all_or_nothing_and_batch_is_per_entry(client, factory):
    _, (a, b), headers = await factory.vendor_with_establishments(2)
    wrong = report(b, "2025-01", "2025-02")  # a first window of two months
    refused = await post(
        client,
        headers,
        bundle(report(a, "2025-01", "2025-03"), wrong, kind="transaction"),
        status=422,
    )
    assert refused["resourceType"] == "OperationOutcome"
    assert issues(refused) == [
        ("business-rule", "window_length", ["Bundle.entry[1].resource.period.end"])
    ]
    assert (await search(client, headers, reporter=a))["total"] == 0

    # A refusal of the mapping itself also stops the whole transaction.
    no_group = report(b, "2025-01", "2025-03")
    no_group["group"].pop()
    refused = await post(
        client,
        headers,
        bundle(report(a, "2025-01", "2025-03"), no_group, kind="transaction"),
        status=422,
    )
    assert [code for _, code, _ in issues(refused)] == ["required"]
    assert (await search(client, headers, reporter=a))["total"] == 0

    batch = await post(client, headers, bundle(report(a, "2025-01", "2025-03"), wrong))
    assert [s for s, _ in outcomes(batch)] == ["201 Created", "422 Unprocessable Entity"]
    done = await post(
        client,
        headers,
        bundle(
            report(a, "2025-04", "2025-04"), report(b, "2025-01", "2025-03"), kind="transaction"
        ),
    )
    assert done["type"] == "transaction-response"
    assert [s for s, _ in outcomes(done)] == ["201 Created", "201 Created"]


async def test_another_vendors_establishment_is_not_found(client, factory):
    _, (mine,), headers = await factory.vendor_with_establishments()
    _, (theirs,), their_headers = await factory.vendor_with_establishments()
    await post(client, their_headers, bundle(report(theirs, "2025-01", "2025-03")))

    pushed = await post(client, headers, bundle(report(theirs, "2025-01", "2025-03")))
    assert outcomes(pushed) == [("404 Not Found", ["not_covered"])]
    refused = await post(
        client, headers, bundle(report(theirs, "2025-01", "2025-03"), kind="transaction"), 404
    )
    assert issues(refused) == [
        ("not-found", "not_covered", ["Bundle.entry[0].resource.reporter.identifier.value"])
    ]
    hidden = await search(client, headers, status=404, reporter=theirs)
    assert hidden["resourceType"] == "OperationOutcome"
    assert hidden["issue"][0]["code"] == "not-found"
    assert hidden["issue"][0]["expression"] == ["reporter"]
    assert (await search(client, headers, reporter=mine))["total"] == 0


async def test_any_allowed_role_reads_the_figures_by_period_and_measure(client, factory):
    _, (finess,), headers = await factory.vendor_with_establishments()
    await post(
        client,
        headers,
        bundle(
            report(finess, "2025-01", "2025-03"),
            report(finess, "2025-04", "2025-04"),
            report(finess, "2025-05", "2025-05", dmp_fed_persons=10),
        ),
    )
    ars = await factory.token("ars", region="11")
    other_ars = await factory.token("ars", region="84")
    grades = await factory.token("grades", region="11")
    for reader in (ars, grades, await factory.token("national")):
        found = await search(
            client,
            reader,
            reporter=f"https://finess.esante.gouv.fr|{finess}",
            period=["ge2025-04", "le2025-05-31"],
            measure=URLS.measure("dmp-rate"),
        )
        assert [r["resource"]["period"]["start"] for r in found["entry"]] == [
            "2025-04-01",
            "2025-05-01",
        ]
        groups = [r["resource"]["group"] for r in found["entry"]]
        assert [[g["code"]["coding"][0]["code"] for g in gs] for gs in groups] == [
            ["dmp_rate"],
            ["dmp_rate"],
        ]
        # 10 / 75 = 13.3 %: the DMP target of 70 % is missed in May.
        assert groups[1][0]["measureScore"]["value"] == 13.3
        assert groups[1][0]["extension"][0]["valueBoolean"] is False
    await search(client, other_ars, status=404, reporter=finess)
    by_oid = await search(
        client, ars, **{"reporter:identifier": f"urn:oid:1.2.250.1.71.4.2.2|1{finess}"}
    )
    assert by_oid["total"] == 3
    bad = await search(client, ars, status=400, reporter=finess, measure="https://other/Measure/x")
    assert issues(bad)[0][2] == ["measure"]


async def test_errors_of_every_layer_are_operation_outcomes(client, factory, monkeypatch):
    _, (finess,), headers = await factory.vendor_with_establishments()
    one = bundle(report(finess, "2025-01", "2025-03"))

    anonymous = await client.post("/fhir", json=one, headers={"Content-Type": FHIR})
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == FHIR
    assert anonymous.json()["issue"][0]["code"] == "login"

    ars = await factory.token("ars", region="11")
    forbidden = await post(client, ars, one, status=403)
    assert forbidden["issue"][0]["code"] == "forbidden"

    broken = await client.post("/fhir", content=b"{", headers={**headers, "Content-Type": FHIR})
    assert broken.status_code == 400
    assert broken.json()["issue"][0]["expression"] == ["Bundle"]

    twice = orjson.dumps(one).replace(b'"status":"complete"', b'"status":"complete","status":"x"')
    duplicate = await client.post("/fhir", content=twice, headers={**headers, "Content-Type": FHIR})
    assert duplicate.status_code == 400
    assert duplicate.json()["issue"][0]["details"]["coding"][0]["code"] == "duplicate_member"

    not_bundle = await post(client, headers, report(finess, "2025-01", "2025-03"), status=400)
    assert not_bundle["issue"][0]["details"]["coding"][0]["code"] == "wrong_resource_type"
    history = await post(client, headers, {**one, "type": "history"}, status=422)
    assert history["issue"][0]["expression"] == ["Bundle.type"]
    malformed = await post(
        client, headers, {**one, "entry": [{"request": {"method": "POST"}}]}, 400
    )
    assert malformed["issue"][0]["expression"] == ["Bundle.entry[0].request.url"]

    # An R5 element in one entry: refused there by the models, the other entry is stored.
    r5 = report(finess, "2025-01", "2025-03")
    r5["group"][0]["measureScoreQuantity"] = {"value": 80}
    mixed = await post(client, headers, bundle(r5, report(finess, "2025-01", "2025-03")))
    assert issues(mixed["entry"][0]["response"]["outcome"]) == [
        ("structure", "structure", ["Bundle.entry[0].resource.group[0].measureScoreQuantity"])
    ]
    assert outcomes(mixed)[1] == ("201 Created", ["created"])

    monkeypatch.setattr(get_settings(), "max_batch_rows", 1)
    too_many = await post(client, headers, bundle(r5, r5), status=413)
    assert too_many["issue"][0]["expression"] == ["Bundle.entry"]


async def test_idempotency_key_replays_the_first_answer(client, factory):
    _, (finess,), headers = await factory.vendor_with_establishments()
    keyed = {**headers, "Idempotency-Key": "fhir-push-1"}
    first = await post(client, keyed, bundle(report(finess, "2025-01", "2025-03")))
    response = await client.post(
        "/fhir",
        json=bundle(report(finess, "2025-01", "2025-03")),
        headers={**keyed, "Content-Type": FHIR},
    )
    assert response.headers.get("Idempotent-Replayed") == "true"
    assert response.json() == first
    other = await post(
        client, keyed, bundle(report(finess, "2025-01", "2025-03", dmp_fed_persons=1)), 422
    )
    assert other["resourceType"] == "OperationOutcome"


async def test_metadata_and_measures(client, factory):
    metadata = await client.get("/fhir/metadata")
    assert metadata.status_code == 200
    assert metadata.headers["content-type"] == FHIR
    assert metadata.json()["fhirVersion"] == "4.0.1"
    headers = await factory.token("grades", region="11")
    found = (await client.get("/fhir/Measure", headers=headers)).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [
        "esms-numerique-usage",
        "mssante-rate",
        "dmp-rate",
        "active-files-rate",
        "care-project-rate",
        "agenda-rate",
        "eprescription-count",
        "eparcours-count",
    ]
    dmp = (await client.get("/fhir/Measure/dmp-rate", headers=headers)).json()
    assert dmp["url"] == URLS.measure("dmp-rate")
    assert dmp["group"][0]["extension"][0]["valueQuantity"]["value"] == 70
    assert "3 mois pour la première mesure" in dmp["description"]
    missing = await client.get("/fhir/Measure/nps", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("content_type", ["text/csv", "application/xml"])
async def test_only_json_is_read(client, factory, content_type):
    _, _, headers = await factory.vendor_with_establishments()
    response = await client.post(
        "/fhir", content=b"<Bundle/>", headers={**headers, "Content-Type": content_type}
    )
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Content-Type"]
