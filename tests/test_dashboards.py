"""Dashboards and exports on a small dataset whose figures are computed by hand."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from app.access.principal import Principal
from app.access.repository import principal_for_token
from app.clock import today
from app.dashboards import service
from app.errors import NotFound
from app.referential.geography import REGIONS
from tests.test_balance_flow import MEETS, create_project, event
from tests.test_extracts import extract, push


async def dataset(client, factory):
    """Region 11: one project of 4 EHPAD (A, B, C, D) and one establishment outside any
    project (E); region 84: one establishment (F)."""
    ars = await factory.token("ars", region="11")
    project, (a, b, c, d), vendor = await create_project(client, factory, ars, count=4)
    await factory.establishment("75")  # E
    await factory.establishment("69")  # F
    await push(
        client,
        vendor,
        # A meets everything; its April measure has a DMP rate of 80 %
        extract(a, "2025-01", "2025-03", **MEETS),
        extract(a, "2025-04", "2025-04", **(MEETS | {"dmp_fed_persons": 80})),
        # B misses the DMP target in its first window (60 %), then the agenda target
        extract(b, "2025-01", "2025-03", **(MEETS | {"dmp_fed_persons": 60})),
        extract(
            b,
            "2025-04",
            "2025-04",
            **(MEETS | {"dmp_fed_persons": 75, "active_files_with_agenda_event": 50}),
        ),
        # C starts a month later: its first window ends in April, DMP 90 %
        extract(c, "2025-02", "2025-04", **(MEETS | {"dmp_fed_persons": 90})),
        # D never reports
    )
    pid = project["id"]
    for kind, day in [("notified", "2023-06-01"), ("convention_signed", "2023-07-01")]:
        assert (await event(client, ars, pid, kind, day)).status_code == 201
    assert (await event(client, ars, pid, "advance_paid", "2023-07-02")).status_code == 201
    return ars, pid, (a, b, c, d)


async def test_monthly_series(client, factory):
    ars, _, _ = await dataset(client, factory)
    response = await client.get(
        "/api/v1/dashboards/monthly", params={"from": "2025-03", "to": "2025-04"}, headers=ars
    )
    assert response.status_code == 200, response.text
    march, april = response.json()["items"]
    assert march["month"] == "2025-03" and march["reporting"] == 2
    assert march["meeting"]["dmp_rate"] == 1 and march["share_meeting"]["dmp_rate"] == 50.0
    assert march["meeting_all_targets"] == 1
    assert april["reporting"] == 3  # A, B and C's first window
    assert april["meeting_all_targets"] == 2 and april["share_meeting_all_targets"] == 66.7
    assert april["meeting"]["agenda_rate"] == 2
    # DMP rates in April: 75, 80, 90 -> quartiles by linear interpolation
    assert april["quartiles"]["dmp_rate"] == {"q1": 77.5, "median": 80.0, "q3": 85.0}


async def test_summary_counts_and_funding(client, factory):
    ars, _, _ = await dataset(client, factory)
    body = (await client.get("/api/v1/dashboards/summary", headers=ars)).json()
    assert body["counts"] == {
        "establishments": 5,
        "in_projects": 4,
        "projects": 1,
        "reporting": 3,
        "reported_last_month": 0,
        "meeting_all_targets": 2,
    }
    assert body["share_meeting_all_targets"] == 66.7
    assert body["projects_by_status"]["in_progress"] == 1
    assert body["funding"] | {} == {
        "envelope": "10344806.00",
        "committed": "84000.00",
        "advanced": "42000.00",
        "payable": "0.00",
        "to_recover": "0.00",
        "balance_paid": "0.00",
    }


async def test_scope_and_filters(client, factory):
    await dataset(client, factory)
    lyon = await factory.token("ars", region="84")
    body = (await client.get("/api/v1/dashboards/summary", headers=lyon)).json()
    assert body["counts"]["establishments"] == 1 and body["counts"]["projects"] == 0
    paris = await factory.token("grades", region="11")
    other = await client.get("/api/v1/dashboards/summary", params={"region": "84"}, headers=paris)
    assert other.status_code == 404
    by_department = await client.get(
        "/api/v1/dashboards/summary", params={"department": "69"}, headers=paris
    )
    assert by_department.json()["counts"]["establishments"] == 0
    bad = await client.get("/api/v1/dashboards/monthly", params={"from": "2025-13"}, headers=paris)
    assert bad.status_code == 422


async def test_breakdowns(client, factory):
    ars, _, _ = await dataset(client, factory)
    category = (await client.get("/api/v1/dashboards/breakdown", headers=ars)).json()
    assert [
        (i["key"], i["establishments"], i["meeting_all_targets"]) for i in category["items"]
    ] == [("500", 5, 2)]
    status = await client.get(
        "/api/v1/dashboards/breakdown", params={"by": "project_status"}, headers=ars
    )
    rows = {i["key"]: i for i in status.json()["items"]}
    assert rows["in_progress"]["establishments"] == 4
    assert rows["in_progress"]["meeting_all_targets"] == 2


async def test_completeness_and_csv(client, factory):
    ars, _, (a, _b, _c, d) = await dataset(client, factory)
    page = (
        await client.get("/api/v1/dashboards/completeness", params={"limit": 3}, headers=ars)
    ).json()
    assert page["total"] == 4 and len(page["items"]) == 3
    last = {i["finess"]: i["last_period"] for i in page["items"]}
    assert last[a] == "2025-04"
    csv = await client.get("/api/v1/dashboards/completeness", params={"format": "csv"}, headers=ars)
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.content.decode("utf-8-sig").strip().splitlines()
    assert lines[0].startswith("finess,name,region") and len(lines) == 5
    assert any(line.startswith(d) and line.endswith(",") for line in lines[1:])


async def test_monthly_report_in_three_formats(client, factory):
    ars, pid, _ = await dataset(client, factory)
    (row,) = (await client.get("/api/v1/reports/monthly", headers=ars)).json()
    assert row["project_id"] == pid
    assert (row["establishments"], row["establishments_meeting_targets"]) == (4, 2)
    assert (row["total_aid"], row["advance_paid"], row["balance_due"]) == (
        "84000.00",
        "42000.00",
        None,
    )
    assert (row["status"], row["last_period_received"]) == ("in_progress", "2025-04")
    csv = await client.get("/api/v1/reports/monthly", params={"format": "csv"}, headers=ars)
    header, line = csv.content.decode("utf-8-sig").strip().splitlines()
    assert "total_aid" in header and "84000.00" in line
    xlsx = await client.get("/api/v1/reports/monthly", params={"format": "xlsx"}, headers=ars)
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    values = list(sheet.values)
    assert values[0][:3] == ("project_id", "reference", "name")
    assert values[1][0] == pid and float(values[1][values[0].index("total_aid")]) == 84000


async def test_etag_spares_a_polling_dashboard(client, factory):
    ars, _, (_a, *_rest) = await dataset(client, factory)
    first = await client.get("/api/v1/dashboards/summary", headers=ars)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, max-age=60"
    again = await client.get("/api/v1/dashboards/summary", headers={**ars, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    vendor_token = await factory.token("national")
    await client.post(
        "/api/v1/vendors", json={"siren": "732829320", "name": "x"}, headers=vendor_token
    )  # any write moves the data version
    changed = await client.get("/api/v1/dashboards/summary", headers={**ars, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag


async def test_answers_are_cached_until_data_changes(client, factory):
    ars, _, _ = await dataset(client, factory)
    first = await client.get("/api/v1/dashboards/monthly", headers=ars)
    second = await client.get("/api/v1/dashboards/monthly", headers=ars)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert first.json() == second.json()
    # another ARS token of the same region shares the cached answer
    colleague = await factory.token("ars", region="11")
    assert (await client.get("/api/v1/dashboards/monthly", headers=colleague)).headers[
        "x-cache"
    ] == "hit"
    admin = await factory.token("national")
    await client.post("/api/v1/vendors", json={"siren": "732829320", "name": "x"}, headers=admin)
    third = await client.get("/api/v1/dashboards/monthly", headers=ars)
    assert third.headers["x-cache"] == "miss"


async def test_summary_shows_the_regions_pilots(client, factory):
    ars, _, _ = await dataset(client, factory)
    pilot = await factory.pilot_application(status="selected")
    await factory.pilot_application(status="applied")
    response = await client.post(
        f"/api/v1/pilots/{pilot}/events",
        json={"type": "convention_signed", "date": "2024-02-01"},
        headers=ars,
    )
    assert response.status_code == 201, response.text
    pilots = (await client.get("/api/v1/dashboards/summary", headers=ars)).json()["pilots"]
    # Île-de-France is a large region: 5 pilots; 21 000 EUR each, committed at the convention
    assert pilots == {
        "selected": 1,
        "cap": 5,
        "budget": "105000.00",
        "committed": "21000.00",
        "paid": "0.00",
        "payable": 0,
        "late": pilots["late"],
    }
    narrowed = await client.get(
        "/api/v1/dashboards/summary", params={"category": "500"}, headers=ars
    )
    assert narrowed.json()["pilots"] is None


async def test_sql_figures_agree_with_the_balance_rules_on_the_demo_data(db, session):
    """The summary's set-based statuses and funding are the pure rules' (app.projects)."""
    from collections import Counter

    from sqlalchemy import select

    from app.access.principal import Principal, Role
    from app.clock import today
    from app.dashboards.filters import Filters
    from app.dashboards.service import funding_totals, summary
    from app.demo import DemoSize, load_demo
    from app.projects.models import Project
    from app.projects.payments import standings

    await load_demo(db, size=DemoSize(establishments=600, months=24))
    national = Principal(None, Role.NATIONAL)
    result = await summary(session, national, Filters())
    projects = list((await session.execute(select(Project))).scalars())
    items = await standings(session, projects, today())
    expected = Counter(item.compliance.status.value for item in items)
    assert result.projects_by_status == {s: expected.get(s, 0) for s in result.projects_by_status}
    assert len(set(expected)) >= 3  # the demo data reaches several statuses
    reference = funding_totals(items, result.funding.envelope)
    assert result.funding == reference


async def principal_for(session, headers: dict[str, str]) -> Principal:
    principal = await principal_for_token(session, headers["Authorization"].removeprefix("Bearer "))
    assert principal is not None
    return principal


async def test_national_view_gives_each_region_the_figures_of_its_own_summary(
    client, factory, session
):
    """The national view's nineteen summaries, gathered at once, are those the API answers
    the national team region by region and for the whole country."""
    ars, _, _ = await dataset(client, factory)  # region 11: a notified project, advance paid
    vendor = await factory.vendor()
    lyon = [await factory.establishment("69") for _ in range(2)]
    await factory.paid(await factory.project(vendor, lyon, region="84"), "30000.00")
    paris = [await factory.establishment("75")]
    await factory.paid(await factory.project(vendor, paris, region="11"), "20000.00")
    for headers, finess, amount in [
        (ars, paris[0], "1500.00"),
        (await factory.token("ars", region="84"), lyon[0], "700.00"),
    ]:
        control = {
            "finess": finess,
            "kind": "documents",
            "controlled_on": today().isoformat(),
            "findings": "Factures absentes",
            "compliant": False,
            "unduly_paid": amount,
        }
        created = await client.post("/api/v1/controls", json=control, headers=headers)
        assert created.status_code == 201, created.text
    pilot = await factory.pilot_application(status="selected", department="69")
    await factory.pilot_application(status="selected", department="75")
    await factory.pilot_application(status="applied", department="13")
    signed = await client.post(
        f"/api/v1/pilots/{pilot}/events",
        json={"type": "convention_signed", "date": "2024-02-01"},
        headers=await factory.token("ars", region="84"),
    )
    assert signed.status_code == 201, signed.text
    national = await factory.token("national")
    principal = await principal_for(session, national)

    gathered = await service.summaries_by_region(session, principal)

    assert set(gathered) == {None, *REGIONS}
    for code, summary in gathered.items():
        params = {"region": code} if code else {}
        answer = await client.get("/api/v1/dashboards/summary", params=params, headers=national)
        assert answer.status_code == 200, answer.text
        assert summary.model_dump(mode="json") == answer.json(), code
    lyon_region = gathered["84"]
    assert lyon_region.funding.to_recover == Decimal("700.00")
    assert lyon_region.counts.projects == 1 and lyon_region.pilots.committed > 0
    assert gathered["11"].funding.to_recover == Decimal("1500.00")
    assert gathered[None].funding.to_recover == Decimal("2200.00")
    assert gathered[None].pilots.selected == 2
    ars_view = await principal_for(session, ars)
    with pytest.raises(NotFound):
        await service.summaries_by_region(session, ars_view)
