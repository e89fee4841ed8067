"""Several processes on one PostgreSQL: migrations under a lock, two servers writing
conflicting revisions of the same establishment-month, readiness, and reads that see at once
what another process stored."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from datetime import date
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from app import migrate
from app.access.principal import Principal, Role
from app.access.repository import create_token
from app.db import Database, async_url, make_engine
from app.extracts.ingestion import EXTRACTS
from app.ingestion import BatchOptions, ingest
from app.main import create_app
from app.referential.finess import make_finess
from app.referential.models import Establishment
from app.vendors.models import Vendor
from tests.benchmarks.common import free_port, start_server, stop_server, wait_healthy
from tests.conftest import _create_database, _dsn
from tests.factories import valid_siren
from tests.test_extracts import extract

CLI = str(Path(sys.executable).with_name("esms-usage"))


def plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def test_concurrent_migrations_apply_once(pg_server):
    url = await _create_database(pg_server, "esms_migrations")
    env = {**os.environ, "DATABASE_URL": plain(url)}
    runs = [
        await asyncio.create_subprocess_exec(
            CLI,
            "db",
            "upgrade",
            env=env,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    outcomes = [(await run.wait(), (await run.stderr.read()).decode()) for run in runs]
    assert [code for code, _ in outcomes] == [0, 0], outcomes
    assert await migrate.current_revision(url) == migrate.head_revision()


async def test_ready_says_when_the_schema_is_behind(pg_server):
    url = await _create_database(pg_server, "esms_behind")
    await migrate.upgrade(url, "0001")
    database = Database(make_engine(url))
    from app.db import get_database, set_database

    previous = None
    with contextlib.suppress(RuntimeError):
        previous = get_database()
    set_database(database)
    try:
        transport = httpx.ASGITransport(app=create_app(database))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            behind = await client.get("/ready")
            await migrate.upgrade(url)
            ready = await client.get("/ready")
    finally:
        set_database(previous)
        await database.dispose()
    assert behind.status_code == 503 and "db upgrade" in behind.json()["detail"]
    assert ready.status_code == 200 and ready.json()["schema"] == migrate.head_revision()


SIREN = valid_siren(4242)
# Every revision stored for an establishment: those superseded, and the current ones.
HISTORY = """SELECT revision FROM extract_revision WHERE finess = $1
             UNION ALL SELECT revision FROM measurement WHERE finess = $1 ORDER BY revision"""


@pytest.fixture(scope="module")
async def shared_database(pg_server):
    return await seeded_database(pg_server, "esms_two_processes")


async def seeded_database(pg_server: str, name: str) -> tuple[str, str, str]:
    """A migrated database with one vendor, one establishment in one of its projects, and
    the vendor's token: (URL, FINESS, token)."""
    url = await _create_database(pg_server, name)
    await migrate.upgrade(url)
    database = Database(make_engine(url, pool_size=2))
    siren = SIREN
    finess = make_finess("75", 424_242)
    async with database.sessions() as session:
        session.add(Vendor(siren=siren, name="Éditeur"))
        session.add(
            Establishment(
                finess=finess,
                name="EHPAD",
                legal_entity_finess=make_finess("75", 424_243),
                department="75",
                region_code="11",
                category_code="500",
            )
        )
        await session.flush()
        from app.projects.models import Project, ProjectEstablishment

        project = Project(
            reference="TWO",
            name="Two",
            region_code="11",
            vendor_siren=siren,
            software="S",
            funding_case="acquisition",
            submitted_on=date(2023, 3, 1),
        )
        session.add(project)
        await session.flush()
        session.add(
            ProjectEstablishment(
                finess=finess, project_id=project.id, funding_case="acquisition", rank=1
            )
        )
        token, _ = await create_token(session, Role.VENDOR, vendor_siren=siren)
        await session.commit()
    await database.dispose()
    return plain(url), finess, token


async def rollups_once_fresh(url: str, seconds: float = 20) -> asyncpg.Record:
    """Wait for the servers' background refresh to take every mark; the national rollup."""
    conn = await asyncpg.connect(url)
    try:
        for _ in range(int(seconds * 10)):
            marks = await conn.fetchval(
                "SELECT (SELECT count(*) FROM rollup_stale) + (SELECT count(*) FROM summary_stale)"
            )
            if marks == 0:
                return await conn.fetchrow(
                    "SELECT m.reporting, s.reporting AS current FROM monthly_rollup m, "
                    "summary_rollup s WHERE m.scope = 'N' AND s.scope = 'N'"
                )
            await asyncio.sleep(0.1)
        raise AssertionError("the rollups were not refreshed in the background")
    finally:
        await conn.close()


