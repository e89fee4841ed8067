"""Load test: vendors pushing extracts while ARS and the national team read dashboards.

Its load generator is Python (httpx) on the same cores as the server: at 50 clients it needs
about half the CPU the server gets, so its latencies say as much about it as about the
server. `bench_load` drives the server with a compiled generator (`hey`) and reports the
server's CPU per request; this one remains for its varied pushes (random revisions of many
establishments, each checked as stored).

What it does
    `--clients` concurrent clients (default 50) for `--duration` seconds (default 60) against
    one `esms-usage serve`, on loopback, each sending its next request as soon as the previous
    one answered (`--think` seconds apart, default 0):
    - a share `--vendors` of the clients (default 30 %) are DUI vendors: each pushes batches
      of `--batch` revisions of its establishments' latest periods with new counts (what a
      vendor correcting last month's figures sends; the demo's last month is already the
      last completed one, so there is no next month to push), and now and then reads back an
      establishment's measurements;
    - the others are ARS (their region) and the national team reading
      `/api/v1/dashboards/summary`, `/api/v1/dashboards/monthly`,
      `/api/v1/projects/{id}/compliance` and `/api/v1/establishments/{finess}/measurements`.
    Every push writes, so the dashboards' answer cache is invalidated all along.

What it prints
    Per endpoint: requests, p50, p95 and p99 latency; the errors (any transport error, any
    status other than 200, any pushed row not stored); the requests per second; the server's
    peak resident memory (VmHWM); the CPU time of the server, of PostgreSQL and of this load
    generator, which share the machine. It exits 0 when there was no error, 1 otherwise.

How
    A throw-away embedded PostgreSQL in a temporary directory, migrated; the demo dataset
    (`app.demo.load_demo`) at `--establishments` x `--months`; a token per vendor, per ARS
    and a national one; the per-token rate limit raised for the server (the national token
    is shared by many clients). Everything is stopped and deleted at the end, on error and
    on Ctrl+C too.

Run (from the repository root)
    .venv/bin/python -m tests.benchmarks.load                           # 50 clients, 60 s
    .venv/bin/python -m tests.benchmarks.load --duration 10 --clients 10   # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import psutil

from app.access.principal import Role
from app.access.repository import create_token
from app.clock import Month
from app.db import Database, make_engine, start_embedded_postgres, stop_embedded_postgres
from app.demo import DemoSize, load_demo
from app.extracts.models import COUNT_FIELDS
from tests.benchmarks.common import (
    free_port,
    migrated_database,
    peak_memory_mb,
    percentile,
    start_server,
    stop_server,
    wait_healthy,
)

PUSH = "POST /api/v1/extracts"
SUMMARY = "GET /api/v1/dashboards/summary"
MONTHLY = "GET /api/v1/dashboards/monthly"
COMPLIANCE = "GET /api/v1/projects/{id}/compliance"
MEASUREMENTS = "GET /api/v1/establishments/{finess}/measurements"


@dataclass
class Period:
    """The latest revisable period of an establishment, as stored."""

    finess: str
    start: str
    end: str
    counts: dict[str, int | None]


@dataclass
class Scope:
    """What one caller may read: its projects and establishments."""

    token: str
    region: str | None
    projects: list[int]
    establishments: list[str]


@dataclass
class Vendor:
    token: str
    periods: list[Period]


@dataclass
class Dataset:
    vendors: list[Vendor]
    readers: list[Scope]  # the national team first, then one ARS per region with projects
    establishments: int
    projects: int


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: list[str] = field(default_factory=list)

    def error(self, label: str, what: str) -> None:
        self.errors[label] += 1
        if len(self.examples) < 5:
            self.examples.append(f"{label}: {what}")


async def prepare(url: str, size: DemoSize) -> Dataset:
    """Load the demo, create the tokens, and list what each caller can send and read."""
    database = Database(make_engine(url.replace("postgresql://", "postgresql+asyncpg://")))
    try:
        await load_demo(database, size=size)
        conn = await asyncpg.connect(url)
        try:
            periods = await conn.fetch(
                f"""SELECT DISTINCT ON (m.finess) m.finess, m.vendor_siren,
                           m.period_start, m.period_end, {", ".join(f"m.{c}" for c in COUNT_FIELDS)}
                    FROM measurement m
                    WHERE NOT m.withdrawn AND m.locked_by_event_id IS NULL
                    ORDER BY m.finess, m.period_start DESC"""
            )
            projects = await conn.fetch(
                """SELECT p.id, p.region_code, pe.finess FROM project p
                   JOIN project_establishment pe ON pe.project_id = p.id"""
            )
        finally:
            await conn.close()
        by_vendor: dict[str, list[Period]] = defaultdict(list)
        for r in periods:
            by_vendor[r["vendor_siren"]].append(
                Period(
                    r["finess"],
                    str(Month.of(r["period_start"])),
                    str(Month.of(r["period_end"])),
                    {c: r[c] for c in COUNT_FIELDS},
                )
            )
        regions: dict[str, tuple[set[int], list[str]]] = defaultdict(lambda: (set(), []))
        for r in projects:
            regions[r["region_code"]][0].add(r["id"])
            regions[r["region_code"]][1].append(r["finess"])
        async with database.sessions() as session:
            vendors = [
                Vendor((await create_token(session, Role.VENDOR, vendor_siren=siren))[0], found)
                for siren, found in sorted(by_vendor.items())
            ]
            national, _ = await create_token(session, Role.NATIONAL, name="load")
            readers = [
                Scope(
                    national,
                    None,
                    sorted({r["id"] for r in projects}),
                    sorted({r["finess"] for r in projects}),
                )
            ]
            for region, (ids, numbers) in sorted(regions.items()):
                token, _ = await create_token(session, Role.ARS, region_code=region, name="load")
                readers.append(Scope(token, region, sorted(ids), numbers))
            await session.commit()
    finally:
        await database.dispose()
    return Dataset(
        vendors, readers, len({r["finess"] for r in projects}), len({r["id"] for r in projects})
    )


def revised(period: Period, rng: random.Random) -> dict:
    """The same period with new counts that still keep every rule (a correction)."""
    counts = dict(period.counts)
    active = counts["active_files"] or 0
    counts["active_files_with_agenda_event"] = rng.randint(0, active)
    counts["active_files_with_care_project"] = rng.randint(0, active)
    row = {"finess": period.finess, "period_start": period.start, "period_end": period.end}
    return row | {name: value for name, value in counts.items() if value is not None}


async def timed(
    tally: Tally, label: str, client: httpx.AsyncClient, method: str, url: str, **kw
) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        response = await client.request(method, url, **kw)
    except httpx.HTTPError as exc:
        tally.error(label, f"{type(exc).__name__} {exc}")
        return None
    tally.latencies[label].append(time.perf_counter() - started)
    if response.status_code != 200:
        tally.error(label, f"{response.status_code} {response.text[:300]}")
        return None
    return response


async def vendor_client(
    client: httpx.AsyncClient, vendor: Vendor, args, tally: Tally, deadline: float, seed: int
) -> None:
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {vendor.token}"}
    while time.monotonic() < deadline:
        if rng.random() < 0.8:
            rows = [
                revised(p, rng)
                for p in rng.sample(vendor.periods, min(args.batch, len(vendor.periods)))
            ]
            response = await timed(
                tally,
                PUSH,
                client,
                "POST",
                "/api/v1/extracts",
                json={"extracts": rows},
                headers=headers,
            )
            if response is not None:
                refused = response.json()["counts"]["rejected"]
                if refused:
                    tally.error(PUSH, f"{refused} rows refused: {response.text[:300]}")
        else:
            finess = rng.choice(vendor.periods).finess
            await timed(
                tally,
                MEASUREMENTS,
                client,
                "GET",
                f"/api/v1/establishments/{finess}/measurements",
                headers=headers,
            )
        await asyncio.sleep(args.think)


async def reader_client(
    client: httpx.AsyncClient, scope: Scope, args, tally: Tally, deadline: float, seed: int
) -> None:
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {scope.token}"}
    params = {"region": scope.region} if scope.region else {}
    while time.monotonic() < deadline:
        pick = rng.random()
        if pick < 0.25:
            await timed(
                tally,
                SUMMARY,
                client,
                "GET",
                "/api/v1/dashboards/summary",
                params=params,
                headers=headers,
            )
        elif pick < 0.5:
            await timed(
                tally,
                MONTHLY,
                client,
                "GET",
                "/api/v1/dashboards/monthly",
                params=params,
                headers=headers,
            )
        elif pick < 0.75:
            project = rng.choice(scope.projects)
            await timed(
                tally,
                COMPLIANCE,
                client,
                "GET",
                f"/api/v1/projects/{project}/compliance",
                headers=headers,
            )
        else:
            finess = rng.choice(scope.establishments)
            await timed(
                tally,
                MEASUREMENTS,
                client,
                "GET",
                f"/api/v1/establishments/{finess}/measurements",
                headers=headers,
            )
        await asyncio.sleep(args.think)


async def drive(base_url: str, dataset: Dataset, args) -> tuple[Tally, float]:
    tally = Tally()
    vendors = max(1, round(args.clients * args.vendors)) if args.clients > 1 else 0
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        started = time.monotonic()
        deadline = started + args.duration
        tasks = []
        for n in range(args.clients):
            if n < vendors:
                vendor = dataset.vendors[n % len(dataset.vendors)]
                tasks.append(vendor_client(client, vendor, args, tally, deadline, n))
            else:
                # a third of the readers are the national team, the others ARS of a region
                scopes = dataset.readers
                scope = scopes[0] if n % 3 == 0 else scopes[1 + n % (len(scopes) - 1)]
                tasks.append(reader_client(client, scope, args, tally, deadline, n))
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
    return tally, elapsed


def cpu_seconds(server_pid: int, workdir: Path) -> tuple[float, float, float]:
    """CPU time (user + system) used so far by the server, by PostgreSQL's processes and by
    this script: on a small machine, who had the cores matters to read the latencies."""

    def used(process: psutil.Process) -> float:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            return 0.0
        return times.user + times.system

    postmaster = psutil.Process(int((workdir / "pgdata" / "postmaster.pid").read_text().split()[0]))
    database = used(postmaster) + sum(used(p) for p in postmaster.children(recursive=True))
    return used(psutil.Process(server_pid)), database, used(psutil.Process())


def logged_errors(log: Path, limit: int = 5) -> list[str]:
    """The first error records of the server's JSON log, each with its exception's end."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("level") == "error" and len(found) < limit:
            found.append(f"{record.get('message', '')}\n{record.get('exception', '')[-1500:]}")
    return found


