"""Compliance benchmark: where every project of a national dataset stands for its balance.

What it measures
    1. In process: `app.projects.payments.standings` for every project at once (the two SQL
       reads and the pure annexe 2 / annexe 5 rules), best and median of `--repeat` runs.
    2. Through the HTTP API of a running `esms-usage serve`: `GET /api/v1/projects` (which
       computes the status of every project to filter and count them), and one project's
       `GET /api/v1/projects/{id}/compliance`, p50 and p95.

How
    A throw-away embedded PostgreSQL, migrated; the demo dataset (`app.demo`) at national
    scale by default: 40 000 establishments, about 2 000 projects, `--months` months of
    extracts (written with COPY). Everything is stopped and deleted at the end.

Run (from the repository root)
    .venv/bin/python -m tests.benchmarks.bench_compliance                 # 40 000 x 24 months
    .venv/bin/python -m tests.benchmarks.bench_compliance --establishments 2000 --months 6

Target (issue): compliance of every project in under 1 second. Exits 0 either way.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import httpx
from sqlalchemy import select

from app.access.principal import Role
from app.access.repository import create_token
from app.clock import today
from app.db import Database, make_engine, start_embedded_postgres
from app.demo import DemoSize, load_demo
from app.projects.models import Project
from app.projects.payments import standings
from tests.benchmarks.common import (
    free_port,
    migrated_database,
    percentile,
    run_in_workdir,
    start_server,
    stop_server,
    wait_healthy,
)


async def in_process(database: Database, repeat: int) -> tuple[int, list[float], dict]:
    async with database.sessions() as session:
        projects = list((await session.execute(select(Project))).scalars())
        timings, statuses = [], {}
        for _ in range(repeat):
            started = time.perf_counter()
            result = await standings(session, projects, today())
            timings.append(time.perf_counter() - started)
        for item in result:
            statuses[item.compliance.status.value] = (
                statuses.get(item.compliance.status.value, 0) + 1
            )
        token, _ = await create_token(session, Role.NATIONAL, name="benchmark")
        await session.commit()
    return len(projects), timings, statuses | {"_token": token}


async def over_http(base_url: str, token: str, project_ids: list[int], repeat: int):
    headers = {"Authorization": f"Bearer {token}"}
    listing, single = [], []
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as client:
        for _ in range(repeat):
            started = time.perf_counter()
            response = await client.get("/api/v1/projects", params={"status": "eligible"})
            listing.append(time.perf_counter() - started)
            response.raise_for_status()
        for index in range(200):
            pid = project_ids[(index * 7919) % len(project_ids)]
            started = time.perf_counter()
            response = await client.get(f"/api/v1/projects/{pid}/compliance")
            single.append(time.perf_counter() - started)
            response.raise_for_status()
    return listing, single


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


async def run(args, workdir: Path) -> str:
    server_url = start_embedded_postgres(workdir)
    url = await migrated_database(server_url, "bench_compliance")
    database = Database(make_engine(url.replace("postgresql://", "postgresql+asyncpg://")))
    server = None
    try:
        started = time.perf_counter()
        await load_demo(database, size=DemoSize(args.establishments, args.months))
        loaded = time.perf_counter() - started
        count, timings, statuses = await in_process(database, args.repeat)
        token = statuses.pop("_token")
        async with database.sessions() as session:
            ids = list((await session.execute(select(Project.id))).scalars())
        port = free_port()
        server = start_server(url, port, workdir / "server.log")
        await wait_healthy(f"http://127.0.0.1:{port}", server, workdir / "server.log")
        listing, single = await over_http(f"http://127.0.0.1:{port}", token, ids, args.repeat)
    finally:
        if server is not None:
            stop_server(server)
        await database.dispose()
    best, median = min(timings), statistics.median(timings)
    return "\n".join(
        [
            f"compliance benchmark: {args.establishments} establishments, {count} projects, "
            f"{args.months} months of extracts (loaded in {loaded:.0f} s)",
            "statuses: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())),
            f"every project, in process: best {best * 1000:.0f} ms, median {median * 1000:.0f} ms "
            f"({args.repeat} runs)",
            "every project, GET /api/v1/projects?status=eligible over HTTP: "
            f"p50 {ms(percentile(listing, 0.5))}, p95 {ms(percentile(listing, 0.95))}",
            "one project, GET /api/v1/projects/{id}/compliance over HTTP: "
            f"p50 {ms(percentile(single, 0.5))}, p95 {ms(percentile(single, 0.95))} (200 requests)",
            "target: every project in under 1 s (in process, median): "
            + ("MET" if median < 1 else "NOT MET"),
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--establishments", type=int, default=40_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=7)
    return run_in_workdir(run, parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
