"""Ingestion benchmark: one national month of extracts pushed over HTTP to a real server.

What it measures
    1. End to end: the wall-clock rate at which `POST /api/v1/extracts` stores one month for
       every establishment, from the first request sent to the last response received, on a
       database that already holds `--months` months of history for all of them. Request
       bodies are JSON-encoded before the clock starts and responses are decoded and checked
       after it stops, so the client's JSON work is not counted.
    2. The floor: a raw asyncpg COPY (`copy_records_to_table`) of the same rows into a fresh
       table shaped like `extract_revision`, and the ratio of the two rates.
    3. The server's peak resident memory (VmHWM of the uvicorn process) after the push.

How
    A throw-away embedded PostgreSQL in a temporary directory, migrated with the app's own
    migrations; a synthetic FINESS referential; vendors, projects of about 20
    establishments (one vendor and one region each) and one vendor token per vendor; the
    history written straight with COPY (a 3-month first window, then one row per month,
    ending two months before the current month, Europe/Paris); then `esms-usage serve` as a
    subprocess and the push of the last completed month, in batches of `--batch` rows, each
    batch through its vendor's token (a batch never mixes vendors), `--concurrency` in flight.
    The default 8 vendors of equal share make every batch of the default run exactly 5 000
    rows; with more vendors each vendor's last batch is partial. Everything is stopped and
    deleted at the end, on error and on Ctrl+C too.

Run (from the repository root)
    .venv/bin/python -m tests.benchmarks.bench_ingest                 # 40 000 x 24 months
    .venv/bin/python -m tests.benchmarks.bench_ingest --establishments 2000 --months 6

It exits 0 whether or not the targets are met: the figures are what matters.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import asyncpg
import httpx
import orjson
import psutil
from stdnum import luhn

from app.access.principal import Role
from app.access.repository import create_token
from app.clock import Month
from app.db import (
    Database,
    async_url,
    make_engine,
    start_embedded_postgres,
    stop_embedded_postgres,
)
from app.extracts.models import COUNT_FIELDS, REVISION_FIELDS
from app.extracts.repository import rebuild_latest
from app.referential.finess_file import synthetic_records
from app.referential.importer import import_records
from tests.benchmarks.common import (
    ROOT,
    SERVER,
    free_port,
    migrated_database,
    peak_memory_mb,
    stop_server,
    wait_healthy,
)

DATABASE = "esms_bench"
PROJECT_SIZE = 20
FIRST_WINDOW = 3
TARGET_RATE = 20_000  # extracts per second, end to end
TARGET_MEMORY_MB = 400

# A revision's fields, but its reception time (the table's default).
REVISION_COLUMNS = tuple(c for c in REVISION_FIELDS if c != "received_at")


@dataclass
class Fleet:
    """The establishments, who sells each its software, and each one's typical size."""

    vendor_of: dict[str, str] = field(default_factory=dict)  # finess -> SIREN
    token_of: dict[str, str] = field(default_factory=dict)  # SIREN -> bearer token
    size_of: dict[str, int] = field(default_factory=dict)  # finess -> typical file active
    projects: int = 0


@dataclass
class PushResult:
    seconds: float
    batches: list[int]  # rows per batch, in sending order
    concurrency: int
    server_cpu: float = 0.0  # CPU seconds of the server process during the push
    postgres_cpu: float = 0.0  # CPU seconds of PostgreSQL (all its processes) during the push
    client_cpu: float = 0.0  # CPU seconds of this process (the HTTP client) during the push


# --- Database ---------------------------------------------------------------------------


def sirens(count: int) -> list[str]:
    """Valid SIRENs: 8 digits and their Luhn key."""
    return [
        f"{body}{luhn.calc_check_digit(body)}"
        for body in (f"{7310000 + i:08d}" for i in range(count))
    ]


async def load_referential(url: str, establishments: int) -> None:
    """The app's own importer, fed by the synthetic FINESS generator."""
    database = Database(make_engine(async_url(url), pool_size=1))
    try:
        report = await import_records(database, synthetic_records(establishments, seed=42))
    finally:
        await database.dispose()
    if report.created != establishments:
        raise RuntimeError(f"{report.created} establishments imported, {establishments} expected")


def vendor_projects(share: list[asyncpg.Record]) -> Iterator[list[asyncpg.Record]]:
    """A vendor's establishments (sorted by region) cut into projects of one region each."""
    by_region: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for r in share:
        by_region[r["region_code"]].append(r)
    for members in by_region.values():
        for i in range(0, len(members), PROJECT_SIZE):
            yield members[i : i + PROJECT_SIZE]


