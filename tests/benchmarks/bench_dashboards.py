"""Dashboard benchmark: read latencies through the HTTP API on the national demo dataset.

What it measures (p50 and p95 over `--requests` requests each)
    - the region dashboard (`/api/v1/dashboards/summary` and `/monthly` over 36 months) for
      the region closest to 5 000 establishments, as an ARS of that region;
    - the national dashboard (the same two endpoints) as the national team;
    - one project's compliance (`/api/v1/projects/{id}/compliance`, projects drawn at random);
    - the ARS monthly report export (`/api/v1/reports/monthly?format=xlsx`) of that region.
    Each dashboard is measured cold (a throw-away query parameter makes every request a miss
    of the answer cache: the answer is computed from the rollups), warm (the answer cache of
    the data version), and after a write (one measurement of the region rewritten before each
    request, and the server's background refresh off: the month written and the summary are
    aggregated on the fly, the other months read from the rollup). In the same
    run, the hand-written SQL that answers the region's monthly dashboard is timed directly
    with asyncpg, with the ratio API (cold) / SQL.

How
    A throw-away embedded PostgreSQL, migrated; `app.demo` at national scale (40 000
    establishments, `--months` months, about 2 000 projects); `esms-usage serve` as a
    subprocess; httpx on loopback, one request at a time. Everything is stopped and deleted
    at the end.

Run (from the repository root)
    .venv/bin/python -m tests.benchmarks.bench_dashboards                  # 40 000 x 36
    .venv/bin/python -m tests.benchmarks.bench_dashboards --establishments 3000 --months 12

Targets (issue): region p95 < 100 ms, national p95 < 300 ms, project compliance p95 < 20 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy import select

from app.access.principal import Role
from app.access.repository import create_token
from app.clock import Month
from app.db import Database, make_engine, start_embedded_postgres
from app.demo import DemoSize, load_demo
from app.projects.models import Project
from tests.benchmarks.common import (
    free_port,
    migrated_database,
    peak_memory_mb,
    percentile,
    run_in_workdir,
    start_server,
    stop_server,
    wait_healthy,
)

# The region's monthly dashboard written by hand: reporting establishments, how many meet
# each target and all of them, and the quartiles of each rate, per month.
HAND_WRITTEN_SQL = """
WITH r AS (
    SELECT m.period_end AS month,
           m.mssante_messages_sent::bigint * 100 >= 70 * m.eligible_persons
               AND m.eligible_persons > 0 AS mss,
           m.dmp_fed_persons::bigint * 100 >= 70 * m.eligible_persons
               AND m.eligible_persons > 0 AS dmp,
           m.active_files::bigint * 100 >= 90 * m.accompanied_persons
               AND m.accompanied_persons > 0 AS act,
           m.active_files_with_care_project::bigint * 100 >= 90 * m.active_files
               AND m.active_files > 0 AS care,
           m.active_files_with_agenda_event::bigint * 100 >= 90 * m.active_files
               AND m.active_files > 0 AS agenda,
           (m.mssante_messages_sent * 100)::float8 / NULLIF(m.eligible_persons, 0) AS mss_rate,
           (m.dmp_fed_persons * 100)::float8 / NULLIF(m.eligible_persons, 0) AS dmp_rate,
           (m.active_files * 100)::float8 / NULLIF(m.accompanied_persons, 0) AS act_rate,
           (m.active_files_with_care_project * 100)::float8
               / NULLIF(m.active_files, 0) AS care_rate,
           (m.active_files_with_agenda_event * 100)::float8
               / NULLIF(m.active_files, 0) AS agenda_rate
    FROM measurement m JOIN establishment e ON e.finess = m.finess
    WHERE e.region_code = $1 AND NOT m.withdrawn AND m.period_end BETWEEN $2 AND $3
)
SELECT month, count(*), count(*) FILTER (WHERE mss), count(*) FILTER (WHERE dmp),
       count(*) FILTER (WHERE act), count(*) FILTER (WHERE care),
       count(*) FILTER (WHERE agenda),
       count(*) FILTER (WHERE mss AND dmp AND act AND care AND agenda),
       percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY mss_rate),
       percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY dmp_rate),
       percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY act_rate),
       percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY care_rate),
       percentile_cont(ARRAY[0.25, 0.5, 0.75]) WITHIN GROUP (ORDER BY agenda_rate)
FROM r GROUP BY month ORDER BY month
"""


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def figures(samples: list[float]) -> str:
    return f"p50 {ms(percentile(samples, 0.5))}, p95 {ms(percentile(samples, 0.95))}"


async def timed(client: httpx.AsyncClient, url: str, params: dict, headers: dict) -> float:
    started = time.perf_counter()
    response = await client.get(url, params=params, headers=headers)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed


async def measure(client, url, params, headers, count, cold: bool) -> list[float]:
    samples = []
    if not cold:
        await timed(client, url, params, headers)  # fill the cache
    for index in range(count):
        extra = {"nocache": f"{random.random()}-{index}"} if cold else {}
        samples.append(await timed(client, url, params | extra, headers))
    return samples


async def after_write(client, url, path, params, headers, count, region) -> list[float]:
    """A read after a write: each sample rewrites one measurement of the region's last month
    (as a revision would, marking that month and the current figures stale) and then reads,
    before any refresh of the rollups."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT l.finess, l.period_start FROM latest_measurement l "
            "JOIN establishment e ON e.finess = l.finess WHERE e.region_code = $1 LIMIT $2",
            region,
            count,
        )
        samples = []
        for index, row in enumerate(rows):
            async with conn.transaction():
                await conn.execute(
                    "UPDATE measurement SET received_at = now() "
                    "WHERE finess = $1 AND period_start = $2",
                    row["finess"],
                    row["period_start"],
                )
                await conn.execute(
                    "UPDATE latest_measurement SET received_at = now() WHERE finess = $1",
                    row["finess"],
                )
            extra = {"nocache": f"write-{index}"}
            samples.append(await timed(client, path, params | extra, headers))
        return samples
    finally:
        await conn.close()


