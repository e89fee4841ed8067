"""Controls through the API (instruction 2023/13, annexe 4 C): signals on a data set with
planted patterns, the region's list by risk, the yearly plan drawn and replayed, a control
that finds an overpayment followed until recovered, and who may see and do what."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from app.clock import Month, today
from app.db import raw_connection
from app.extracts.models import REQUIRED_COUNTS
from app.extracts.repository import rebuild_latest
from tests.test_extracts import extract, push

MONTHS = 18
FIRST = Month.current().plus(-MONTHS - 3)  # a 3-month first window, then 18 months


def honest(step: int, n: int) -> dict[str, int]:
    """Counts above every target that move a little every month, different for each n."""
    wobble = (step * 7 + n * 3) % 5
    size = 100 + 10 * n + wobble
    return {
        "accompanied_persons": size,
        "eligible_persons": size - 5,
        "mssante_messages_sent": size - 20 + 2 * wobble,
        "dmp_fed_persons": size - 20,
        "active_files": size - 5,
        "active_files_with_care_project": size - 11,
        "active_files_with_agenda_event": size - 12,
    }


def periods(make) -> list[tuple[Month, Month, dict[str, int]]]:
    found = [(FIRST, FIRST.plus(2), make(0))]
    for step in range(1, MONTHS + 1):
        month = FIRST.plus(2 + step)
        found.append((month, month, make(step)))
    return found


async def write_series(session, finess: str, vendor: str, series, received_days: int = 5):
    """The current revision of each period, received a few days after its end."""
    conn = await raw_connection(session)
    await conn.executemany(
        f"""INSERT INTO measurement (finess, period_start, period_end, revision, withdrawn,
                first_window, vendor_siren, received_at, warnings, {", ".join(REQUIRED_COUNTS)})
            VALUES ($1, $2, $3, 1, false, $4, $5, $6, '[]',
                    {", ".join(f"${i}" for i in range(7, 7 + len(REQUIRED_COUNTS)))})""",
        [
            (
                finess,
                start.first_day,
                end.first_day,
                index == 0,
                vendor,
                end.plus(1).first_day + timedelta(days=received_days),
                *(counts[c] for c in REQUIRED_COUNTS),
            )
            for index, (start, end, counts) in enumerate(series)
        ],
    )


async def planted(session, factory, client):
    """Region 11: honest establishments and one for each pattern, all of one vendor's
    project, whose expense statement comes just after one establishment's sudden jump."""
    vendor = await factory.vendor()
    cases = [
        "honest_1",
        "honest_2",
        "honest_3",
        "at_target_plateau",
        "late_jump",
        "repeated_counts",
        "shared_counts_a",
        "shared_counts_b",
        "mssante_far_above",
        "active_files_equal_accompanied",
        "late_passing_revision",
        "frozen_period_revision",
    ]
    numbers = {
        case: await factory.establishment("75" if i % 2 else "92") for i, case in enumerate(cases)
    }
    project = await factory.project(vendor, list(numbers.values()), region="11")
    jump_step = 12
    jump_month = FIRST.plus(2 + jump_step)
    statement = jump_month.plus(1).first_day + timedelta(days=9)
    await session.execute(
        text(
            "INSERT INTO project_event (project_id, type, date, amount) "
            "VALUES (:p, 'expense_statement', :d, 1000)"
        ),
        {"p": project, "d": statement},
    )

    def plateau(step):  # dmp 70.5 % every month
        return honest(step, 4) | {"eligible_persons": 95, "dmp_fed_persons": 67}

    def jump(step):
        return honest(step, 5) | ({} if step >= jump_step else {"dmp_fed_persons": 40})

    def repeated(step):
        return honest(step if step < 8 else 8, 6)

    def mssante(step):
        return honest(step, 8) | ({"mssante_messages_sent": 3000} if step == 5 else {})

    def equal(step):
        counts = honest(step, 9)
        return counts | {"active_files": counts["accompanied_persons"]}

    makers = {
        "honest_1": lambda s: honest(s, 1),
        "honest_2": lambda s: honest(s, 2),
        "honest_3": lambda s: honest(s, 3),
        "at_target_plateau": plateau,
        "late_jump": jump,
        "repeated_counts": repeated,
        "shared_counts_a": lambda s: honest(s, 7),
        "shared_counts_b": lambda s: honest(s, 7),
        "mssante_far_above": mssante,
        "active_files_equal_accompanied": equal,
        "late_passing_revision": lambda s: honest(s, 10),
    }
    for case, make in makers.items():
        await write_series(session, numbers[case], vendor, periods(make))

    # A month first declared failing (dmp 20 %), corrected 200 days after the month: the
    # update moves the first revision into the history, as ingestion does.
    revised = FIRST.plus(6)
    finess = numbers["late_passing_revision"]
    conn = await raw_connection(session)
    await conn.execute(
        "UPDATE measurement SET dmp_fed_persons = eligible_persons / 5 "
        "WHERE finess = $1 AND period_start = $2",
        finess,
        revised.first_day,
    )
    await conn.execute(
        "UPDATE measurement SET revision = 2, received_at = $3, "
        "dmp_fed_persons = eligible_persons - 15 WHERE finess = $1 AND period_start = $2",
        finess,
        revised.first_day,
        revised.plus(1).first_day + timedelta(days=200),
    )
    await rebuild_latest(conn)

    # Through ingestion: a series, its first window frozen, then a revision of it refused.
    frozen = numbers["frozen_period_revision"]
    headers = await factory.token("vendor", vendor=vendor)
    rows = [
        extract(frozen, str(start), str(end), **honest(step, 11))
        for step, (start, end, _) in enumerate(periods(lambda s: honest(s, 11)))
    ]
    await push(client, headers, *rows)
    await conn.execute(
        "UPDATE measurement SET locked_by_event_id = 1 WHERE finess = $1 AND period_start = $2",
        frozen,
        FIRST.first_day,
    )
    refused = await push(
        client, headers, extract(frozen, str(FIRST), str(FIRST.plus(2)), **honest(0, 12))
    )
    assert refused["results"][0]["errors"][0]["code"] == "period_locked"
    return numbers, project