async def load_vendors_and_projects(conn: asyncpg.Connection, vendors: int) -> Fleet:
    """Vendors of equal share; projects of PROJECT_SIZE establishments of one region each."""
    siren_list = sirens(vendors)
    await conn.copy_records_to_table(
        "vendor",
        records=[(s, f"Éditeur DUI {i + 1}") for i, s in enumerate(siren_list)],
        columns=("siren", "name"),
    )
    rows = await conn.fetch(
        "SELECT finess, region_code FROM establishment ORDER BY region_code, finess"
    )
    fleet, projects, members = Fleet(), [], []
    # Each vendor takes an equal slice of the establishments (so 40 000 / 8 vendors makes
    # 5 000 per vendor, one full batch each), cut into projects of one region each.
    for v, vendor in enumerate(siren_list):
        share = rows[v * len(rows) // vendors : (v + 1) * len(rows) // vendors]
        for project in vendor_projects(share):
            project_id = len(projects) + 1
            region = project[0]["region_code"]
            name = f"Projet DUI {project_id}"
            projects.append((project_id, f"BENCH-{project_id:05d}", name, region, vendor))
            for r in project:
                members.append((r["finess"], project_id, "acquisition"))
                fleet.vendor_of[r["finess"]] = vendor
    await conn.copy_records_to_table(
        "project",
        records=[
            (*p, "DUI Bench", "acquisition", date(2023, 3, 1), "2023", False, "[]")
            for p in projects
        ],
        columns=(
            "id",
            "reference",
            "name",
            "region_code",
            "vendor_siren",
            "software",
            "funding_case",
            "submitted_on",
            "campaign",
            "amoa_requested",
            "warnings",
        ),
    )
    await conn.execute("SELECT setval(pg_get_serial_sequence('project', 'id'), $1)", len(projects))
    fleet.projects = len(projects)
    await conn.copy_records_to_table(
        "project_establishment", records=members, columns=("finess", "project_id", "funding_case")
    )
    return fleet


async def create_tokens(url: str, fleet: Fleet) -> None:
    database = Database(make_engine(async_url(url), pool_size=1))
    try:
        async with database.sessions() as session, session.begin():
            for siren in sorted(set(fleet.vendor_of.values())):
                token, _ = await create_token(
                    session, Role.VENDOR, vendor_siren=siren, name="benchmark"
                )
                fleet.token_of[siren] = token
    finally:
        await database.dispose()


# --- Synthetic counts -------------------------------------------------------------------


def counts(rng: random.Random, size: int) -> tuple[int | None, ...]:
    """Coherent annexe 2 counts around `size` (±8 %, so no month-on-month jump warning)."""
    accompanied = max(1, round(size * (0.92 + 0.16 * rng.random())))
    eligible = accompanied - int(accompanied * 0.1 * rng.random())
    dmp = int(eligible * (0.3 + 0.7 * rng.random()))
    active = accompanied - int(accompanied * 0.12 * rng.random())
    care = int(active * (0.5 + 0.5 * rng.random()))
    agenda = int(active * (0.5 + 0.5 * rng.random()))
    messages = int(accompanied * 3 * rng.random())
    eprescriptions = int(accompanied * rng.random()) if rng.random() < 0.5 else None
    eparcours = int(accompanied * 0.2 * rng.random()) if rng.random() < 0.3 else None
    return (accompanied, eligible, messages, dmp, active, care, agenda, eprescriptions, eparcours)


def history_periods(first: Month, months: int) -> list[tuple[date, date, bool]]:
    """(period_start, period_end, first_window): a 3-month window, then one per month."""
    periods = [(first.first_day, first.plus(FIRST_WINDOW - 1).first_day, True)]
    periods += [
        (first.plus(i).first_day, first.plus(i).first_day, False)
        for i in range(FIRST_WINDOW, months)
    ]
    return periods


# Share of stored periods revised once after their first sending (a corrected count): their
# first revision is in extract_revision, the second in measurement.
REVISED_SHARE = 0.03


def history_rows(
    fleet: Fleet, first: Month, months: int, seed: int
) -> Iterator[tuple[tuple, tuple | None]]:
    """(current revision, the revision it superseded or None) of every period stored, as
    rows of REVISION_COLUMNS."""
    rng = random.Random(seed)
    periods = history_periods(first, months)
    for finess, vendor in fleet.vendor_of.items():
        size = fleet.size_of.setdefault(finess, int(rng.lognormvariate(3.8, 0.7)) + 5)
        for start, end, first_window in periods:
            values = counts(rng, size)
            base = (finess, start, end)
            sent = (False, first_window, vendor, None, "bench", "[]")
            if rng.random() < REVISED_SHARE:
                wrong = (values[0] + 3, *values[1:])
                yield (*base, 2, *sent, *values), (*base, 1, *sent, *wrong)
            else:
                yield (*base, 1, *sent, *values), None


async def load_history(conn: asyncpg.Connection, fleet: Fleet, first: Month, months: int) -> int:
    """COPY the history into measurement (the current revision of each period) and
    extract_revision (the revisions superseded), then derive latest_measurement as the app
    does. Returns the number of revisions stored."""
    written, current, superseded = 0, [], []
    async with conn.transaction():
        for row, replaced in history_rows(fleet, first, months, seed=7):
            current.append(row)
            if replaced is not None:
                superseded.append(replaced)
            if len(current) == 50_000:
                written += await copy_history_chunk(conn, current, superseded)
                current, superseded = [], []
        written += await copy_history_chunk(conn, current, superseded)
        await rebuild_latest(conn)
    # A steady state for the push: statistics, visibility map and the load's WAL settled,
    # so that neither autovacuum nor a checkpoint of the bulk load runs during the push.
    await conn.execute("VACUUM (ANALYZE)")
    await conn.execute("CHECKPOINT")
    return written


async def copy_history_chunk(
    conn: asyncpg.Connection, current: list[tuple], superseded: list[tuple]
) -> int:
    await conn.copy_records_to_table("measurement", records=current, columns=REVISION_COLUMNS)
    await conn.copy_records_to_table(
        "extract_revision", records=superseded, columns=REVISION_COLUMNS
    )
    return len(current) + len(superseded)


# --- The pushed month -------------------------------------------------------------------


def pushed_month(fleet: Fleet, month: Month) -> dict[str, list[dict]]:
    """One extract per establishment for `month`, grouped by vendor (SIREN -> extracts)."""
    rng = random.Random(11)
    text = str(month)
    by_vendor: dict[str, list[dict]] = defaultdict(list)
    for finess, vendor in fleet.vendor_of.items():
        extract = {"finess": finess, "period_start": text, "period_end": text}
        extract.update(zip(COUNT_FIELDS, counts(rng, fleet.size_of[finess]), strict=True))
        by_vendor[vendor].append(extract)
    return by_vendor


def encode_batches(
    fleet: Fleet, by_vendor: dict[str, list[dict]], batch: int
) -> list[tuple[str, int, bytes]]:
    """(token, rows, JSON body) of every request, vendors interleaved so that the requests
    in flight at once come from different vendors, as they would in a real month."""
    per_vendor = [
        [
            (
                fleet.token_of[vendor],
                len(extracts[i : i + batch]),
                orjson.dumps({"extracts": extracts[i : i + batch]}),
            )
            for i in range(0, len(extracts), batch)
        ]
        for vendor, extracts in sorted(by_vendor.items())
    ]
    return [
        request
        for round_ in range(max(len(v) for v in per_vendor))
        for vendor_requests in per_vendor
        if round_ < len(vendor_requests)
        for request in [vendor_requests[round_]]
    ]


def flat_rows(fleet: Fleet, by_vendor: dict[str, list[dict]]) -> list[tuple]:
    """The pushed extracts as extract_revision rows, for the raw COPY."""
    rows = []
    for vendor, extracts in by_vendor.items():
        for e in extracts:
            start = Month.parse(e["period_start"]).first_day
            rows.append(
                (
                    e["finess"],
                    start,
                    start,
                    1,
                    False,
                    False,
                    vendor,
                    None,
                    "bench",
                    "[]",
                    *(e[c] for c in COUNT_FIELDS),
                )
            )
    return rows


async def push(
    base_url: str,
    requests: list[tuple[str, int, bytes]],
    concurrency: int,
    path: str = "/api/v1/extracts",
    content_type: str = "application/json",
) -> tuple[PushResult, list[bytes]]:
    """POST every request to `path`, `concurrency` at a time; time first request to last
    response."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(requests)):
        queue.put_nowait(index)
    answers: list[bytes] = [b""] * len(requests)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=300, limits=limits) as client:

        async def worker() -> None:
            while not queue.empty():
                index = queue.get_nowait()
                token, _, body = requests[index]
                response = await client.post(
                    path,
                    content=body,
                    headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
                )
                if response.status_code != 200:
                    raise RuntimeError(
                        f"request {index}: HTTP {response.status_code}: {response.text[:500]}"
                    )
                answers[index] = response.content

        await client.get("/health")  # open one connection before the clock starts
        started, client_started = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        client_cpu = time.process_time() - client_started
    result = PushResult(seconds, [rows for _, rows, _ in requests], concurrency)
    result.client_cpu = client_cpu
    return result, answers


def check_answers(requests: list[tuple[str, int, bytes]], answers: list[bytes]) -> None:
    for index, ((_, rows, _), raw) in enumerate(zip(requests, answers, strict=True)):
        summary = orjson.loads(raw)
        created = summary["counts"]["created"]
        if summary["status"] != "ok" or created != rows:
            bad = [r for r in summary["results"] if r["outcome"] != "created"][:3]
            raise RuntimeError(
                f"batch {index}: status {summary['status']}, {created}/{rows} created; {bad}"
            )


async def check_stored(url: str, month: Month, expected: int) -> None:
    """The pushed month is really in the database: each period with its sender's token, and
    the latest pointers."""
    conn = await asyncpg.connect(url)
    try:
        for table, condition in (
            ("measurement", "token_id IS NOT NULL"),
            ("latest_measurement", "true"),
        ):
            found = await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE period_start = $1 AND {condition}",
                month.first_day,
            )
            if found != expected:
                raise RuntimeError(f"{table} holds {found} rows of {month}, expected {expected}")
    finally:
        await conn.close()


async def raw_copy(url: str, rows: list[tuple]) -> float:
    """Seconds to COPY `rows` into a fresh table shaped like extract_revision (committed)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE bench_copy (LIKE extract_revision INCLUDING ALL)")
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table("bench_copy", records=rows, columns=REVISION_COLUMNS)
        return time.perf_counter() - started
    finally:
        await conn.close()


# --- The server -------------------------------------------------------------------------


def start_server(url: str, port: int, log: Path, workers: int = 1) -> subprocess.Popen:
    """`esms-usage serve` on `url`, in a session of its own: Ctrl+C reaches only the
    benchmark, which then stops the server with SIGTERM."""
    env = {**os.environ, "DATABASE_URL": url, "ESMS_LOG_LEVEL": "warning"}
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                str(SERVER),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--no-migrate",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            start_new_session=True,
        )


