"""Lists of projects read each project's standing as kept in `project_standing`: after each
write the lists show what the compliance rule says at once, the kept rows equal a full
recomputation by the rule, the overdue flag follows the calendar without any write, and a
refresh racing a write loses neither the write nor its mark."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal, Role
from app.campaigns import current_campaign
from app.clock import Month, today
from app.dashboards import service as dashboards
from app.dashboards.schemas import ReportRow
from app.db import raw_connection
from app.projects import standings
from app.projects.models import Project, ProjectEvent
from app.projects.payments import ProjectStanding
from app.projects.payments import standings as rule
from app.projects.standings import ListQuery
from app.referential.finess import make_finess
from app.referential.importer import import_finess_file
from tests.console.helpers import sign_in
from tests.factories import valid_siren
from tests.test_balance_flow import MEETS, create_project, event
from tests.test_closed_establishments import finess_plus
from tests.test_extracts import extract, push

NATIONAL = Principal(role=Role.NATIONAL, token_id=None)
ZERO = Decimal(0)


def expected_row(item: ProjectStanding) -> ReportRow:
    """The report's row as the rule gives it, computed here from the rule's own result (the
    report's former way: every project recomputed)."""
    result = item.compliance
    periods = [e.latest_period.end for e in result.establishments if e.latest_period]
    return ReportRow(
        project_id=item.project.id,
        reference=item.project.reference,
        name=item.project.name,
        region=item.project.region_code,
        vendor_siren=item.project.vendor_siren,
        funding_case=item.project.funding_case,
        establishments=len(result.establishments),
        establishments_meeting_targets=sum(1 for e in result.establishments if e.meets_targets),
        total_aid=item.project.total or ZERO,
        advance_paid=sum((e.amount or ZERO for e in item.events if e.type == "advance_paid"), ZERO),
        balance_due=result.balance_due,
        status=result.status.value,
        overdue=result.overdue,
        last_period_received=str(Month.of(max(periods))) if periods else None,
        notified_on=next((e.date for e in item.events if e.type == "notified"), None),
    )


async def report_of(client, headers, pid: int) -> dict:
    """The project's row in the monthly report the caller reads (API)."""
    rows = (await client.get("/api/v1/reports/monthly", headers=headers)).json()
    (row,) = [r for r in rows if r["project_id"] == pid]
    return row


async def listed_status(client, headers, pid: int) -> str:
    """The project's status in the API's list of projects."""
    page = (await client.get("/api/v1/projects", headers=headers)).json()
    (item,) = [i for i in page["items"] if i["id"] == pid]
    return item["status"]


async def test_the_national_lists_follow_each_write_at_once(client, factory):
    national = await factory.token("national")
    ars = await factory.token("ars", region="11")
    project, (a, b, c), vendor = await create_project(client, factory, ars)
    pid = project["id"]
    # a project created is listed at once, with no data yet
    assert await listed_status(client, national, pid) == "no_data"
    assert (await report_of(client, national, pid))["establishments"] == 3

    for kind, day in [
        ("notified", "2023-06-01"),
        ("convention_signed", "2023-07-01"),
        ("started", "2023-07-15"),
        ("advance_paid", "2023-07-20"),
    ]:
        assert (await event(client, ars, pid, kind, day)).status_code == 201
    await push(
        client,
        vendor,
        extract(a, "2025-01", "2025-03", **MEETS),
        extract(b, "2025-01", "2025-03", **MEETS),
        extract(c, "2025-01", "2025-03", **(MEETS | {"dmp_fed_persons": 69})),
    )
    row = await report_of(client, national, pid)
    assert (row["status"], row["establishments_meeting_targets"]) == ("in_progress", 2)
    assert row["overdue"] is True  # 18 months after 15/07/2023, a target still missed
    assert (row["advance_paid"], row["notified_on"]) == ("31500.00", "2023-06-01")
    assert row["last_period_received"] == "2025-03"

    # the last establishment meets its targets: the national console list shows it at once
    await push(client, vendor, extract(c, "2025-04", "2025-04", **MEETS))
    await sign_in(client, national)
    shown = await client.get("/console/projets", params={"statut": "targets_met"})
    assert shown.status_code == 200 and "IDF-2023-042" in shown.text
    row = await report_of(client, national, pid)
    assert (row["status"], row["establishments_meeting_targets"]) == ("targets_met", 3)
    assert row["overdue"] is False and row["last_period_received"] == "2025-04"

    statement = await event(client, ars, pid, "expense_statement", "2025-05-02", "60000.00")
    assert statement.status_code == 201
    assert await listed_status(client, national, pid) == "eligible"
    row = await report_of(client, national, pid)
    assert row["balance_due"] == "28500.00"  # min(63 000, 60 000) - 31 500
    eligible = await client.get("/console/projets", params={"statut": "eligible"})
    assert "IDF-2023-042" in eligible.text

    decision = await event(client, ars, pid, "balance_decision", "2025-05-10")
    assert decision.status_code == 201
    paid = await event(client, ars, pid, "balance_paid", "2025-06-01", "28500.00")
    assert paid.status_code == 201
    assert await listed_status(client, national, pid) == "balance_paid"
    assert (await report_of(client, national, pid))["status"] == "balance_paid"


def vendor_line(finess: str, period: str, met: str) -> str:
    """An establishment's line on its vendor's home."""
    link = f'<a href="/console/etablissements/{finess}">{finess}</a>'
    return f'<th scope="row">{link}</th><td>{period}</td><td>{met}</td>'


async def test_a_vendors_home_shows_its_establishments_as_the_rule_finds_them(client, factory):
    ars = await factory.token("ars", region="11")
    _, (a, b, c), vendor = await create_project(client, factory, ars)
    await push(
        client,
        vendor,
        extract(a, "2025-01", "2025-03", **MEETS),
        extract(b, "2025-01", "2025-03", **(MEETS | {"dmp_fed_persons": 69})),
    )
    await sign_in(client, vendor)
    home = (await client.get("/console/editeur")).text
    assert vendor_line(a, "2025-01 – 2025-03", "atteintes") in home
    assert vendor_line(b, "2025-01 – 2025-03", "non") in home
    assert vendor_line(c, "aucune mesure", "non") in home

    await push(client, vendor, extract(b, "2025-04", "2025-04", **MEETS))
    home = (await client.get("/console/editeur")).text
    assert vendor_line(b, "2025-04 – 2025-04", "atteintes") in home


async def test_an_establishment_closing_keeps_the_list_equal_to_the_project_page(
    client, factory, db, session, tmp_path
):
    ars = await factory.token("ars", region="11")
    project, (a, b), vendor = await create_project(client, factory, ars, count=2)
    pid = project["id"]
    await push(client, vendor, extract(a, "2025-01", "2025-03", **MEETS))
    assert await listed_status(client, ars, pid) == "in_progress"

    legal = (await client.get(f"/api/v1/establishments/{b}", headers=ars)).json()[
        "legal_entity_finess"
    ]
    path = tmp_path / "structures.json"
    finess_plus(path, (b, legal, Month.current().plus(-3).first_day))
    await import_finess_file(db, path)
    marked = await session.execute(
        text("SELECT count(*) FROM project_standing_stale WHERE project_id = :p"), {"p": pid}
    )
    assert marked.scalar_one() >= 1  # the closing marks the project

    page = (await client.get(f"/api/v1/projects/{pid}/compliance", headers=ars)).json()
    assert page["status"] == "in_progress" and page["overdue"] is False
    row = await report_of(client, ars, pid)
    assert (row["status"], row["overdue"], row["establishments"]) == ("in_progress", False, 2)


async def test_the_api_list_filters_by_status_and_pages_in_order(client, factory):
    ars = await factory.token("ars", region="11")
    made = []
    for n in range(5):
        project, numbers, vendor = await create_project(
            client, factory, ars, count=1, reference=f"IDF-2023-{n:03d}"
        )
        made.append(project["id"])
        if n % 2:
            await push(client, vendor, extract(numbers[0], "2025-01", "2025-03", **MEETS))
    met = (
        await client.get(
            "/api/v1/projects", params={"status": "targets_met", "limit": 1}, headers=ars
        )
    ).json()
    assert met["total"] == 2 and [i["id"] for i in met["items"]] == [made[1]]
    second = (
        await client.get(
            "/api/v1/projects",
            params={"status": "targets_met", "limit": 1, "offset": 1},
            headers=ars,
        )
    ).json()
    assert [i["id"] for i in second["items"]] == [made[3]]
    everything = (await client.get("/api/v1/projects", headers=ars)).json()
    assert [i["id"] for i in everything["items"]] == made and everything["total"] == 5


# The kept rows against the rule, on a generated data set --------------------------------


def _counts(rng: random.Random) -> dict[str, int]:
    """Counts that meet every target, or miss one of them by a little."""
    counts = dict(MEETS)
    if rng.random() < 0.4:
        name = rng.choice(["mssante_messages_sent", "dmp_fed_persons", "active_files"])
        counts[name] = rng.choice([0, 50, 69])
    return counts


async def _random_events(session: AsyncSession, rng: random.Random, pid: int) -> None:
    day = date(2023, 6, 1) + timedelta(days=rng.randrange(0, 600))
    for kind, chance in [
        ("notified", 0.8),
        ("started", 0.6),
        ("advance_paid", 0.6),
        ("expense_statement", 0.4),
        ("balance_paid", 0.1),
    ]:
        if rng.random() < chance:
            amount = (
                Decimal(rng.randrange(1_000, 90_000))
                if kind in ("advance_paid", "expense_statement", "balance_paid")
                else None
            )
            session.add(ProjectEvent(project_id=pid, type=kind, date=day, amount=amount))
            day += timedelta(days=rng.randrange(1, 120))
    await session.flush()


async def _assert_rows_equal_the_rule(session: AsyncSession, days: list[date]) -> list[ReportRow]:
    projects = list((await session.execute(select(Project).order_by(Project.id))).scalars())
    seen: list[ReportRow] = []
    for day in days:
        rows, total = await standings.in_establishment_scope(
            session, "true", {}, ListQuery(sort="id"), day
        )
        kept = [dashboards.report_row(row) for row in rows]
        computed = [
            expected_row(item)
            for item in await rule(session, projects, day)
            if item.compliance.establishments  # a project is in a scope by its members
        ]
        assert kept == computed and total == len(computed)
        seen += kept
    return seen


async def test_kept_rows_equal_the_rule_on_a_generated_data_set(client, factory, session):
    rng = random.Random(20231)
    vendor = await factory.vendor()
    headers = await factory.token("vendor", vendor=vendor)
    members: dict[int, list[str]] = {}
    for n in range(24):
        numbers = [await factory.establishment("75") for _ in range(rng.randrange(1, 4))]
        pid = await factory.project(
            vendor,
            numbers,
            funding_case=rng.choice(["acquisition", "upgrade", "generalisation"]),
            guichet="national" if rng.random() < 0.2 else "regional",
            total=Decimal(rng.randrange(20_000, 120_000)),
            reference=f"GEN-{n:02d}",
        )
        members[pid] = numbers
        await _random_events(session, rng, pid)
    rows = [
        extract(finess, "2025-01", "2025-03", **_counts(rng))
        for numbers in members.values()
        for finess in numbers
        if rng.random() < 0.8
    ]
    await push(client, headers, *rows)
    days = [date(2024, 6, 1), date(2025, 3, 1), today()]
    kept = await _assert_rows_equal_the_rule(session, days)
    # the set covers what the rule tells apart, on one day or another
    assert {r.status for r in kept} == {
        "no_data",
        "in_progress",
        "targets_met",
        "eligible",
        "balance_paid",
    }
    assert {r.overdue for r in kept} == {True, False}

    # Later writes, of every kind the rule reads: only the marked projects are recomputed.
    rows = [
        extract(finess, "2025-04", "2025-04", **_counts(rng))
        for numbers in members.values()
        for finess in numbers
        if rng.random() < 0.5
    ]
    await push(client, headers, *rows)
    for pid in rng.sample(sorted(members), 5):
        await _random_events(session, rng, pid)
    moved_from, moved_to = rng.sample(sorted(members), 2)
    await session.execute(
        text("UPDATE project_establishment SET project_id = :to WHERE finess = :f"),
        {"to": moved_to, "f": members[moved_from][0]},
    )
    changed = rng.choice(sorted(members))
    await session.execute(
        text("UPDATE project SET total = total + 5000 WHERE id = :p"), {"p": changed}
    )
    session.expire_all()
    marked = await session.execute(
        text("SELECT count(DISTINCT project_id) FROM project_standing_stale")
    )
    assert await standings.refresh(session, today()) == marked.scalar_one() < len(members)
    await _assert_rows_equal_the_rule(session, days)


# The overdue flag follows the calendar --------------------------------------------------


async def test_the_overdue_flag_flips_when_the_day_passes_the_delay_without_a_write(
    client, factory, session
):
    ars = await factory.token("ars", region="11")
    project, (a, _b), vendor = await create_project(client, factory, ars, count=2)
    pid = project["id"]
    for kind, day in [
        ("notified", "2023-06-01"),
        ("convention_signed", "2023-07-01"),
        ("started", "2023-07-15"),
    ]:
        assert (await event(client, ars, pid, kind, day)).status_code == 201
    await push(client, vendor, extract(a, "2025-01", "2025-03", **MEETS))  # B never reports
    ars_principal = Principal(role=Role.ARS, token_id=None, region_code="11")

    async def overdue_on(day: date) -> bool:
        rows, _ = await standings.visible(session, ars_principal, ListQuery(), day)
        (row,) = [r for r in rows if r["project_id"] == pid]
        return row["overdue"]

    # acquisition: 18 months from 15/07/2023, so overdue from 16/01/2025 on
    assert await overdue_on(date(2025, 1, 15)) is False
    assert await standings.refresh(session, date(2025, 1, 16)) == 0  # nothing written
    assert await overdue_on(date(2025, 1, 16)) is True


# Refreshes racing writes and each other -------------------------------------------------


async def _committed_project(engine) -> tuple[int, str, str]:
    """A vendor, an establishment and its project, committed (the race needs several
    connections); its id, FINESS and vendor."""
    serial = random.randrange(100_000, 900_000)
    finess, legal = make_finess("75", serial), make_finess("75", serial + 1)
    siren = valid_siren(serial)
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO vendor (siren, name) VALUES (:s, 'Course')"), {"s": siren}
        )
        await conn.execute(
            text(
                "INSERT INTO establishment (finess, name, legal_entity_finess, department, "
                "region_code, category_code) VALUES (:f, 'EHPAD', :l, '75', '11', '500')"
            ),
            {"f": finess, "l": legal},
        )
        pid = (
            await conn.execute(
                text(
                    "INSERT INTO project (reference, name, region_code, vendor_siren, software, "
                    "funding_case, submitted_on, campaign, amoa_requested, total, warnings) "
                    "VALUES (:r, 'Course', '11', :s, 'DUI', 'acquisition', '2023-03-01', "
                    "'2023', false, 21000, '[]') RETURNING id"
                ),
                {"r": f"RACE-{serial}", "s": siren},
            )
        ).scalar_one()
        await conn.execute(
            text(
                "INSERT INTO project_establishment (finess, project_id, funding_case, rank) "
                "VALUES (:f, :p, 'acquisition', 1)"
            ),
            {"f": finess, "p": pid},
        )
    return pid, finess, siren


