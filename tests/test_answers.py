"""Reads kept until the data moves: a project's compliance, an establishment's measurements and
the FHIR MeasureReports are served again from memory, never after a write that changes them,
never to a caller outside the scope they were computed for, and answer 304 to their ETag."""

from __future__ import annotations

from app.indicators.schemas import MeasurementSeries
from app.projects.schemas import ComplianceRead
from tests.test_balance_flow import MEETS, create_project
from tests.test_extracts import extract, push


async def kept_world(client, factory):
    national = await factory.token("national")
    project, (finess,), vendor = await create_project(client, factory, national, count=1)
    return national, project["id"], finess, vendor


async def test_a_kept_compliance_is_not_served_after_a_write_that_changes_it(client, factory):
    national, pid, finess, vendor = await kept_world(client, factory)
    url = f"/api/v1/projects/{pid}/compliance"
    first = await client.get(url, headers=national)
    again = await client.get(url, headers=national)
    assert (first.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit")
    assert again.content == first.content
    assert first.json()["status"] == "no_data"

    await push(client, vendor, extract(finess, "2025-01", "2025-03", **MEETS))
    after = await client.get(url, headers=national)
    assert after.headers["x-cache"] == "miss"
    assert after.json()["status"] == "targets_met"
    (item,) = after.json()["establishments"]
    assert item["latest_period"] == {"start": "2025-01", "end": "2025-03"}


async def test_kept_measurements_are_not_served_after_a_write_that_changes_them(client, factory):
    _, _, finess, vendor = await kept_world(client, factory)
    url = f"/api/v1/establishments/{finess}/measurements"
    await push(client, vendor, extract(finess, "2025-01", "2025-03", **MEETS))
    first = await client.get(url, headers=vendor)
    assert (await client.get(url, headers=vendor)).headers["x-cache"] == "hit"
    assert [i["revision"] for i in first.json()["items"]] == [1]

    revised = MEETS | {"active_files_with_agenda_event": 80}
    await push(client, vendor, extract(finess, "2025-01", "2025-03", **revised))
    after = await client.get(url, headers=vendor)
    assert after.headers["x-cache"] == "miss"
    (item,) = after.json()["items"]
    assert item["revision"] == 2
    assert item["indicators"]["agenda_rate"]["met"] is False
    # another period range is another answer
    ranged = await client.get(url, params={"from": "2025-04"}, headers=vendor)
    assert ranged.headers["x-cache"] == "miss" and ranged.json()["items"] == []


async def test_the_etag_answers_304_until_the_data_moves(client, factory):
    national, pid, finess, vendor = await kept_world(client, factory)
    for url, headers in [
        (f"/api/v1/projects/{pid}/compliance", national),
        (f"/api/v1/establishments/{finess}/measurements", vendor),
        (f"/fhir/MeasureReport?reporter={finess}", vendor),
    ]:
        first = await client.get(url, headers=headers)
        etag = first.headers["etag"]
        assert first.headers["cache-control"] == "private, no-cache"
        unchanged = await client.get(url, headers=headers | {"If-None-Match": etag})
        assert unchanged.status_code == 304, url
        assert unchanged.content == b"" and unchanged.headers["etag"] == etag

    await push(client, vendor, extract(finess, "2025-01", "2025-03", **MEETS))
    moved = await client.get(
        f"/api/v1/projects/{pid}/compliance", headers=national | {"If-None-Match": etag}
    )
    assert moved.status_code == 200 and moved.headers["etag"] != etag
    assert moved.json()["status"] == "targets_met"


async def test_a_caller_outside_the_scope_gets_404_while_the_answer_is_kept_for_another(
    client, factory
):
    national, pid, finess, vendor = await kept_world(client, factory)
    other_vendor = await factory.token("vendor", vendor=await factory.vendor("Autre"))
    other_region = await factory.token("ars", region="84")
    compliance = f"/api/v1/projects/{pid}/compliance"
    measurements = f"/api/v1/establishments/{finess}/measurements"
    fhir = f"/fhir/MeasureReport?reporter={finess}"
    kept = {url: await client.get(url, headers=national) for url in (compliance, measurements)}
    kept[fhir] = await client.get(fhir, headers=vendor)
    for url, answer in kept.items():
        assert answer.status_code == 200
        for outsider in (other_vendor, other_region):
            for headers in (outsider, outsider | {"If-None-Match": answer.headers["etag"]}):
                refused = await client.get(url, headers=headers)
                assert refused.status_code == 404, (url, refused.text)
                assert "etag" not in refused.headers
    # and the project's own vendor, in scope, reads it
    assert (await client.get(compliance, headers=vendor)).status_code == 200


async def test_the_answers_are_what_their_declared_models_write(client, factory):
    national, pid, finess, vendor = await kept_world(client, factory)
    revised = MEETS | {"dmp_fed_persons": 10, "eprescriptions_imported": 7}
    await push(
        client,
        vendor,
        extract(finess, "2025-01", "2025-03", **MEETS),
        extract(finess, "2025-04", "2025-04", **revised),
    )
    measurements = await client.get(f"/api/v1/establishments/{finess}/measurements", headers=vendor)
    compliance = await client.get(f"/api/v1/projects/{pid}/compliance", headers=national)
    assert len(measurements.json()["items"]) == 2
    # byte for byte what FastAPI would have written from the response model
    series = MeasurementSeries.model_validate_json(measurements.content)
    assert series.model_dump_json().encode() == measurements.content
    read = ComplianceRead.model_validate_json(compliance.content)
    assert read.model_dump_json().encode() == compliance.content
    assert measurements.headers["content-type"] == "application/json"