def cpu_snapshot(server_pid: int, pgdata: Path) -> dict[int, float]:
    """CPU seconds so far of the server process and of every PostgreSQL process.

    Wall-clock rates move with whatever else runs on the machine; CPU seconds much less.
    """
    postmaster = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))
    used = {}
    for process in (psutil.Process(server_pid), postmaster, *postmaster.children()):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            used[process.pid] = times.user + times.system
    return used


def cpu_used(
    before: dict[int, float], after: dict[int, float], server_pid: int
) -> tuple[float, float]:
    """(server, PostgreSQL) CPU seconds between two snapshots; new processes count from 0."""
    delta = {pid: seconds - before.get(pid, 0.0) for pid, seconds in after.items()}
    server = delta.pop(server_pid)
    return server, sum(delta.values())


# --- Report -----------------------------------------------------------------------------


def thousands(n: float) -> str:
    return f"{n:,.0f}".replace(",", " ")


def describe_batches(result: PushResult) -> str:
    sizes = result.batches
    full = sizes.count(max(sizes))
    if full == len(sizes):
        shape = f"{len(sizes)} batches of {sizes[0]}"
    else:
        shape = f"{len(sizes)} batches of {min(sizes)} to {max(sizes)} rows"
    return f"{shape}, {result.concurrency} in flight"