def report(tally: Tally, elapsed: float, memory: float, dataset: Dataset, args) -> str:
    lines = [
        f"load test: {args.clients} clients for {args.duration:g} s on one `esms-usage serve`; "
        f"demo dataset of {dataset.establishments} establishments in {dataset.projects} "
        f"projects, {args.months} months; batches of {args.batch} revisions",
        f"{'endpoint':<52} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6}",
    ]
    total = 0
    for label in (PUSH, SUMMARY, MONTHLY, COMPLIANCE, MEASUREMENTS):
        samples = tally.latencies.get(label, [])
        total += len(samples) + tally.errors.get(label, 0)
        if not samples:
            lines.append(f"{label:<52} {0:>8} {'-':>8} {'-':>8} {'-':>8} {tally.errors[label]:>6}")
            continue
        p50, p95, p99 = (percentile(samples, q) * 1000 for q in (0.5, 0.95, 0.99))
        lines.append(
            f"{label:<52} {len(samples):>8} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f} "
            f"{tally.errors[label]:>6}"
        )
    errors = sum(tally.errors.values())
    lines += [
        f"requests: {total} in {elapsed:.1f} s ({total / elapsed:.0f}/s); errors: {errors}",
        f"server peak memory (VmHWM): {memory:.0f} MB",
        *(f"  error: {example}" for example in tally.examples),
    ]
    return "\n".join(lines)


