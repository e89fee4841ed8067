"""A project's life through the API: creation, convention, advance, extracts, expense
statement, balance decision (which freezes its measurements) and payment."""

from __future__ import annotations

from app.referential.finess import make_finess
from tests.test_extracts import extract, push

MEETS = {
    "accompanied_persons": 100,
    "eligible_persons": 100,
    "mssante_messages_sent": 80,
    "dmp_fed_persons": 70,
    "active_files": 95,
    "active_files_with_care_project": 90,
    "active_files_with_agenda_event": 95,
}


async def create_project(client, factory, admin, count=3, reference="IDF-2023-042", region="11"):
    vendor = await factory.vendor()
    department = {"11": "75", "84": "69"}[region]
    legal = make_finess(department, 990_000 + count)
    numbers = sorted(
        [await factory.establishment(department, legal_entity=legal) for _ in range(count)]
    )
    body = {
        "reference": reference,
        "name": "Groupement",
        "region": region,
        "vendor_siren": vendor,
        "software": "DUI",
        "funding_case": "acquisition",
        "submitted_on": "2023-03-01",
        "establishments": [{"finess": n} for n in numbers],
    }
    response = await client.post("/api/v1/projects", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return response.json(), numbers, await factory.token("vendor", vendor=vendor)


async def event(client, headers, project_id, kind, day, amount=None):
    body = {"type": kind, "date": day} | ({"amount": amount} if amount is not None else {})
    return await client.post(f"/api/v1/projects/{project_id}/events", json=body, headers=headers)


async def compliance(client, headers, project_id):
    response = await client.get(f"/api/v1/projects/{project_id}/compliance", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_walk_a_project_to_its_balance(client, factory):
    ars = await factory.token("ars", region="11")
    project, (a, b, c), vendor = await create_project(client, factory, ars)
    pid = project["id"]
    assert project["funding"]["total"] == "63000.00"  # 3 x (7 000 + 14 000)
    assert project["funding"]["advance"] == "31500.00"

    early = await event(client, ars, pid, "advance_paid", "2023-06-02")
    assert early.status_code == 422
    assert early.json()["errors"][0]["code"] == "out_of_order"
    for kind, day in [
        ("notified", "2023-06-01"),
        ("convention_signed", "2023-07-01"),
        ("started", "2023-07-15"),
    ]:
        assert (await event(client, ars, pid, kind, day)).status_code == 201
    advance = await event(client, ars, pid, "advance_paid", "2023-07-20")
    assert advance.status_code == 201 and advance.json()["amount"] == "31500.00"
    assert (await event(client, ars, pid, "advance_paid", "2023-07-21", "1.00")).status_code == 422

    assert (await compliance(client, ars, pid))["status"] == "no_data"

    await push(
        client,
        vendor,
        extract(a, "2025-01", "2025-03", **MEETS),
        extract(b, "2025-01", "2025-03", **MEETS),
        extract(c, "2025-01", "2025-03", **(MEETS | {"dmp_fed_persons": 69})),
    )
    status = await compliance(client, ars, pid)
    assert status["status"] == "in_progress"
    assert status["qualifies_for_balance"] is False
    assert status["overdue"] is True  # started 15/07/2023, 18 months for an acquisition
    blocking = [e for e in status["establishments"] if not e["meets_targets"]]
    assert blocking == [
        {
            "finess": c,
            "latest_period": {"start": "2025-01", "end": "2025-03"},
            "meets_targets": False,
            "shortfalls": [{"indicator": "dmp_rate", "value": 69.0, "target": 70, "gap": 1.0}],
            "closed_on": None,
        }
    ]
    refused = await event(client, ars, pid, "balance_decision", "2025-04-10")
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "out_of_order"

    await push(client, vendor, extract(c, "2025-04", "2025-04", **MEETS))
    status = await compliance(client, ars, pid)
    assert status["status"] == "targets_met" and status["overdue"] is False
    assert status["balance_due"] is None

    assert (
        await event(client, ars, pid, "expense_statement", "2025-05-02", "60000.00")
    ).status_code == 201
    status = await compliance(client, ars, pid)
    assert status["status"] == "eligible" and status["qualifies_for_balance"] is True
    assert status["balance_due"] == "28500.00"  # min(63 000, 60 000) - 31 500

    wrong = await event(client, ars, pid, "balance_decision", "2025-05-10", "31500.00")
    assert wrong.json()["errors"][0]["code"] == "not_balance_due"
    decision = await event(client, ars, pid, "balance_decision", "2025-05-10")
    assert decision.status_code == 201 and decision.json()["amount"] == "28500.00"

    # the measurements the decision rests on are frozen; later months are still accepted
    frozen = await push(
        client, vendor, extract(c, "2025-04", "2025-04", **(MEETS | {"active_files": 96}))
    )
    assert frozen["results"][0]["errors"][0]["code"] == "period_locked"
    later = await push(client, vendor, extract(c, "2025-05", "2025-05", **MEETS))
    assert later["status"] == "ok"
    withdraw = await client.post(
        "/api/v1/extracts/withdrawals",
        json={"finess": a, "period_start": "2025-01", "period_end": "2025-03"},
        headers=vendor,
    )
    assert withdraw.status_code == 409

    assert (await event(client, ars, pid, "balance_paid", "2025-06-01")).status_code == 201
    assert (await compliance(client, ars, pid))["status"] == "balance_paid"
    listed = await client.get("/api/v1/projects", params={"status": "balance_paid"}, headers=ars)
    assert [p["id"] for p in listed.json()["items"]] == [pid]
    events = await client.get(f"/api/v1/projects/{pid}/events", headers=ars)
    assert [e["type"] for e in events.json()] == [
        "notified",
        "convention_signed",
        "started",
        "advance_paid",
        "expense_statement",
        "balance_decision",
        "balance_paid",
    ]


async def test_overpayment_is_a_negative_balance(client, factory):
    admin = await factory.token("national")
    project, numbers, vendor = await create_project(
        client, factory, admin, count=2, reference="OVER"
    )
    pid = project["id"]
    for kind, day, amount in [
        ("notified", "2023-06-01", None),
        ("convention_signed", "2023-07-01", None),
        ("advance_paid", "2023-07-02", None),
        ("expense_statement", "2024-06-01", "15000.00"),
    ]:
        assert (await event(client, admin, pid, kind, day, amount)).status_code == 201
    await push(client, vendor, *[extract(n, "2025-01", "2025-03", **MEETS) for n in numbers])
    status = await compliance(client, admin, pid)
    assert status["status"] == "eligible"
    assert status["balance_due"] == "-6000.00"  # 15 000 declared - 21 000 advanced
    decision = await event(client, admin, pid, "balance_decision", "2025-05-10")
    assert decision.json()["amount"] == "-6000.00"


async def test_only_ars_and_national_record_events(client, factory):
    admin = await factory.token("national")
    project, _, vendor = await create_project(client, factory, admin, count=1, reference="ROLE")
    grades = await factory.token("grades", region="11")
    assert (await event(client, grades, project["id"], "notified", "2023-06-01")).status_code == 403
    assert (await event(client, vendor, project["id"], "notified", "2023-06-01")).status_code == 403
    other_ars = await factory.token("ars", region="84")
    assert (
        await event(client, other_ars, project["id"], "notified", "2023-06-01")
    ).status_code == 404
    future = await event(client, admin, project["id"], "notified", "2099-01-01")
    assert future.json()["errors"][0]["code"] == "future_date"


async def test_envelopes_count_projects_notified_before_the_deadline(client, factory):
    admin = await factory.token("national")
    on_time, _, _ = await create_project(client, factory, admin, count=2, reference="ON-TIME")
    late, _, _ = await create_project(client, factory, admin, count=1, reference="LATE")
    _pending, _, _ = await create_project(client, factory, admin, count=1, reference="PENDING")
    await event(client, admin, on_time["id"], "notified", "2023-12-29")
    await event(client, admin, late["id"], "notified", "2023-12-30")
    ars = await factory.token("ars", region="11")
    response = await client.get("/api/v1/envelopes", headers=ars)
    (line,) = response.json()
    assert line["region"] == "11" and line["envelope"] == "10344806.00"
    assert line["committed"] == "42000.00"
    assert line["remaining"] == "10302806.00"
    assert line["pending"] == "21000.00"
    assert [p["reference"] for p in line["late_projects"]] == ["LATE"]
    national = await client.get("/api/v1/envelopes", headers=admin)
    assert len(national.json()) == 19  # 18 regions and the national call
    total = sum(float(x["envelope"]) for x in national.json() if x["region"] != "national")
    assert total == 67_000_000


async def test_compliance_follows_withdrawals_and_corrections(client, factory):
    admin = await factory.token("national")
    project, (finess,), vendor = await create_project(
        client, factory, admin, count=1, reference="W"
    )
    pid = project["id"]
    failing = MEETS | {"active_files_with_agenda_event": 80}
    await push(
        client,
        vendor,
        extract(finess, "2025-01", "2025-03", **failing),
        extract(finess, "2025-04", "2025-04", **MEETS),
    )
    assert (await compliance(client, admin, pid))["status"] == "targets_met"
    withdrawn = await client.post(
        "/api/v1/extracts/withdrawals",
        json={"finess": finess, "period_start": "2025-04", "period_end": "2025-04"},
        headers=vendor,
    )
    assert withdrawn.status_code == 201
    status = await compliance(client, admin, pid)
    (item,) = status["establishments"]
    assert item["latest_period"] == {"start": "2025-01", "end": "2025-03"}
    assert [s["indicator"] for s in item["shortfalls"]] == ["agenda_rate"]
    # a correction of that first window is what counts next
    await push(client, vendor, extract(finess, "2025-01", "2025-03", **MEETS))
    assert (await compliance(client, admin, pid))["status"] == "targets_met"