def report(args, revisions: int, result: PushResult, copy_seconds: float, memory_mb: float) -> str:
    pushed = sum(result.batches)
    rate = pushed / result.seconds
    copy_rate = pushed / copy_seconds
    met = "MET" if rate >= TARGET_RATE else "MISSED"
    memory_met = "MET" if memory_mb < TARGET_MEMORY_MB else "MISSED"
    return "\n".join(
        (
            f"ingestion benchmark: {args.establishments} establishments, {args.months} months "
            f"stored ({thousands(revisions)} revisions), {args.vendors} vendors",
            f"end to end over HTTP: {pushed} extracts in {result.seconds:.2f} s = "
            f"{thousands(rate)} extracts/s ({describe_batches(result)})",
            f"raw asyncpg COPY of the same rows: {copy_seconds:.2f} s = "
            f"{thousands(copy_rate)} rows/s",
            f"ratio end to end / raw COPY: {rate / copy_rate:.3f}",
            f"CPU during the push: server {result.server_cpu:.2f} s "
            f"({result.server_cpu / pushed * 1e6:.0f} µs/extract), PostgreSQL "
            f"{result.postgres_cpu:.2f} s ({result.postgres_cpu / pushed * 1e6:.0f} µs/extract), "
            f"HTTP client {result.client_cpu:.2f} s "
            f"({result.client_cpu / pushed * 1e6:.0f} µs/extract), machine {os.cpu_count()} cores",
            f"server peak memory (VmHWM): {memory_mb:.0f} MB",
            f"targets: >= {thousands(TARGET_RATE)} extracts/s end to end: {met}; "
            f"server < {TARGET_MEMORY_MB} MB: {memory_met}",
        )
    )


