"""Console benchmark: how fast each page of the web console answers on the national dataset.

What it measures (p50 and p95 over `--requests` requests per page, one at a time, the whole
HTML page read)
    - as an ARS of the region closest to 5 000 establishments: its region home, its projects
      list, a project's page and an establishment's page (drawn at random in the region),
      its completeness page, its pilots page;
    - as the national team: the national view (all 18 regions), the projects of the whole
      country (first page), the completeness of the country;
    - as a vendor: its home (its establishments and those missing last month).
    Each page is measured cold (the first visit after a write: before each request the
    dashboard cache is emptied and the latest measurements of the establishments of
    `--touched` projects drawn at random are rewritten, as a vendor's batch of about a
    thousand rows does, with its audit entry, so those projects' standings must be brought
    up to date and the data version moves: nothing a process keeps in memory serves; the
    page computes its figures from the services and rollups) and
    kept (the figures the page kept for the data version, as a second visitor of the same
    scope gets them; the project and establishment pages are drawn at random and always
    computed).
    Target (issue): every page p95 <= 150 ms.

How
    The dataset of `bench_dashboards` (`app.demo` at national scale: 40 000 establishments,
    `--months` months, about 2 000 projects) in a throw-away embedded PostgreSQL; `esms-usage
    serve` as a subprocess; each role signs in through the console's own form (httpx keeps
    the session cookie). Everything is stopped and deleted at the end.

Run (from the repository root)
    .venv/bin/python -m tests.benchmarks.bench_console                  # 40 000 x 36
    .venv/bin/python -m tests.benchmarks.bench_console --establishments 3000 --months 12
"""

from __future__ import annotations

import argparse
import random
import re
import time
from pathlib import Path

import asyncpg
import httpx

from app.access.principal import Role
from app.access.repository import create_token
from app.db import Database, make_engine, start_embedded_postgres
from tests.benchmarks.bench_dashboards import figures, prepare
from tests.benchmarks.common import (
    free_port,
    migrated_database,
    percentile,
    run_in_workdir,
    start_server,
    stop_server,
    wait_healthy,
)

TARGET_MS = 150
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
# A write as a vendor's batch makes it: the latest measurements of some projects'
# establishments rewritten (the same figures: the pages show the same, but those projects
# are marked), and its audit entry, which moves the data version when it commits (what the
# server keeps in memory is then stale).
TOUCH = """
UPDATE latest_measurement SET period_end = period_end
WHERE finess IN (SELECT finess FROM project_establishment
                 WHERE project_id IN (SELECT id FROM project ORDER BY random() LIMIT $1))
"""
AUDITED = (
    "INSERT INTO audit_event (role, principal, action, object_type, object_id, detail) "
    "VALUES ('vendor', 'bench', 'extracts.ingest', 'batch', '1', '{}')"
)


async def sign_in(client: httpx.AsyncClient, token: str) -> None:
    form = await client.get("/console/connexion")
    csrf = CSRF.search(form.text)
    assert csrf, "no CSRF field in the sign-in form"
    answer = await client.post(
        "/console/connexion", data={"jeton": token, "csrf": csrf.group(1), "suite": "/console"}
    )
    assert answer.status_code == 303, answer.text


async def timed(client: httpx.AsyncClient, path: str) -> float:
    started = time.perf_counter()
    response = await client.get(path)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, (path, response.status_code, response.text[:500])
    return elapsed


async def vendor_token(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        siren = await conn.fetchval(
            "SELECT vendor_siren FROM project GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
        )
    finally:
        await conn.close()
    database = Database(make_engine(url.replace("postgresql://", "postgresql+asyncpg://")))
    try:
        async with database.sessions() as session:
            token, _ = await create_token(session, Role.VENDOR, vendor_siren=siren, name="bench")
            await session.commit()
            return token
    finally:
        await database.dispose()


async def samples_of(url: str, region: str) -> tuple[list[int], list[str]]:
    conn = await asyncpg.connect(url)
    try:
        projects = [
            r[0] for r in await conn.fetch("SELECT id FROM project WHERE region_code = $1", region)
        ]
        finess = [
            r[0]
            for r in await conn.fetch(
                "SELECT l.finess FROM latest_measurement l JOIN establishment e USING (finess) "
                "WHERE e.region_code = $1 LIMIT 500",
                region,
            )
        ]
    finally:
        await conn.close()
    return projects, finess


async def run(args, workdir: Path) -> str:
    server_url = start_embedded_postgres(workdir)
    url = await migrated_database(server_url, "bench_console")
    started = time.perf_counter()
    region, size, tokens, ids = await prepare(url, args)
    tokens["vendor"] = await vendor_token(url)
    projects, finess = await samples_of(url, region)
    loaded = time.perf_counter() - started
    port = free_port()
    server = start_server(url, port, workdir / "server.log")
    lines = [
        f"console benchmark: {args.establishments} establishments, {len(ids)} projects, "
        f"{args.months} months (loaded in {loaded:.0f} s); region {region}: {size} "
        f"establishments, {len(projects)} projects; {args.requests} requests per page; "
        f"the measurements of {args.touched} projects rewritten before each cold visit",
        "(the machine is shared with other work: figures are upper bounds of a quiet one)",
    ]
    n = args.requests
    results: dict[str, list[float]] = {}
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", server, workdir / "server.log")
        base = f"http://127.0.0.1:{port}"
        pages = {
            "ars": [
                ("region home", lambda: f"/console/regions/{region}"),
                ("projects list (region)", lambda: "/console/projets"),
                ("project", lambda: f"/console/projets/{random.choice(projects)}"),
                ("establishment", lambda: f"/console/etablissements/{random.choice(finess)}"),
                ("completeness (region)", lambda: "/console/completude"),
                ("pilots (region)", lambda: "/console/pilotes"),
            ],
            "national": [
                ("national view", lambda: "/console/national"),
                ("projects list (national)", lambda: "/console/projets"),
                ("completeness (national)", lambda: "/console/completude"),
            ],
            "vendor": [("vendor home", lambda: "/console/editeur")],
        }
        conn = await asyncpg.connect(url)
        try:
            for role, listed in pages.items():
                async with httpx.AsyncClient(base_url=base, timeout=120) as client:
                    await sign_in(client, tokens[role])
                    for name, path in listed:
                        await timed(client, path())  # first request: connections
                        cold = []
                        for _ in range(max(5, n // 2)):
                            # nothing kept: the page computes its figures from the services
                            await conn.execute("TRUNCATE dashboard_cache")
                            async with conn.transaction():
                                await conn.execute(TOUCH, args.touched)
                                await conn.execute(AUDITED)
                            cold.append(await timed(client, path()))
                        results[f"{name} ({role}), cold"] = cold
                        results[f"{name} ({role}), kept"] = [
                            await timed(client, path()) for _ in range(n)
                        ]
        finally:
            await conn.close()
    finally:
        stop_server(server)
    worst = []
    for name, samples in results.items():
        p95 = percentile(samples, 0.95) * 1000
        verdict = "MET" if p95 <= TARGET_MS else "NOT MET"
        lines.append(f"{name}: {figures(samples)} -> p95 <= {TARGET_MS} ms {verdict}")
        worst.append((p95, name))
    p95, name = max(worst)
    lines.append(f"slowest page at p95: {name}, {p95:.1f} ms")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--establishments", type=int, default=40_000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument(
        "--touched",
        type=int,
        default=50,
        help="projects whose measurements are rewritten before each cold visit",
    )
    return run_in_workdir(run, parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