async def test_two_servers_never_lose_or_duplicate_a_revision(
    shared_database, tmp_path, monkeypatch
):
    url, finess, token = shared_database
    monkeypatch.setenv("ESMS_ROLLUP_REFRESH_SECONDS", "0.2")
    ports = [free_port(), free_port()]
    servers = [start_server(url, port, tmp_path / f"s{port}.log", "--no-migrate") for port in ports]
    try:
        for port, server in zip(ports, servers, strict=True):
            await wait_healthy(f"http://127.0.0.1:{port}", server, tmp_path / f"s{port}.log")
        headers = {"Authorization": f"Bearer {token}"}

        async def send(client: httpx.AsyncClient, agenda: int) -> dict:
            body = {
                "extracts": [
                    extract(finess, "2025-01", "2025-03", active_files_with_agenda_event=agenda)
                ]
            }
            response = await client.post("/api/v1/extracts", json=body, headers=headers)
            assert response.status_code == 200, response.text
            return response.json()["results"][0]

        clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{p}", timeout=30) for p in ports]
        try:
            results = await asyncio.gather(*(send(clients[i % 2], 10 + i) for i in range(40)))
        finally:
            for client in clients:
                await client.aclose()
        # no dashboard was read: the servers' background task brought the rollups up to date
        national = await rollups_once_fresh(url)
        assert (national["reporting"], national["current"]) == (1, 1)
    finally:
        for server in servers:
            stop_server(server)

    revisions = sorted(r["revision"] for r in results)
    assert revisions == list(range(1, 41))  # unique and consecutive: none lost
    conn = await asyncpg.connect(
        _dsn(url.replace("postgresql://", "postgresql+asyncpg://"), "esms_two_processes")
    )
    try:
        stored = [r["revision"] for r in await conn.fetch(HISTORY, finess)]
        current = await conn.fetchrow(
            "SELECT revision, active_files_with_agenda_event FROM measurement WHERE finess = $1",
            finess,
        )
    finally:
        await conn.close()
    assert stored == list(range(1, 41))
    latest = next(r for r in results if r["revision"] == 40)
    assert current["revision"] == 40
    assert latest["outcome"] == "revised"
    assert current["active_files_with_agenda_event"] in range(10, 50)


async def test_metrics_count_extract_outcomes(client, factory):
    _, (finess,), headers = await factory.vendor_with_establishments()
    rows = [extract(finess, "2025-01", "2025-03"), extract(finess, "2025-04", "2025-05")]
    await client.post("/api/v1/extracts", json={"extracts": rows}, headers=headers)
    body = (await client.get("/metrics")).text
    assert 'esms_extract_rows_total{outcome="created"}' in body
    assert 'esms_extract_rejections_total{code="window_length"}' in body
    assert 'esms_http_requests_total{method="POST",route="/api/v1/extracts",status="200"}' in body


async def test_a_period_stored_meanwhile_by_another_sender_is_compared_not_lost(pg_server):
    """A row read as new whose period another sender stores before this batch writes: the
    write waits for that sender, then compares with what it stored (a revision, or unchanged
    when the counts are the same), as if the period had been there from the start."""
    url, finess, _ = await seeded_database(pg_server, "esms_write_race")
    database = Database(make_engine(async_url(url), pool_size=3))
    principal = Principal(None, Role.VENDOR, vendor_siren=SIREN)
    watcher = await asyncpg.connect(url)

    async def race(agenda: int) -> dict:
        async with database.sessions() as first, database.sessions() as second:
            await first.begin()
            await second.begin()
            stored = await ingest(
                first, principal, [extract(finess, "2024-01", "2024-03")], BatchOptions(), EXTRACTS
            )
            assert stored["results"][0]["outcome"] == "created"
            late = asyncio.create_task(
                ingest(
                    second,
                    principal,
                    [extract(finess, "2024-01", "2024-03", active_files_with_agenda_event=agenda)],
                    BatchOptions(),
                    EXTRACTS,
                )
            )
            # The second write waits on the first one's new key...
            for _ in range(100):
                waiting = await watcher.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                )
                if waiting:
                    break
                await asyncio.sleep(0.05)
            assert waiting == 1 and not late.done()
            await first.commit()
            summary = await late  # ...and goes on once it is stored.
            await second.commit()
            return summary["results"][0]

    try:
        revised = await race(agenda=60)
        assert (revised["outcome"], revised["revision"]) == ("revised", 2)
        await watcher.execute("DELETE FROM extract_revision; DELETE FROM latest_measurement")
        await watcher.execute("DELETE FROM measurement")
        same = await race(agenda=74)  # the counts of the first sender
        assert (same["outcome"], same["revision"]) == ("unchanged", 1)
        history = await watcher.fetch(HISTORY, finess)
        assert [r["revision"] for r in history] == [1]
    finally:
        await watcher.close()
        await database.dispose()