# --- Main -------------------------------------------------------------------------------


def step(message: str, started: float) -> None:
    print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)


async def prepare(server_url: str, args, clock: float) -> tuple[str, Fleet, int, Month]:
    """A migrated database with the referential, projects, tokens and the history."""
    url = await migrated_database(server_url, DATABASE)
    step("database migrated", clock)
    await load_referential(url, args.establishments)
    step(f"{args.establishments} establishments imported", clock)
    conn = await asyncpg.connect(url)
    try:
        fleet = await load_vendors_and_projects(conn, args.vendors)
        await create_tokens(url, fleet)
        step(f"{args.vendors} vendors, {fleet.projects} projects and their tokens created", clock)
        pushed = Month.current().plus(-1)  # the last completed month, Europe/Paris
        first = pushed.plus(-args.months)
        revisions = await load_history(conn, fleet, first, args.months)
        step(f"{revisions} history rows stored ({first} to {pushed.plus(-1)}), vacuumed", clock)
    finally:
        await conn.close()
    return url, fleet, revisions, pushed


async def run(args, workdir: Path) -> str:
    clock = time.perf_counter()
    server_url = start_embedded_postgres(workdir / "pg")
    step("embedded PostgreSQL started", clock)
    url, fleet, revisions, month = await prepare(server_url, args, clock)
    by_vendor = pushed_month(fleet, month)
    requests = encode_batches(fleet, by_vendor, args.batch)
    port, log = free_port(), workdir / "server.log"
    server = start_server(url, port, log, args.workers)
    try:
        base_url = f"http://127.0.0.1:{port}"
        await wait_healthy(base_url, server, log)
        step(f"server up (pid {server.pid}), pushing {month}", clock)
        pgdata = workdir / "pg" / "pgdata"
        before = cpu_snapshot(server.pid, pgdata)
        result, answers = await push(base_url, requests, args.concurrency)
        after = cpu_snapshot(server.pid, pgdata)
        result.server_cpu, result.postgres_cpu = cpu_used(before, after, server.pid)
        memory_mb = server_memory_mb(server.pid)
        check_answers(requests, answers)
        step("every batch answered ok, all created", clock)
    finally:
        stop_server(server)
    await check_stored(url, month, sum(result.batches))
    copy_seconds = await raw_copy(url, flat_rows(fleet, by_vendor))
    return report(args, revisions, result, copy_seconds, memory_mb)


def server_memory_mb(pid: int) -> float:
    """Peak memory of the server: the process, plus its workers when there are several."""
    import psutil

    processes = [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
    peaks = []
    for process in processes:
        try:
            peaks.append(peak_memory_mb(process))
        except (FileNotFoundError, RuntimeError):
            continue
    return sum(peaks) if len(peaks) > 1 else peaks[0]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--establishments", type=int, default=40_000)
    parser.add_argument("--months", type=int, default=24, help="months of history stored (>= 3)")
    parser.add_argument("--batch", type=int, default=5_000, help="extracts per request")
    parser.add_argument("--concurrency", type=int, default=2, help="requests in flight")
    parser.add_argument("--vendors", type=int, default=8, help="vendors (equal shares)")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    args = parser.parse_args(argv)
    if args.months < FIRST_WINDOW:
        parser.error(f"--months must be at least {FIRST_WINDOW} (the first window)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="esms-bench-"))
    try:
        print(asyncio.run(run(args, workdir)))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        stop_embedded_postgres()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
