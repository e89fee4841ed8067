"""Mon espace santé pilots through the API: a region's pilots from application to payment,
the selection rules (quotas by region size, the EJ limit, the national cap, the calendar),
access, the pilots' usage, and selections racing on a database that really commits."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import asyncpg
import httpx
import pytest
from sqlalchemy import text

from app import migrate
from app.campaigns import current_campaign
from app.clock import Month
from app.db import Database, make_engine, set_database
from app.main import create_app
from app.pilots import service
from app.referential.finess import make_finess
from tests.conftest import _create_database, _dsn
from tests.factories import Factory

APPLICATION = {
    "technical_maturity": "segur_dui_installing",
    "dmp_connection": "effective",
    "mssante_connection": "planned",
    "applied_on": "2023-09-20",
}


async def apply(client, headers, finess, **fields):
    body = {"finess": finess, **APPLICATION, **fields}
    return await client.post("/api/v1/pilots/applications", json=body, headers=headers)


async def decide(client, headers, application_id, decision="selected", day="2023-11-20", **kw):
    return await client.post(
        f"/api/v1/pilots/applications/{application_id}/decision",
        json={"decision": decision, "decided_on": day, **kw},
        headers=headers,
    )


async def step(client, headers, pilot_id, kind, day, amount=None):
    body = {"type": kind, "date": day} | ({"amount": amount} if amount is not None else {})
    return await client.post(f"/api/v1/pilots/{pilot_id}/events", json=body, headers=headers)


async def get(client, headers, path, **params):
    response = await client.get(f"/api/v1/pilots{path}", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def codes(response) -> list[str]:
    return [e["code"] for e in response.json()["errors"]]


async def test_walk_a_region_from_application_to_payment(client, factory, session):
    ars = await factory.token("ars", region="11")
    legal = make_finess("75", 980_001)
    ehpad = await factory.establishment("75", legal_entity=legal, category="500")
    ssiad = await factory.establishment("92", category="354")
    mas = await factory.establishment("93", category="255")

    created = await apply(client, ars, ehpad, legal_entity_finess=legal)
    assert created.status_code == 201, created.text
    application = created.json()
    assert application | {"id": 0, "recorded_at": ""} == {
        "id": 0,
        "campaign": "2023",
        "finess": ehpad,
        "name": f"EHPAD {ehpad}",
        "legal_entity_finess": legal,
        "region": "11",
        "category_code": "500",
        "domain": "pa_residential",  # from the FINESS category
        "technical_maturity": "segur_dui_installing",
        "dmp_connection": "effective",
        "mssante_connection": "planned",
        "applied_on": "2023-09-20",
        "status": "applied",
        "decided_on": None,
        "decision_reason": None,
        "eligible": True,
        "eligibility": [],
        "warnings": [],
        "recorded_at": "",
    }
    home = (await apply(client, ars, ssiad)).json()
    assert home["domain"] == "home_care"
    # An application that cannot be selected is still recorded, with its reasons.
    unready = await apply(client, ars, mas, technical_maturity="none", applied_on="2023-11-02")
    assert unready.status_code == 201
    assert (unready.json()["eligible"], [e["code"] for e in unready.json()["eligibility"]]) == (
        False,
        ["not_technically_ready", "outside_call_window"],
    )

    refused = await decide(client, ars, unready.json()["id"])
    assert refused.status_code == 422
    assert codes(refused) == ["not_technically_ready", "outside_call_window"]
    declined = await decide(
        client, ars, unready.json()["id"], "not_selected", reason="DUI not chosen yet"
    )
    assert declined.status_code == 200 and declined.json()["status"] == "not_selected"

    selected = await decide(client, ars, application["id"])
    assert selected.status_code == 200, selected.text
    assert (selected.json()["status"], selected.json()["decided_on"]) == ("selected", "2023-11-20")
    assert (await decide(client, ars, home["id"], day="2023-12-15")).status_code == 200
    assert codes(await decide(client, ars, application["id"])) == ["already_selected"]

    listed = await get(client, ars, "")
    assert [(p["finess"], p["status"], p["amount"]) for p in listed["items"]] == [
        (ehpad, "awaiting_convention", "21000.00"),
        (ssiad, "awaiting_convention", "21000.00"),
    ]

    pid = application["id"]
    early = await step(client, ars, pid, "paid", "2024-12-02")
    assert early.status_code == 422
    assert codes(early) == ["missing_evidence"] * 3
    for kind, day in [
        ("convention_signed", "2024-01-15"),
        ("intermediate_report_received", "2024-06-10"),
        ("final_report_received", "2024-11-20"),  # after 15/11/2024: recorded, flagged late
    ]:
        response = await step(client, ars, pid, kind, day)
        assert response.status_code == 201, response.text
    assert (await get(client, ars, f"/{pid}"))["status"] == "payable"
    assert codes(await step(client, ars, pid, "paid", "2024-12-02", "10000.00")) == [
        "not_flat_amount"
    ]
    paid = await step(client, ars, pid, "paid", "2024-12-02")
    assert paid.status_code == 201 and paid.json()["amount"] == "21000.00"

    pilot = await get(client, ars, f"/{pid}")
    assert (pilot["status"], pilot["payable"], pilot["missing_evidence"], pilot["late"]) == (
        "paid",
        False,
        [],
        True,
    )
    assert [(d["step"], d["due_by"], d["done_on"], d["late"]) for d in pilot["deadlines"]] == [
        ("convention_signed", "2024-02-14", "2024-01-15", False),
        ("intermediate_report_received", "2024-06-14", "2024-06-10", False),
        ("final_report_received", "2024-11-15", "2024-11-20", True),
    ]
    assert (pilot["paid_amount"], pilot["paid_on"]) == ("21000.00", "2024-12-02")
    assert [e["type"] for e in pilot["events"]] == [
        "convention_signed",
        "intermediate_report_received",
        "final_report_received",
        "paid",
    ]

    # The home-care pilot signs, then gives up: its place and its aid are freed.
    assert (
        await step(client, ars, home["id"], "convention_signed", "2024-02-01")
    ).status_code == 201
    assert (await step(client, ars, home["id"], "withdrawn", "2024-04-02")).status_code == 201
    after = await step(client, ars, home["id"], "intermediate_report_received", "2024-06-01")
    assert codes(after) == ["pilot_withdrawn"]

    summary = await get(client, ars, "/summary")
    assert (summary["scope"], summary["selected"], summary["cap"]) == ("11", 1, 5)
    assert summary["applications"] == {
        "applied": 0,
        "selected": 1,
        "not_selected": 1,
        "withdrawn": 1,
        "total": 3,
    }
    assert summary["budget"] == {
        "budget": "105000.00",  # 5 pilots x 21 000 €
        "selected": "21000.00",
        "committed": "21000.00",
        "paid": "21000.00",
        "remaining": "84000.00",
    }
    assert summary["payments"] == {
        "awaiting_convention": 0,
        "in_pilot": 0,
        "payable": 0,
        "paid": 1,
        "withdrawn": 1,
        "late": 1,
    }
    assert summary["domains"] == [
        {"domain": "pa_residential", "pilots": 1, "share": 100, "target": 35},
        {"domain": "ph_residential", "pilots": 0, "share": 0, "target": 35},
        {"domain": "home_care", "pilots": 0, "share": 0, "target": 30},
    ]
    assert summary["regions"] == [
        {
            "region": "11",
            "name": "Île-de-France",
            "quota": 5,
            "selected": 1,
            "remaining": 4,
            "applications": 3,
            "envelope": "105000.00",
            "committed": "21000.00",
            "paid": "21000.00",
            "late": 1,
        }
    ]
    national = await get(client, await factory.token("national"), "/summary")
    assert (national["scope"], national["cap"], national["budget"]["budget"]) == (
        "national",
        56,
        "1200000.00",
    )
    assert len(national["regions"]) == 18

    actions = (
        await session.execute(
            text(
                "SELECT action FROM audit_event WHERE action LIKE 'pilot.%' "
                "AND region_code = '11' ORDER BY id"
            )
        )
    ).scalars()
    assert list(actions) == [
        "pilot.application.create",
        "pilot.application.create",
        "pilot.application.create",
        "pilot.application.not_selected",
        "pilot.application.selected",
        "pilot.application.selected",
        "pilot.event.convention_signed",
        "pilot.event.intermediate_report_received",
        "pilot.event.final_report_received",
        "pilot.event.paid",
        "pilot.event.convention_signed",
        "pilot.event.withdrawn",
    ]


@pytest.mark.parametrize(
    ("region", "department", "quota"),
    [("01", "971", 1), ("53", "35", 3), ("84", "69", 5)],
)
async def test_regional_quota_by_region_size(client, factory, region, department, quota):
    ars = await factory.token("ars", region=region)
    ids = [await factory.pilot_application(department=department) for _ in range(quota + 1)]
    responses = [await decide(client, ars, i) for i in ids]
    assert [r.status_code for r in responses] == [200] * quota + [422]
    refused = responses[-1].json()["errors"]
    assert [(e["field"], e["code"]) for e in refused] == [("decision", "regional_quota")]
    assert f"quota of {quota}" in refused[0]["message"]
    # A pilot that withdraws frees its place for the next application.
    assert (await step(client, ars, ids[0], "withdrawn", "2024-01-10")).status_code == 201
    assert (await decide(client, ars, ids[-1], day="2023-12-01")).status_code == 200


async def test_at_most_two_pilots_per_legal_entity_across_regions(client, factory):
    legal = make_finess("75", 980_002)
    idf, ara = await factory.token("ars", region="11"), await factory.token("ars", region="84")
    first, second, third = [
        await factory.pilot_application(department=d, legal_entity=legal)
        for d in ("75", "92", "93")
    ]
    elsewhere = await factory.pilot_application(department="69", legal_entity=legal)
    assert (await decide(client, idf, first)).status_code == 200
    assert (await decide(client, idf, second)).status_code == 200
    assert codes(await decide(client, idf, third)) == ["legal_entity_limit"]
    assert codes(await decide(client, ara, elsewhere)) == ["legal_entity_limit"]


async def test_national_cap(client, factory, monkeypatch):
    campaign = current_campaign()
    small = replace(campaign, pilots=replace(campaign.pilots, national_cap=2))
    monkeypatch.setattr(service, "current_campaign", lambda: small)
    national = await factory.token("national")
    ids = [await factory.pilot_application(department=d) for d in ("75", "69", "35")]
    responses = [await decide(client, national, i) for i in ids]
    assert [r.status_code for r in responses] == [200, 200, 422]
    assert codes(responses[-1]) == ["national_cap"]


async def test_selection_calendar_and_domain_split(client, factory):
    ars = await factory.token("ars", region="11")
    late_call = await factory.pilot_application(applied_on=Month(2023, 11).first_day)
    assert codes(await decide(client, ars, late_call)) == ["outside_call_window"]
    on_time = await factory.pilot_application()
    assert codes(await decide(client, ars, on_time, day="2023-12-16")) == [
        "after_selection_deadline"
    ]
    assert codes(await decide(client, ars, on_time, day="2023-09-01")) == ["before_application"]
    assert codes(await decide(client, ars, on_time, day="2030-01-01")) == [
        "future_date",
        "after_selection_deadline",
    ]
    # Nineteen PA residential pilots elsewhere: the twentieth goes above 35 % of 56.
    for department in ["69"] * 5 + ["13"] * 5 + ["33"] * 5 + ["31"] * 4:
        await factory.pilot_application(department=department, status="selected")
    selected = await decide(client, ars, on_time, day="2023-12-15")
    assert selected.status_code == 200
    assert [w["code"] for w in selected.json()["warnings"]] == ["domain_above_target"]


async def test_recording_refusals(client, factory):
    ars = await factory.token("ars", region="11")
    ehpad = await factory.establishment("75", category="500")
    mecs = await factory.establishment("75", category="177")
    lyon = await factory.establishment("69")

    def fields(response):
        return [(e["field"], e["code"]) for e in response.json()["errors"]]

    unknown = await apply(client, ars, make_finess("75", 999_999))
    assert unknown.status_code == 422 and fields(unknown) == [("finess", "unknown_finess")]
    assert fields(await apply(client, ars, "750712185")) == [("finess", "invalid_finess")]
    assert fields(await apply(client, ars, ehpad, domain="home_care")) == [
        ("domain", "domain_mismatch")
    ]
    assert fields(await apply(client, ars, ehpad, legal_entity_finess="750712184")) == [
        ("legal_entity_finess", "legal_entity_mismatch")
    ]
    assert fields(await apply(client, ars, ehpad, applied_on="2030-01-01")) == [
        ("applied_on", "future_date")
    ]
    assert fields(await apply(client, ars, mecs)) == [("finess", "not_eligible_domain")]
    other_region = await apply(client, ars, lyon)
    assert other_region.status_code == 404
    assert fields(other_region) == [("finess", "not_in_region")]
    assert (await apply(client, ars, ehpad)).status_code == 201
    twice = await apply(client, ars, ehpad)
    assert twice.status_code == 409 and fields(twice) == [("finess", "already_applied")]


async def test_roles_and_scopes(client, factory):
    _, (finess,), vendor_headers = await factory.vendor_with_establishments()
    application = await factory.pilot_application(finess)
    pilot = await factory.pilot_application(department="92", status="selected")
    grades = await factory.token("grades", region="11")
    other_ars = await factory.token("ars", region="84")
    national = await factory.token("national")

    for path in ("/applications", "/summary", f"/applications/{application}", f"/{pilot}", ""):
        response = await client.get(f"/api/v1/pilots{path}", headers=vendor_headers)
        assert response.status_code == 404, path
    assert (await apply(client, vendor_headers, finess)).status_code == 403
    assert (await decide(client, vendor_headers, application)).status_code == 403
    assert (await step(client, vendor_headers, pilot, "withdrawn", "2024-01-10")).status_code == 403

    assert (await get(client, grades, "/applications"))["total"] == 2
    assert (await get(client, grades, f"/{pilot}"))["status"] == "awaiting_convention"
    assert (await decide(client, grades, application)).status_code == 403
    assert (await step(client, grades, pilot, "convention_signed", "2024-01-10")).status_code == 403
    assert (
        await client.get("/api/v1/pilots/summary", params={"region": "84"}, headers=grades)
    ).status_code == 404

    assert (
        await client.get(f"/api/v1/pilots/applications/{application}", headers=other_ars)
    ).status_code == 404
    assert (await decide(client, other_ars, application)).status_code == 404
    assert (
        await step(client, other_ars, pilot, "convention_signed", "2024-01-10")
    ).status_code == 404
    assert (await get(client, other_ars, "/applications"))["total"] == 0
    assert (
        await client.get("/api/v1/pilots", params={"region": "11"}, headers=other_ars)
    ).status_code == 404
    # Only selected applications are pilots.
    assert (await client.get(f"/api/v1/pilots/{application}", headers=grades)).status_code == 404

    assert (await decide(client, national, application)).status_code == 200
    assert (await get(client, national, "", region="11"))["total"] == 2


# -- Mon espace santé usage ---------------------------------------------------------------

USAGE = {
    "ins_qualified_identities": 61,
    "dmp_documents_sent": 140,
    "mssante_messages_sent": 85,
    "citizen_messages_sent": 12,
}


def usage(finess: str, month: str, **counts) -> dict:
    return {"finess": finess, "month": month, **USAGE, **counts}


async def push(client, headers, *rows, **params):
    response = await client.post(
        "/api/v1/pilots/usage", json={"usage": list(rows)}, headers=headers, params=params
    )
    assert response.status_code == 200, response.text
    return response.json()


def outcomes(summary) -> list[tuple[str, list[str]]]:
    return [(r["outcome"], [e["code"] for e in r["errors"]]) for r in summary["results"]]


async def test_pilot_usage_is_validated_revised_and_summed(client, factory):
    vendor, (finess, not_pilot), vendor_headers = await factory.vendor_with_establishments(2)
    pilot = await factory.pilot_application(finess, status="selected")
    other = await factory.pilot_application(department="92", status="selected")
    other_finess = (await get(client, await factory.token("national"), f"/{other}"))["finess"]
    ars = await factory.token("ars", region="11")
    current = str(Month.current())

    summary = await push(
        client,
        vendor_headers,
        usage(finess, "2024-03"),
        usage(finess, "2024-04", dmp_documents_sent=150),
        usage(not_pilot, "2024-03"),
        usage(other_finess, "2024-03"),  # a pilot, but not in this vendor's projects
        usage(finess, current),
        usage(finess, "2024-05", dmp_documents_sent=-1, extra=1),
    )
    assert summary["status"] == "partial"
    assert outcomes(summary) == [
        ("created", []),
        ("created", []),
        ("rejected", ["not_a_pilot"]),
        ("rejected", ["not_covered"]),
        ("rejected", ["period_not_completed"]),
        ("rejected", ["unknown_field", "negative"]),
    ]
    assert summary["counts"] == {
        "created": 2,
        "revised": 0,
        "unchanged": 0,
        "rejected": 4,
        "skipped": 0,
    }

    again = await push(client, vendor_headers, usage(finess, "2024-03"))
    assert [(r["outcome"], r["revision"]) for r in again["results"]] == [("unchanged", 1)]
    fixed = await push(client, vendor_headers, usage(finess, "2024-03", citizen_messages_sent=14))
    assert [(r["outcome"], r["revision"]) for r in fixed["results"]] == [("revised", 2)]
    # The ARS records usage for its region's pilots too (here one outside any project).
    by_ars = await push(
        client,
        ars,
        usage(finess, "2024-03", citizen_messages_sent=15),
        usage(other_finess, "2024-03", ins_qualified_identities=9),
    )
    assert [(r["outcome"], r["revision"]) for r in by_ars["results"]] == [
        ("revised", 3),
        ("created", 1),
    ]

    series = await get(client, vendor_headers, f"/{pilot}/usage")
    assert series["finess"] == finess
    assert [(i["month"], i["revision"], i["sender_role"]) for i in series["items"]] == [
        ("2024-03", 3, "ars"),
        ("2024-04", 1, "vendor"),
    ]
    assert series["items"][0]["counts"] == USAGE | {"citizen_messages_sent": 15}
    only_april = await get(client, ars, f"/{pilot}/usage", **{"from": "2024-04"})
    assert [i["month"] for i in only_april["items"]] == ["2024-04"]
    history = await get(client, ars, f"/{pilot}/usage/revisions")
    assert [
        (i["month"], i["revision"], i["vendor_siren"], i["counts"]["citizen_messages_sent"])
        for i in history["items"]
    ] == [
        ("2024-03", 1, vendor, 12),
        ("2024-03", 2, vendor, 14),
        ("2024-03", 3, None, 15),
        ("2024-04", 1, vendor, 12),
    ]

    totals = await get(client, ars, "/usage")
    assert totals["region"] == "11"
    assert totals["items"] == [
        {
            "region": "11",
            "month": "2024-03",
            "pilots_reporting": 2,
            "counts": {
                "ins_qualified_identities": 61 + 9,
                "dmp_documents_sent": 280,
                "mssante_messages_sent": 170,
                "citizen_messages_sent": 15 + 12,
            },
        },
        {
            "region": "11",
            "month": "2024-04",
            "pilots_reporting": 1,
            "counts": USAGE | {"dmp_documents_sent": 150},
        },
    ]
    national = await get(client, await factory.token("national"), "/usage", to="2024-03")
    assert [(i["region"], i["month"]) for i in national["items"]] == [("11", "2024-03")]

    # Vendors read back only their pilots; GRADeS read, never write.
    assert (
        await client.get(f"/api/v1/pilots/{other}/usage", headers=vendor_headers)
    ).status_code == 404
    assert (await client.get("/api/v1/pilots/usage", headers=vendor_headers)).status_code == 404
    grades = await factory.token("grades", region="11")
    assert (await get(client, grades, "/usage"))["items"]
    refused = await client.post(
        "/api/v1/pilots/usage", json={"usage": [usage(finess, "2024-06")]}, headers=grades
    )
    assert refused.status_code == 403
    elsewhere = await push(
        client, await factory.token("ars", region="84"), usage(finess, "2024-06")
    )
    assert outcomes(elsewhere) == [("rejected", ["not_covered"])]


async def test_usage_batch_modes(client, factory):
    _, (finess,), headers = await factory.vendor_with_establishments()
    pilot = await factory.pilot_application(finess, status="selected")

    dry = await push(client, headers, usage(finess, "2024-03"), dry_run="true")
    assert dry["dry_run"] is True and outcomes(dry) == [("created", [])]
    assert (await get(client, headers, f"/{pilot}/usage"))["items"] == []

    atomic = await push(
        client, headers, usage(finess, "2024-03"), usage(finess, "2023-08"), atomic="true"
    )
    assert outcomes(atomic) == [("skipped", []), ("rejected", ["before_campaign"])]
    assert (await get(client, headers, f"/{pilot}/usage"))["items"] == []

    csv = (
        "finess;month;ins_qualified_identities;dmp_documents_sent;mssante_messages_sent;"
        f"citizen_messages_sent\n{finess};2024-03;61;140;85;12\n{finess};2024-04;62;x;85;12\n"
    )
    response = await client.post(
        "/api/v1/pilots/usage", content=csv, headers=headers | {"Content-Type": "text/csv"}
    )
    assert outcomes(response.json()) == [("created", []), ("rejected", ["not_integer"])]

    keyed = headers | {"Idempotency-Key": "usage-7"}
    body = {"usage": [usage(finess, "2024-05")]}
    first = await client.post("/api/v1/pilots/usage", json=body, headers=keyed)
    replay = await client.post("/api/v1/pilots/usage", json=body, headers=keyed)
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json() == first.json()
    assert [r["outcome"] for r in replay.json()["results"]] == ["created"]

    bad = await client.post("/api/v1/pilots/usage", json={"extracts": []}, headers=headers)
    assert bad.status_code == 422 and codes(bad) == ["required"]


# -- Selections racing on a database that commits -----------------------------------------


@pytest.fixture
async def committing(pg_server):
    """An app on a database of its own, whose requests really commit in parallel."""
    name = "esms_pilots_race"
    url = await _create_database(pg_server, name)
    await migrate.upgrade(url)
    engine = make_engine(url, pool_size=4)
    database = Database(engine)
    set_database(database)
    try:
        transport = httpx.ASGITransport(app=create_app(database))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield database, client
    finally:
        set_database(None)
        await engine.dispose()
        conn = await asyncpg.connect(_dsn(pg_server, "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def test_concurrent_selections_never_exceed_the_limits(committing, monkeypatch):
    database, client = committing
    async with database.sessions() as session:
        factory = Factory(session, client)
        guadeloupe = await factory.token("ars", region="01")
        martinique = await factory.token("ars", region="02")
        first = await factory.pilot_application(department="971")
        second = await factory.pilot_application(department="972")
        guyane = [await factory.pilot_application(department="973") for _ in range(2)]
        guyane_ars = await factory.token("ars", region="03")
        await session.commit()

    # Two ARS select at once the last place under the national cap: one of them gets it.
    campaign = current_campaign()
    monkeypatch.setattr(
        service,
        "current_campaign",
        lambda: replace(campaign, pilots=replace(campaign.pilots, national_cap=1)),
    )
    responses = await asyncio.gather(
        decide(client, guadeloupe, first), decide(client, martinique, second)
    )
    assert sorted(r.status_code for r in responses) == [200, 422]
    assert [codes(r) for r in responses if r.status_code == 422] == [["national_cap"]]
    monkeypatch.undo()

    # Two selections at once in a region whose quota is one.
    responses = await asyncio.gather(*(decide(client, guyane_ars, i) for i in guyane))
    assert sorted(r.status_code for r in responses) == [200, 422]
    assert [codes(r) for r in responses if r.status_code == 422] == [["regional_quota"]]
    async with database.sessions() as session:
        selected = await session.execute(
            text("SELECT region_code FROM pilot_application WHERE status = 'selected'")
        )
        regions = sorted(selected.scalars())
    assert regions in (["01", "03"], ["02", "03"])