async def test_a_write_in_one_process_is_read_at_once_in_the_other(pg_server, tmp_path):
    """Reads run without a transaction and warm dashboards, measurements and compliance are
    answered from memory: what another process has just stored is still what the next read
    shows."""
    url, finess, token = await seeded_database(pg_server, "esms_fresh_reads")
    ports = [free_port(), free_port()]
    servers = [start_server(url, port, tmp_path / f"s{port}.log", "--no-migrate") for port in ports]
    try:
        for port, server in zip(ports, servers, strict=True):
            await wait_healthy(f"http://127.0.0.1:{port}", server, tmp_path / f"s{port}.log")
        headers = {"Authorization": f"Bearer {token}"}
        reader, writer = (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{p}", timeout=30, headers=headers)
            for p in ports
        )
        async with reader, writer:
            summary = "/api/v1/dashboards/summary"
            first = await reader.get(summary)
            again = await reader.get(summary)
            assert (first.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit")
            assert again.content == first.content
            measurements = f"/api/v1/establishments/{finess}/measurements"
            (project,) = (await reader.get("/api/v1/projects")).json()["items"]
            compliance = f"/api/v1/projects/{project['id']}/compliance"
            for url in (measurements, compliance):
                await reader.get(url)
                assert (await reader.get(url)).headers["x-cache"] == "hit"
            assert (await reader.get(measurements)).json()["items"] == []
            assert (await reader.get(compliance)).json()["status"] == "no_data"

            body = {"extracts": [extract(finess, "2025-01", "2025-03")]}
            stored = await writer.post("/api/v1/extracts", json=body)
            assert stored.json()["counts"]["created"] == 1, stored.text

            items = (await reader.get(measurements)).json()["items"]
            assert [(i["period_start"], i["revision"]) for i in items] == [("2025-01", 1)]
            (line,) = (await reader.get(compliance)).json()["establishments"]
            assert line["latest_period"] == {"start": "2025-01", "end": "2025-03"}
            after = await reader.get(summary)
            assert after.headers["x-cache"] == "miss"
            assert after.json() != first.json()
    finally:
        for server in servers:
            stop_server(server)


def held_by_worker(server: int, port: int) -> dict[int, tuple[int, int]]:
    """Per worker process of `server`: its listening sockets on `port`, and the clients'
    connections it holds there."""
    held = {}
    for worker in psutil.Process(server).children():
        with contextlib.suppress(psutil.NoSuchProcess):
            mine = [c for c in worker.net_connections("tcp") if c.laddr and c.laddr.port == port]
            listening = sum(c.status == psutil.CONN_LISTEN for c in mine)
            if listening:  # not multiprocessing's resource tracker
                held[worker.pid] = (
                    listening,
                    sum(c.status == psutil.CONN_ESTABLISHED for c in mine),
                )
    return held


async def test_two_workers_share_the_connections_of_many_clients(pg_server, tmp_path):
    """`serve --workers 2`: each worker listens on a socket of its own on the port, so the
    connections of many clients opened at once are spread over both (with one shared socket,
    the worker that woke first took most of them, and kept them as long as they lived)."""
    url, _, token = await seeded_database(pg_server, "esms_workers")
    port, log = free_port(), tmp_path / "workers.log"
    server = start_server(url, port, log, "--no-migrate", "--workers", "2")
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", server, log)
        for _ in range(300):  # both workers listening
            if sum(listening for listening, _ in held_by_worker(server.pid, port).values()) == 2:
                break
            await asyncio.sleep(0.1)
        clients = [
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            for _ in range(40)
        ]
        try:
            answers = await asyncio.gather(
                *(client.get("/api/v1/dashboards/summary") for client in clients)
            )
            assert {a.status_code for a in answers} == {200}
            held = held_by_worker(server.pid, port)
        finally:
            for client in clients:
                await client.aclose()
    finally:
        stop_server(server)
    assert sorted(listening for listening, _ in held.values()) == [1, 1], held
    connections = sorted(count for _, count in held.values())
    assert sum(connections) == 40 and connections[0] >= 8, held