async def _forget(engine, pid: int, finess: str, siren: str) -> None:
    async with engine.begin() as conn:
        for sql in (
            "DELETE FROM project_event WHERE project_id = :p",
            "DELETE FROM project_establishment WHERE project_id = :p",
            "DELETE FROM project_standing_stale WHERE project_id = :p",
            "DELETE FROM project WHERE id = :p",
            "DELETE FROM establishment WHERE finess = :f",
            "DELETE FROM vendor WHERE siren = :s",
        ):
            await conn.execute(text(sql), {"p": pid, "f": finess, "s": siren})


async def _write_event(
    engine, pid: int, kind: str, day: date, amount: Decimal | None = None
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO project_event (project_id, type, date, amount) VALUES (:p, :t, :d, :a)"
            ),
            {"p": pid, "t": kind, "d": day, "a": amount},
        )


async def _reader(conn) -> AsyncSession:
    """A read's session: autocommit, as `Database.readers` gives it."""
    await conn.execution_options(isolation_level="AUTOCOMMIT")
    return AsyncSession(bind=conn, expire_on_commit=False, autoflush=False)


async def _advance_listed(session: AsyncSession, pid: int) -> Decimal:
    rows, _ = await standings.visible(session, NATIONAL, ListQuery(), today())
    (row,) = [r for r in rows if r["project_id"] == pid]
    return row["advance_paid"]