async def prepare(url: str, args) -> tuple[str, int, dict[str, str], list[int]]:
    database = Database(make_engine(url.replace("postgresql://", "postgresql+asyncpg://")))
    try:
        await load_demo(database, size=DemoSize(args.establishments, args.months))
        conn = await asyncpg.connect(url)
        try:
            sizes = await conn.fetch(
                "SELECT region_code, count(*) AS n FROM establishment GROUP BY 1"
            )
        finally:
            await conn.close()
        region, size = min(
            ((r["region_code"], r["n"]) for r in sizes), key=lambda r: abs(r[1] - 5000)
        )
        async with database.sessions() as session:
            national, _ = await create_token(session, Role.NATIONAL, name="bench")
            ars, _ = await create_token(session, Role.ARS, region_code=region, name="bench")
            ids = list((await session.execute(select(Project.id))).scalars())
            await session.commit()
    finally:
        await database.dispose()
    return region, size, {"national": national, "ars": ars}, ids


async def run(args, workdir: Path) -> str:
    server_url = start_embedded_postgres(workdir)
    url = await migrated_database(server_url, "bench_dashboards")
    started = time.perf_counter()
    region, size, tokens, ids = await prepare(url, args)
    loaded = time.perf_counter() - started
    end = Month.current().plus(-1)
    months = {"from": str(end.plus(-35)), "to": str(end)}
    port = free_port()
    # No background refresh: reads after a write find the rollups stale.
    os.environ["ESMS_ROLLUP_REFRESH_SECONDS"] = "0"
    server = start_server(url, port, workdir / "server.log")
    lines = [
        f"dashboard benchmark: {args.establishments} establishments, {len(ids)} projects, "
        f"{args.months} months (loaded in {loaded:.0f} s); region {region}: {size} establishments"
    ]
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", server, workdir / "server.log")
        ars = {"Authorization": f"Bearer {tokens['ars']}"}
        national = {"Authorization": f"Bearer {tokens['national']}"}
        n = args.requests
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            results = {}
            for scope, headers in (("region", ars), ("national", national)):
                for name, path, params in (
                    ("summary", "/api/v1/dashboards/summary", {}),
                    ("monthly", "/api/v1/dashboards/monthly", months),
                ):
                    for cold in (True, False):
                        key = (scope, name, "cold" if cold else "warm")
                        results[key] = await measure(client, path, params, headers, n, cold)
            for scope, headers in (("region", ars), ("national", national)):
                for name, path, params in (
                    ("summary", "/api/v1/dashboards/summary", {}),
                    ("monthly", "/api/v1/dashboards/monthly", months),
                ):
                    results[(scope, name, "after a write")] = await after_write(
                        client, url, path, params, headers, max(n // 3, 5), region
                    )
            compliance = []
            for _ in range(max(n, 100)):
                pid = random.choice(ids)
                compliance.append(
                    await timed(client, f"/api/v1/projects/{pid}/compliance", {}, national)
                )
            report = await measure(
                client, "/api/v1/reports/monthly", {"format": "xlsx"}, ars, n, cold=True
            )
        memory = peak_memory_mb(server.pid)
    finally:
        stop_server(server)
    conn = await asyncpg.connect(url)
    try:
        sql = []
        for _ in range(n):
            begin = time.perf_counter()
            await conn.fetch(HAND_WRITTEN_SQL, region, end.plus(-35).first_day, end.first_day)
            sql.append(time.perf_counter() - begin)
    finally:
        await conn.close()
    for (scope, name, state), samples in results.items():
        lines.append(f"{scope} {name} ({state}): {figures(samples)}")
    lines.append(f"project compliance: {figures(compliance)}")
    lines.append(f"ARS monthly report export, xlsx ({region}, cold): {figures(report)}")
    api = percentile(results[("region", "monthly", "cold")], 0.5)
    raw = percentile(sql, 0.5)
    lines.append(
        f"hand-written SQL of the region's monthly dashboard: {figures(sql)}; "
        f"ratio API cold / SQL (p50): {api / raw:.2f}"
    )
    lines.append(f"server peak memory (VmHWM): {memory:.0f} MB")

    def verdict(samples: list[float], limit_ms: float) -> str:
        return "MET" if percentile(samples, 0.95) * 1000 < limit_ms else "NOT MET"

    region_worst = results[("region", "summary", "cold")] + results[("region", "monthly", "cold")]
    national_worst = (
        results[("national", "summary", "cold")] + results[("national", "monthly", "cold")]
    )
    region_warm = results[("region", "summary", "warm")] + results[("region", "monthly", "warm")]
    national_warm = (
        results[("national", "summary", "warm")] + results[("national", "monthly", "warm")]
    )
    lines.append(
        f"targets: region p95 < 100 ms: cold {verdict(region_worst, 100)}, warm "
        f"{verdict(region_warm, 100)}; national p95 < 300 ms: cold "
        f"{verdict(national_worst, 300)}, warm {verdict(national_warm, 300)}; "
        f"compliance p95 < 20 ms: {verdict(compliance, 20)}"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--establishments", type=int, default=40_000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--requests", type=int, default=30)
    return run_in_workdir(run, parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