async def run(args, workdir: Path) -> int:
    server_url = start_embedded_postgres(workdir)
    url = await migrated_database(server_url, "esms_load")
    started = time.perf_counter()
    dataset = await prepare(url, DemoSize(args.establishments, args.months))
    print(f"demo dataset loaded in {time.perf_counter() - started:.0f} s", flush=True)
    os.environ["ESMS_RATE_LIMIT_PER_MINUTE"] = str(10**9)  # for the server started below
    port, log = free_port(), workdir / "server.log"
    server = start_server(url, port, log, "--no-migrate")
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", server, log)
        cpu_before = cpu_seconds(server.pid, workdir)
        tally, elapsed = await drive(f"http://127.0.0.1:{port}", dataset, args)
        cpu = tuple(
            b - a for a, b in zip(cpu_before, cpu_seconds(server.pid, workdir), strict=True)
        )
        memory = peak_memory_mb(server.pid)
    finally:
        stop_server(server)
    print(report(tally, elapsed, memory, dataset, args))
    errors = sum(tally.errors.values())
    if errors:
        print("server log, errors:", *logged_errors(log), sep="\n")
    print(
        f"CPU during the load: server {cpu[0]:.0f} s, PostgreSQL {cpu[1]:.0f} s, "
        f"this load generator {cpu[2]:.0f} s, over {elapsed:.0f} s on {os.cpu_count()} cores"
    )
    return 1 if errors else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=60, help="seconds of load")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument("--vendors", type=float, default=0.3, help="share of pushing clients")
    parser.add_argument("--batch", type=int, default=50, help="revisions per push")
    parser.add_argument("--think", type=float, default=0, help="seconds between requests")
    parser.add_argument("--establishments", type=int, default=5_000)
    parser.add_argument("--months", type=int, default=24)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="esms-load-"))
    try:
        return asyncio.run(run(args, workdir))
    finally:
        stop_embedded_postgres()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
