"""Data version benchmark: what the counter taken at commit (migration 0017) costs.

What it measures
    1. Concurrent writers. `--writers` connections of the service's role each commit, as
       fast as they can for `--seconds`, transactions that append one audit entry (and
       nothing else: the worst case, where the counter's row lock, held from the deferred
       trigger to the end of COMMIT, is the whole transaction). Commits per second and the
       p50 / p95 / p99 latency of a whole transaction, with the trigger enabled, then
       disabled (what the service did before: nothing at commit), alternated `--rounds`
       times, for each number of writers.
    2. The read on each request's arrival: the counter's one row, against the rule it
       replaces (the newest audit entry that is not a console sign-in) on an audit trail
       of `--audit-rows` entries whose newest `--sign-ins` are console sign-ins.

How
    A throw-away embedded PostgreSQL (the settings of app/postgresql.conf, synchronous
    commit on, as in production), migrated with the app's migrations; the trigger is
    disabled and enabled again by the owner. Everything is stopped and deleted at the end.

Run (from the repository root)
    .venv/bin/python -m tests.benchmarks.bench_data_version
    .venv/bin/python -m tests.benchmarks.bench_data_version --writers 1 8 32 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import asyncpg

from app.db import APP_ROLE, as_role, start_embedded_postgres
from tests.benchmarks.common import migrated_database, percentile, run_in_workdir

APPEND = (
    "INSERT INTO audit_event (role, principal, action, object_type, object_id, detail) "
    "VALUES ('vendor', 'bench', 'extracts.ingest', 'batch', '1', '{}')"
)
TRIGGER = "audit_event_bumps_data_version"
OLD_READ = (
    "SELECT coalesce((SELECT id FROM audit_event WHERE action NOT LIKE 'console.%' "
    "ORDER BY id DESC LIMIT 1), 0)"
)
NEW_READ = "SELECT version FROM data_version WHERE id"


async def writers(url: str, count: int, seconds: float) -> tuple[float, list[float]]:
    """Commits per second and each transaction's latency (ms), `count` writers at once."""
    connections = [await asyncpg.connect(url) for _ in range(count)]
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def write(conn: asyncpg.Connection) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with conn.transaction():
                await conn.execute(APPEND)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(write(conn) for conn in connections))
    finally:
        for conn in connections:
            await conn.close()
    return len(latencies) / (time.perf_counter() - started), latencies


async def reads(url: str, sql: str, count: int = 5000) -> float:
    """Microseconds per read of the version, one connection, a prepared statement."""
    conn = await asyncpg.connect(url)
    try:
        statement = await conn.prepare(sql)
        await statement.fetchval()
        started = time.perf_counter()
        for _ in range(count):
            await statement.fetchval()
        return (time.perf_counter() - started) / count * 1e6
    finally:
        await conn.close()


async def run(args: argparse.Namespace, workdir: Path) -> str:
    server_url = start_embedded_postgres(workdir / "pg")
    owner_url = await migrated_database(server_url, "esms_bench_version")
    app_url = as_role(owner_url, APP_ROLE)
    owner = await asyncpg.connect(owner_url)
    lines = [
        f"data version benchmark: {args.seconds:g} s per run, {args.rounds} rounds, "
        "one audit entry per transaction, synchronous commit on"
    ]
    try:
        for count in args.writers:
            figures: dict[str, list[tuple[float, list[float]]]] = {"counter": [], "none": []}
            for _ in range(args.rounds):
                for mode in ("counter", "none"):
                    state = "ENABLE" if mode == "counter" else "DISABLE"
                    await owner.execute(f"ALTER TABLE audit_event {state} TRIGGER {TRIGGER}")
                    figures[mode].append(await writers(app_url, count, args.seconds))
            for mode, label in (("counter", "counter at commit"), ("none", "no trigger")):
                rates = [rate for rate, _ in figures[mode]]
                samples = [ms for _, latencies in figures[mode] for ms in latencies]
                lines.append(
                    f"{count:>3} writers, {label:<17}: "
                    f"{sum(rates) / len(rates):>7.0f} commits/s "
                    f"(runs: {', '.join(f'{r:.0f}' for r in rates)}); transaction "
                    f"p50 {percentile(samples, 0.5):.2f} ms, p95 {percentile(samples, 0.95):.2f}"
                    f" ms, p99 {percentile(samples, 0.99):.2f} ms"
                )
        await owner.execute(f"ALTER TABLE audit_event ENABLE TRIGGER {TRIGGER}")
        await owner.execute(
            "INSERT INTO audit_event (role, principal, action, object_type, object_id, detail) "
            "SELECT 'vendor', 'bench', CASE WHEN i > $1 - $2 THEN 'console.sign_in' "
            "ELSE 'extracts.ingest' END, 'batch', i::text, '{}' FROM generate_series(1, $1) i",
            args.audit_rows,
            args.sign_ins,
        )
        await owner.execute("VACUUM ANALYZE audit_event")
        old, new = await reads(app_url, OLD_READ), await reads(app_url, NEW_READ)
        lines.append(
            f"version read on arrival, {args.audit_rows} audit entries, the newest "
            f"{args.sign_ins} console sign-ins: newest audit id {old:.0f} µs, "
            f"counter {new:.0f} µs (a round trip each)"
        )
    finally:
        await owner.close()
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--audit-rows", type=int, default=1_000_000)
    parser.add_argument("--sign-ins", type=int, default=2_000)
    return run_in_workdir(run, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
