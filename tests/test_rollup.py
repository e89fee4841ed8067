"""The monthly rollup answers exactly what the live aggregate answers, and follows writes."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from sqlalchemy import text

from app.access.principal import Principal, Role
from app.campaigns import current_campaign
from app.dashboards import repository, rollup, service
from app.dashboards.filters import Filters, rollup_scope
from app.db import get_database
from app.demo import DemoSize, load_demo
from tests.test_balance_flow import MEETS
from tests.test_dashboards import dataset
from tests.test_extracts import extract, push

START, END = date(2025, 1, 1), date(2025, 6, 1)
NATIONAL = Principal(None, Role.NATIONAL)
ARS_IDF = Principal(None, Role.ARS, region_code="11")
ARS_ARA = Principal(None, Role.ARS, region_code="84")
GRADES_IDF = Principal(None, Role.GRADES, region_code="11")


def basis(**changes: int) -> rollup.Basis:
    current = rollup.current_basis()
    targets = current.targets | {k: Decimal(v) for k, v in changes.items()}
    return replace(current, targets=targets)


async def live(session, principal, filters, goals=None) -> list[dict]:
    scope, params = service._params(principal, filters)
    params |= repository.target_params((goals or basis()).targets)
    return [dict(r) for r in await repository.monthly(session, scope, params, START, END)]


async def rolled(session, principal, filters, goals=None) -> list[dict]:
    scope = rollup_scope(principal, filters)
    assert scope is not None
    await rollup.refresh_stale(get_database(), goals or basis())
    rows, stale = await rollup.monthly(session, scope, goals or basis(), START, END)
    assert stale == []
    return [dict(r) for r in rows]


async def live_summary(session, principal, filters) -> tuple[dict, dict]:
    scope, params = service._params(principal, filters)
    counts = await repository.summary(session, scope, params)
    deadline = current_campaign().engagement_deadline
    figures = await repository.project_figures(session, scope, params, deadline)
    return counts, {r["status"]: dict(r) for r in figures}


async def rolled_summary(session, principal, filters) -> tuple[dict, dict]:
    scope = rollup_scope(principal, filters)
    assert scope is not None
    await rollup.refresh_stale(get_database(), basis())
    counts, figures = await rollup.summary(session, scope, basis())
    return counts, {r["status"]: dict(r) for r in figures}


async def cross_region_project(client, factory) -> tuple[str, str]:
    """A project of region 84 with G (Rhône, region 84) and H (Paris, region 11)."""
    vendor = await factory.vendor()
    g, h = await factory.establishment("69"), await factory.establishment("75")
    await factory.project(vendor, [g, h], region="84")
    headers = await factory.token("vendor", vendor=vendor)
    await push(
        client,
        headers,
        extract(g, "2025-02", "2025-04", **MEETS),
        extract(h, "2025-02", "2025-04", **(MEETS | {"dmp_fed_persons": 10})),
    )
    return g, h


CASES = [
    (NATIONAL, Filters()),
    (NATIONAL, Filters(region="11")),
    (NATIONAL, Filters(region="84")),
    (NATIONAL, Filters(department="75")),
    (NATIONAL, Filters(department="69", region="84")),
    (ARS_IDF, Filters()),
    (ARS_IDF, Filters(region="11")),
    (ARS_IDF, Filters(department="75")),
    (ARS_ARA, Filters()),
    (ARS_ARA, Filters(department="69")),
    (GRADES_IDF, Filters()),
]


async def test_rollup_equals_live_aggregate_for_every_scope(client, factory, session):
    await dataset(client, factory)
    await cross_region_project(client, factory)
    for principal, filters in CASES:
        expected = await live(session, principal, filters)
        assert await rolled(session, principal, filters) == expected, (principal, filters)
        summary = await live_summary(session, principal, filters)
        assert await rolled_summary(session, principal, filters) == summary, (principal, filters)
    # what a user reads: the ARS of 84 sees its project's Paris establishment (H) in April,
    # the region 84 filter only the Rhône one (G); Île-de-France counts H as well
    april = {
        name: next(r for r in await rolled(session, p, f) if r["month"] == date(2025, 4, 1))
        for name, p, f in [
            ("ars84", ARS_ARA, Filters()),
            ("region84", NATIONAL, Filters(region="84")),
            ("ars11", ARS_IDF, Filters()),
            ("national", NATIONAL, Filters()),
        ]
    }
    assert april["ars84"]["reporting"] == 2 and april["ars84"]["dmp_rate_met"] == 1
    assert april["region84"]["reporting"] == 1
    assert april["ars11"]["reporting"] == 4  # A, B, C and H
    assert april["national"]["reporting"] == 5
    # the ARS of 84 counts F and G (Rhône) and H (its project's Paris establishment)
    counts, statuses = await rolled_summary(session, ARS_ARA, Filters())
    assert (counts["establishments"], counts["in_projects"], counts["projects"]) == (3, 2, 1)
    assert sum(row["projects"] for row in statuses.values()) == 1


async def test_rollup_equals_live_aggregate_on_the_demo_data(db, session):
    await load_demo(db, size=DemoSize(establishments=600, months=24))
    regions = await session.execute(text("SELECT DISTINCT region_code FROM establishment"))
    departments = await session.execute(
        text("SELECT department FROM establishment GROUP BY 1 ORDER BY count(*) DESC LIMIT 3")
    )
    cases = [(NATIONAL, Filters())]
    for region in regions.scalars():
        ars = Principal(None, Role.ARS, region_code=region)
        cases += [(ars, Filters()), (NATIONAL, Filters(region=region))]
    cases += [(NATIONAL, Filters(department=d)) for d in departments.scalars()]
    compared = 0
    for principal, filters in cases:
        start, end = date(2020, 1, 1), date(2030, 1, 1)
        scope, params = service._params(principal, filters)
        params |= repository.target_params(basis().targets)
        expected = [dict(r) for r in await repository.monthly(session, scope, params, start, end)]
        await rollup.refresh_stale(db)
        rows, stale = await rollup.monthly(
            session, rollup_scope(principal, filters), basis(), start, end
        )
        assert stale == []
        assert [dict(r) for r in rows] == expected, (principal, filters)
        summary = await live_summary(session, principal, filters)
        assert await rolled_summary(session, principal, filters) == summary, (principal, filters)
        compared += len(expected)
    assert compared > 24 * 10  # every region's months, and more


async def test_scopes_the_rollup_cannot_answer_fall_back_to_the_live_aggregate(client, factory):
    assert rollup_scope(NATIONAL, Filters(category="500")) is None
    assert rollup_scope(NATIONAL, Filters(vendor="123456782")) is None
    assert rollup_scope(NATIONAL, Filters(project=1)) is None
    assert rollup_scope(Principal(None, Role.VENDOR, vendor_siren="123456782"), Filters()) is None
    # an ARS filtering on a département of another region sees only its projects there
    assert rollup_scope(ARS_IDF, Filters(department="69")) is None
    assert rollup_scope(NATIONAL, Filters(department="69", region="11")) is None
    assert rollup_scope(ARS_IDF, Filters(department="75")) == "D:75"
    assert rollup_scope(ARS_IDF, Filters()) == "A:11"
    assert rollup_scope(ARS_IDF, Filters(region="11")) == "R:11"
    assert rollup_scope(NATIONAL, Filters()) == "N"


async def test_each_write_marks_its_months_which_are_read_live_until_refreshed(
    client, factory, db, session
):
    ars, _, (a, b, c, _d) = await dataset(client, factory)
    params = {"from": "2025-03", "to": "2025-04"}

    async def april() -> dict:
        response = await client.get("/api/v1/dashboards/monthly", params=params, headers=ars)
        assert response.status_code == 200, response.text
        return response.json()["items"][-1]

    async def stale() -> list[date]:
        rows = await session.execute(text("SELECT DISTINCT month FROM rollup_stale ORDER BY 1"))
        return list(rows.scalars())

    assert await stale() == [date(2025, 3, 1), date(2025, 4, 1)]
    assert (await april())["meeting"]["dmp_rate"] == 3  # aggregated on the fly
    assert await rollup.refresh_stale(db) == ["2025-03", "2025-04", "summary"]
    assert (await april())["meeting"]["dmp_rate"] == 3  # from the rollup
    # a revision: B's April DMP falls to 60 %
    vendor = await factory.token("vendor", vendor=(await vendor_of(session, b)))
    await push(
        client, vendor, extract(b, "2025-04", "2025-04", **(MEETS | {"dmp_fed_persons": 60}))
    )
    assert await stale() == [date(2025, 4, 1)]
    for _ in ("the stale month on the fly", "then from the rollup"):
        point = await april()
        assert point["meeting"]["dmp_rate"] == 2
        assert point["quartiles"]["dmp_rate"] == {"q1": 70.0, "median": 80.0, "q3": 85.0}
        assert await rollup.refresh_stale(db) in (["2025-04", "summary"], [])
    assert await stale() == []
    # a withdrawal: A's April measure no longer counts
    withdrawn = await client.post(
        "/api/v1/extracts/withdrawals",
        json={"finess": a, "period_start": "2025-04", "period_end": "2025-04"},
        headers=vendor,
    )
    assert withdrawn.status_code == 201, withdrawn.text
    assert (await april())["reporting"] == 2
    await rollup.refresh_stale(db)
    assert (await april())["reporting"] == 2
    # an establishment that moves to another département (a FINESS update) leaves the old one
    lyon = {"from": "2025-04", "to": "2025-04", "department": "75"}
    national = await factory.token("national")
    before = await client.get("/api/v1/dashboards/monthly", params=lyon, headers=national)
    assert before.json()["items"][0]["reporting"] == 2
    await session.execute(
        text("UPDATE establishment SET department = '77' WHERE finess = :f"), {"f": c}
    )
    assert await stale() == [date(2025, 4, 1)]
    rows = await rolled(session, NATIONAL, Filters(department="75"))
    assert [r["reporting"] for r in rows if r["month"] == date(2025, 4, 1)] == [1]
    assert await rolled(session, NATIONAL, Filters(department="77")) == await live(
        session, NATIONAL, Filters(department="77")
    )


async def vendor_of(session, finess: str) -> str:
    return (
        await session.execute(
            text(
                "SELECT p.vendor_siren FROM project p JOIN project_establishment pe "
                "ON pe.project_id = p.id WHERE pe.finess = :f"
            ),
            {"f": finess},
        )
    ).scalar_one()


async def test_new_targets_rebuild_every_month(client, factory, session):
    await dataset(client, factory)
    assert await rolled(session, NATIONAL, Filters()) == await live(session, NATIONAL, Filters())
    stricter = basis(dmp_rate=85)
    rows = await rolled(session, NATIONAL, Filters(), stricter)
    assert rows == await live(session, NATIONAL, Filters(), stricter)
    # April DMP rates 75, 80, 90: only C meets 85 %
    assert [r["dmp_rate_met"] for r in rows if r["month"] == date(2025, 4, 1)] == [1]


async def test_background_refresh_takes_the_stale_months_once(client, factory, db, session):
    await dataset(client, factory)
    assert await rollup.refresh_stale(db) == ["2025-03", "2025-04", "summary"]
    assert await rollup.refresh_stale(db) == []
    await session.execute(text("UPDATE project SET name = 'Renamed'"))
    assert await rollup.refresh_stale(db) == ["summary"]
    count = await session.execute(text("SELECT count(*) FROM monthly_rollup WHERE scope = 'N'"))
    assert count.scalar_one() == 2


def test_a_reader_waits_for_the_refresh_that_took_what_it_saw():
    def marks(low, high, rebuild=False) -> rollup.Marks:
        return rollup.Marks(low, high, rebuild, None, None, False)

    seen = marks(3, 5)
    # another refresh took marks 3 to 7 meanwhile; 8 and 9 came after what this reader saw
    assert marks(8, 9).due(seen) == (False, False)
    assert marks(None, None).due(seen) == (False, False)
    # mark 5 is still there: its write is not in the rollup yet
    assert marks(5, 9).due(seen) == (True, False)
    # new targets rebuild whatever the marks
    assert marks(None, None, rebuild=True).due(seen) == (True, False)
    assert rollup.Marks(None, None, False, None, None, True).due(seen) == (False, True)
    assert marks(None, None).fresh and not marks(3, 5).fresh


async def test_a_national_summary_read_after_a_write_refreshes_the_summaries_not_the_months(
    client, factory, db, session
):
    _, _, (a, _b, _c, _d) = await dataset(client, factory)
    national = await factory.token("national")
    await rollup.refresh_stale(db)

    async def meeting() -> int:
        response = await client.get("/api/v1/dashboards/summary", headers=national)
        assert response.status_code == 200, response.text
        return response.json()["counts"]["meeting_all_targets"]

    async def marks(table: str) -> int:
        return (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()

    before = await meeting()
    # a revision: A's April DMP falls to 60 %, A no longer meets every target
    vendor = await factory.token("vendor", vendor=(await vendor_of(session, a)))
    await push(
        client, vendor, extract(a, "2025-04", "2025-04", **(MEETS | {"dmp_fed_persons": 60}))
    )
    assert await marks("summary_stale") > 0 and await marks("rollup_stale") > 0
    assert await meeting() == before - 1
    # the reader brought the summaries up to date (read from the rollup from now on); the
    # months wait for their own refresh
    assert await marks("summary_stale") == 0 and await marks("rollup_stale") > 0
    assert await rollup.refresh_stale(db) == ["2025-04"]
    # a region's reader aggregates its own scope on the fly and leaves the marks
    await push(client, vendor, extract(a, "2025-04", "2025-04", **MEETS))
    ars = await factory.token("ars", region="11")
    response = await client.get("/api/v1/dashboards/summary", headers=ars)
    assert response.json()["counts"]["meeting_all_targets"] == before
    assert await marks("summary_stale") > 0