@pytest.fixture
async def committed(engine):
    made = await _committed_project(engine)
    try:
        yield made
    finally:
        await _forget(engine, *made)


async def test_a_write_committed_during_a_refresh_keeps_its_mark(engine, committed):
    pid, _, _ = committed
    async with engine.connect() as a_conn, engine.connect() as b_conn:
        reader, later = await _reader(a_conn), await _reader(b_conn)
        assert await _advance_listed(reader, pid) == 0
        await _write_event(engine, pid, "notified", date(2023, 6, 1))
        async with engine.connect() as writer, writer.begin():
            # the writer holds the project's standing row: a refresh computes the project,
            # then waits to write its row…
            await writer.execute(
                text("SELECT FROM project_standing WHERE project_id = :p FOR UPDATE"),
                {"p": pid},
            )
            refreshing = asyncio.create_task(standings.refresh(reader, today()))
            await asyncio.sleep(0.3)
            assert not refreshing.done()
            # …while an advance is recorded and committed, after the refresh read the events
            await writer.execute(
                text(
                    "INSERT INTO project_event (project_id, type, date, amount) "
                    "VALUES (:p, 'advance_paid', :d, 10500)"
                ),
                {"p": pid, "d": date(2023, 7, 20)},
            )
        assert await refreshing == 1

        # the advance's mark survived the refresh: the next read shows the advance
        assert await _advance_listed(later, pid) == Decimal("10500.00")