async def test_every_planted_pattern_is_flagged_with_its_reason(client, factory, session):
    numbers, project = await planted(session, factory, client)
    ars = await factory.token("ars", region="11")
    response = await client.get("/api/v1/controls/risk", headers=ars)
    assert response.status_code == 200, response.text
    body = response.json()
    found = {item["finess"]: item for item in body["items"]}
    expected = {
        case: set() if case.startswith("honest") else {case.removesuffix("_a").removesuffix("_b")}
        for case in numbers
    }
    assert {case: {s["code"] for s in found[n]["signals"]} for case, n in numbers.items()} == (
        expected
    )
    assert body["establishments_with_data"] == 12 and body["flagged"] == 9

    jump = found[numbers["late_jump"]]["signals"][0]
    assert jump["figures"]["milestone"] == "expense_statement"
    assert jump["figures"]["jumps"] == {"dmp_rate": [27.2, 89.9]}
    assert "months missing them" in jump["reason"]
    shared = found[numbers["shared_counts_a"]]["signals"][0]
    assert shared["figures"]["establishments"] == [numbers["shared_counts_b"]]
    assert len(shared["months"]) == MONTHS
    late = found[numbers["late_passing_revision"]]["signals"][0]["figures"]["revisions"][0]
    assert late["days_after_period"] > 90 and "dmp_rate" in late["indicators"]
    frozen = found[numbers["frozen_period_revision"]]["signals"][0]
    assert frozen["months"] == [str(FIRST.plus(2))]
    # riskiest first: the score is the weight of the signals found
    scores = [item["risk_score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True) and scores[-1] == 0

    one = await client.get(
        f"/api/v1/controls/establishments/{numbers['shared_counts_b']}", headers=ars
    )
    assert [s["code"] for s in one.json()["signals"]] == ["shared_counts"]
    whole = (await client.get(f"/api/v1/controls/projects/{project}", headers=ars)).json()
    assert whole["flagged"] == 9 and whole["risk_score"] == max(scores)


async def funded_region(factory, per_department: dict[str, int]) -> list[str]:
    vendor = await factory.vendor()
    numbers = [
        await factory.establishment(department)
        for department, count in per_department.items()
        for _ in range(count)
    ]
    project = await factory.project(vendor, numbers, region="11")
    await factory.paid(project, "40000.00")
    return numbers


IDF = {"75": 4, "77": 2, "78": 1, "91": 3, "92": 3, "93": 2, "94": 1, "95": 2}


async def test_the_plan_covers_every_departement_and_replays_from_its_seed(
    client, factory, session
):
    await funded_region(factory, IDF)
    closed = (await funded_region(factory, {"77": 1}))[0]  # closed in 2024: not a candidate
    await session.execute(
        text("UPDATE establishment SET closed_on = '2024-06-30' WHERE finess = :f"),
        {"f": closed},
    )
    ars = await factory.token("ars", region="11")

    async def drawn(seed: int, **extra) -> dict:
        body = {"region": "11", "year": 2025, "method": "random", "seed": seed} | extra
        response = await client.post(
            "/api/v1/controls/plans", params={"dry_run": "true"}, json=body, headers=ars
        )
        assert response.status_code == 200, response.text
        return response.json()

    first = await drawn(42)
    picked = [line["finess"] for line in first["establishments"]]
    assert sorted(line["department"] for line in first["establishments"]) == sorted(IDF)
    assert first["uncovered_departments"] == [] and first["candidates"] == 18
    assert [line["finess"] for line in (await drawn(42))["establishments"]] == picked
    assert [line["finess"] for line in (await drawn(7))["establishments"]] != picked
    assert len((await drawn(42, extra=3))["establishments"]) == len(IDF) + 3

    stored = await client.post(
        "/api/v1/controls/plans",
        json={"region": "11", "year": 2025, "method": "random", "seed": 42},
        headers=ars,
    )
    assert stored.status_code == 201, stored.text
    plan = stored.json()
    assert [line["finess"] for line in plan["establishments"]] == picked
    replay = await client.get(f"/api/v1/controls/plans/{plan['id']}/replay", headers=ars)
    assert replay.json() == {
        "plan_id": plan["id"],
        "seed": 42,
        "matches": True,
        "establishments": picked,
    }
    again = await client.post(
        "/api/v1/controls/plans", json={"region": "11", "year": 2025}, headers=ars
    )
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "year"
    audit = (await client.get("/api/v1/audit", headers=ars)).json()
    drawn_entry = next(e for e in audit["items"] if e["action"] == "controls.plan_draw")
    assert drawn_entry["detail"]["seed"] == 42
    assert drawn_entry["detail"]["establishments"] == picked


async def summary_to_recover(client, headers) -> str:
    response = await client.get("/api/v1/dashboards/summary", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["funding"]["to_recover"]


async def test_a_control_finds_an_overpayment_followed_until_recovered(client, factory):
    (finess, other) = await funded_region(factory, {"75": 2})
    ars = await factory.token("ars", region="11")
    before = await summary_to_recover(client, ars)
    day = (today() - timedelta(days=30)).isoformat()
    control = {
        "finess": finess,
        "kind": "on_site",
        "controlled_on": day,
        "findings": "Matériel facturé deux fois",
        "compliant": False,
        "unduly_paid": "1500.00",
    }
    wrong = await client.post("/api/v1/controls", json=control | {"compliant": True}, headers=ars)
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "unduly_paid"
    created = await client.post("/api/v1/controls", json=control, headers=ars)
    assert created.status_code == 201, created.text
    assert created.json()["recovery_status"] == "to_notify"
    cid = created.json()["id"]
    assert float(await summary_to_recover(client, ars)) == float(before) + 1500
    grades = await factory.token("grades", region="11")  # controls are not the GRADeS's
    assert await summary_to_recover(client, grades) == before

    async def step(body: dict) -> object:
        return await client.post(f"/api/v1/controls/{cid}/recovery", json=body, headers=ars)

    early = await step({"type": "recovered", "date": day, "proof_reference": "TR-1"})
    assert early.status_code == 409 and early.json()["errors"][0]["code"] == "not_notified"
    assert (
        await step({"type": "notified", "date": day, "proof_reference": "AR 2025-117"})
    ).status_code == 201
    too_much = await step(
        {"type": "recovered", "date": day, "amount": "1500.01", "proof_reference": "TR-1"}
    )
    assert too_much.status_code == 422 and too_much.json()["errors"][0]["field"] == "amount"
    part = await step(
        {"type": "recovered", "date": day, "amount": "500.00", "proof_reference": "TR-1"}
    )
    assert part.status_code == 201 and part.json()["amount"] == "500.00"
    assert float(await summary_to_recover(client, ars)) == float(before) + 1000
    rest = await step({"type": "recovered", "date": day, "proof_reference": "TR-2"})
    assert rest.json()["amount"] == "1000.00"
    read = (await client.get(f"/api/v1/controls/{cid}", headers=ars)).json()
    assert (read["recovered"], read["remaining"], read["recovery_status"]) == (
        "1500.00",
        "0.00",
        "recovered",
    )
    assert [e["proof_reference"] for e in read["recovery_events"]] == [
        "AR 2025-117",
        "TR-1",
        "TR-2",
    ]
    assert await summary_to_recover(client, ars) == before
    # the same project was advanced 40 000 €: 1 500 are already found unduly paid
    above = await client.post(
        "/api/v1/controls", json=control | {"finess": other, "unduly_paid": "38500.01"}, headers=ars
    )
    assert above.status_code == 422, above.text
    (error,) = above.json()["errors"]
    assert (error["field"], error["code"]) == ("unduly_paid", "above_what_was_paid")
    assert "38500.00" in error["message"]
    compliant = await client.post(
        "/api/v1/controls",
        json=control | {"finess": other, "compliant": True, "unduly_paid": "0"},
        headers=ars,
    )
    assert compliant.json()["recovery_status"] == "none"


def documents_control(finess: str, unduly_paid: str) -> dict:
    """A control on documents today that finds `unduly_paid` euros unduly paid."""
    return {
        "finess": finess,
        "kind": "documents",
        "controlled_on": today().isoformat(),
        "findings": "Factures absentes",
        "compliant": False,
        "unduly_paid": unduly_paid,
    }


async def test_nothing_can_be_found_unduly_paid_where_nothing_was_paid(client, factory):
    vendor = await factory.vendor()
    unpaid = [await factory.establishment("75")]
    await factory.project(vendor, unpaid, region="11")
    alone = await factory.establishment("75")  # in no funded project
    ars = await factory.token("ars", region="11")
    for finess in (unpaid[0], alone):
        refused = await client.post(
            "/api/v1/controls",
            json=documents_control(finess, "0.01"),
            headers=ars,
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["code"] == "above_what_was_paid"


async def test_an_ars_acts_for_its_region_national_reads_grades_and_vendors_have_no_access(
    client, factory
):
    (finess,) = await funded_region(factory, {"75": 1})
    ars = await factory.token("ars", region="11")
    plan = await client.post(
        "/api/v1/controls/plans", json={"region": "11", "year": 2024, "seed": 1}, headers=ars
    )
    control = await client.post(
        "/api/v1/controls",
        json=documents_control(finess, "10.00"),
        headers=ars,
    )
    pid, cid = plan.json()["id"], control.json()["id"]
    reads = [
        "/api/v1/controls/risk",
        "/api/v1/controls/plans",
        f"/api/v1/controls/plans/{pid}",
        f"/api/v1/controls/plans/{pid}/replay",
        "/api/v1/controls",
        f"/api/v1/controls/{cid}",
        f"/api/v1/controls/establishments/{finess}",
    ]
    national = await factory.token("national")
    for path in reads:
        assert (await client.get(path, headers=national)).status_code == 200, path
    vendor = await factory.vendor()
    for headers in (
        await factory.token("grades", region="11"),
        await factory.token("vendor", vendor=vendor),
    ):
        for path in reads:
            assert (await client.get(path, headers=headers)).status_code == 403, path
        refused = await client.post(
            "/api/v1/controls/plans", json={"region": "11", "year": 2026}, headers=headers
        )
        assert refused.status_code == 403
    writes = [
        ("/api/v1/controls/plans", {"region": "11", "year": 2026}),
        (
            f"/api/v1/controls/{cid}/recovery",
            {"type": "notified", "date": "2025-01-01", "proof_reference": "x"},
        ),
    ]
    for path, body in writes:
        assert (await client.post(path, json=body, headers=national)).status_code == 403, path

    elsewhere = await factory.token("ars", region="84")
    for path in reads[2:4] + reads[5:]:
        assert (await client.get(path, headers=elsewhere)).status_code == 404, path
    assert (
        await client.get("/api/v1/controls/risk", params={"region": "11"}, headers=elsewhere)
    ).status_code == 404
    listed = (await client.get("/api/v1/controls", headers=elsewhere)).json()
    assert listed["items"] == [] and listed["remaining_to_recover"] == "0.00"
    assert (await client.get("/api/v1/controls/plans", headers=elsewhere)).json() == []
    for path, body in [
        ("/api/v1/controls/plans", {"region": "11", "year": 2026}),
        (
            f"/api/v1/controls/{cid}/recovery",
            {"type": "notified", "date": "2025-01-01", "proof_reference": "x"},
        ),
        ("/api/v1/controls", control.json() | {"compliant": True, "unduly_paid": "0"}),
    ]:
        assert (await client.post(path, json=body, headers=elsewhere)).status_code == 404, path
    assert (await summary_to_recover(client, elsewhere)) == "0.00"


async def test_a_frozen_revision_is_kept_when_its_atomic_batch_is_refused_not_in_a_dry_run(
    client, factory, session
):
    _, (finess, other), headers = await factory.vendor_with_establishments(2)
    first = extract(finess, str(FIRST), str(FIRST.plus(2)), **honest(0, 1))
    await push(client, headers, first, extract(other, str(FIRST), str(FIRST.plus(2))))
    await session.execute(
        text("UPDATE measurement SET locked_by_event_id = 1 WHERE finess = :f"), {"f": finess}
    )

    async def attempts() -> int:
        return (
            await session.execute(
                text("SELECT count(*) FROM frozen_revision_attempt WHERE finess = :f"),
                {"f": finess},
            )
        ).scalar_one()

    revision = first | honest(0, 2)
    good = extract(other, str(FIRST.plus(3)), str(FIRST.plus(3)))
    tried = await push(client, headers, revision, good, dry_run="true")
    assert tried["results"][0]["errors"][0]["code"] == "period_locked"
    assert await attempts() == 0  # a dry run stores nothing
    whole = await push(client, headers, revision, good, atomic="true")
    assert [r["outcome"] for r in whole["results"]] == ["rejected", "skipped"]
    assert await attempts() == 1
    ars = await factory.token("ars", region="11")
    signals = (await client.get(f"/api/v1/controls/establishments/{finess}", headers=ars)).json()
    assert [s["code"] for s in signals["signals"]] == ["frozen_period_revision"]


async def test_the_risk_list_is_kept_until_the_data_moves(client, factory, session):
    numbers, _ = await planted(session, factory, client)
    ars = await factory.token("ars", region="11")

    async def flagged() -> set[str]:
        response = await client.get(
            "/api/v1/controls/risk", params={"flagged_only": "true"}, headers=ars
        )
        assert response.status_code == 200, response.text
        return {item["finess"] for item in response.json()["items"]}

    first = await flagged()
    steady = numbers["honest_1"]
    assert steady not in first and await flagged() == first  # kept: the same list
    # the honest establishment's vendor insists on a frozen period: refused, recorded,
    # audited, and the next list shows it
    await session.execute(
        text("UPDATE measurement SET locked_by_event_id = 1 WHERE finess = :f"), {"f": steady}
    )
    siren = await session.execute(
        text("SELECT vendor_siren FROM measurement WHERE finess = :f LIMIT 1"), {"f": steady}
    )
    vendor = await factory.token("vendor", vendor=siren.scalar_one())
    refused = await push(
        client, vendor, extract(steady, str(FIRST), str(FIRST.plus(2)), **honest(0, 13))
    )
    assert refused["results"][0]["errors"][0]["code"] == "period_locked"
    assert await flagged() == first | {steady}