async def test_two_readers_refreshing_at_once_compute_a_project_once(engine, committed):
    pid, _, _ = committed
    campaign = current_campaign()
    async with engine.connect() as a_conn, engine.connect() as b_conn:
        first, second = await _reader(a_conn), await _reader(b_conn)
        await standings.refresh(first, today())
        await _write_event(engine, pid, "notified", date(2023, 6, 1))

        raw = await raw_connection(first)
        transaction = raw.transaction()
        await transaction.start()
        taken = await standings.take_marked(raw, campaign)
        waiting = asyncio.create_task(standings.refresh(second, today()))
        await asyncio.sleep(0.2)
        assert not waiting.done()  # the second reader waits for the first one's refresh
        await standings.store(first, taken, today(), campaign)
        await transaction.commit()
        assert taken == [pid] and await waiting == 0  # then finds nothing left to compute
        rows, _ = await standings.visible(second, NATIONAL, ListQuery(), today())
        (row,) = [r for r in rows if r["project_id"] == pid]
        assert row["notified_on"] == date(2023, 6, 1)


class _Refreshed(logging.Handler):
    """Sets an event when a background refresh says it recomputed projects."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.done = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "standings refreshed":
            self.done.set()


async def test_each_process_refreshes_the_marked_standings_in_the_background(
    client, factory, db, session
):
    ars = await factory.token("ars", region="11")
    project, _, _ = await create_project(client, factory, ars)
    logger, refreshed = logging.getLogger(standings.__name__), _Refreshed()
    level = logger.level
    logger.addHandler(refreshed)
    logger.setLevel(logging.INFO)
    refresher = asyncio.create_task(standings.keep_fresh(db, 0.01))
    try:
        # the test shares its connection with the refresher: stop it between two rounds
        async with asyncio.timeout(30):
            await refreshed.done.wait()
    finally:
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
        logger.removeHandler(refreshed)
        logger.setLevel(level)
    kept = await session.execute(
        text(
            "SELECT s.status, (SELECT count(*) FROM project_standing_stale) AS marked "
            "FROM project_standing s WHERE s.project_id = :p"
        ),
        {"p": project["id"]},
    )
    assert kept.one() == ("no_data", 0)  # computed before any list was read


async def test_a_page_far_past_the_end_is_empty_and_counts_the_projects(client, factory):
    ars = await factory.token("ars", region="11")
    await create_project(client, factory, ars, count=1)
    page = await client.get("/api/v1/projects", params={"offset": 10**20}, headers=ars)
    assert page.status_code == 200
    assert (page.json()["items"], page.json()["total"]) == ([], 1)


async def test_rows_computed_under_another_campaign_are_recomputed_without_a_write(
    client, factory, session
):
    ars = await factory.token("ars", region="11")
    project, (a,), vendor = await create_project(client, factory, ars, count=1)
    pid = project["id"]
    await push(client, vendor, extract(a, "2025-01", "2025-03", **MEETS))  # DMP 70 %
    assert await listed_status(client, ars, pid) == "targets_met"

    # a campaign file asking 80 % of DMP: no data moved, every row is recomputed
    current = current_campaign()
    stricter = dataclasses.replace(current, targets={**current.targets, "dmp_rate": Decimal(80)})
    assert await standings.refresh(session, today(), stricter) >= 1
    kept = await session.execute(
        text("SELECT status FROM project_standing WHERE project_id = :p"), {"p": pid}
    )
    assert kept.scalar_one() == "in_progress"
    # and back under the campaign in force
    assert await listed_status(client, ars, pid) == "targets_met"
