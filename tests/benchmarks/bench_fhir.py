"""FHIR ingestion benchmark: a national month pushed as MeasureReport Bundles, beside the
JSON path in the same run.

What it measures
    1. End to end, as bench_ingest does: the wall-clock rate at which `POST /api/v1/extracts`
       stores one month for every establishment, then the rate at which `POST /fhir` stores
       the next month for every establishment as batch Bundles of MeasureReports, on the
       same database and server (bodies encoded before the clock starts, answers decoded and
       checked after it stops).
    2. In this process, for one Bundle of `--batch` reports: what checking its structure
       costs with the fhir.resources R4B models, with the fast path the service uses
       (app.fhir.validation), and what mapping the reports to extract rows costs.

How
    The setup of bench_ingest (embedded PostgreSQL, synthetic referential, vendors, projects,
    tokens, history written with COPY), with the history ending three months before the
    current one: the JSON push stores the month after it, the FHIR push the last completed
    month, so both create one period per establishment. Everything is stopped and deleted at
    the end, on error and on Ctrl+C too.

Run (from the repository root)
    .venv/bin/python -m tests.benchmarks.bench_fhir                 # 40 000 x 24 months
    .venv/bin/python -m tests.benchmarks.bench_fhir --establishments 2000 --months 6

It exits 0 whether or not the target is met: the figures are what matters.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date
from pathlib import Path

import asyncpg
import orjson

from app.batches import collector_paused
from app.clock import Month
from app.config import get_settings
from app.db import start_embedded_postgres
from app.fhir.mapping import report_to_row
from app.fhir.measures import MEASURE_POPULATION, Urls
from app.fhir.validation import decode_fast
from tests.benchmarks import bench_ingest as ingest
from tests.benchmarks.common import free_port, migrated_database, run_in_workdir, wait_healthy

TARGET_RATE = 5_000  # reports per second, end to end
URLS = Urls(get_settings().public_url)
RATES = (
    ("mssante_rate", "mssante_messages_sent", "eligible_persons"),
    ("dmp_rate", "dmp_fed_persons", "eligible_persons"),
    ("active_files_rate", "active_files", "accompanied_persons"),
    ("care_project_rate", "active_files_with_care_project", "active_files"),
    ("agenda_rate", "active_files_with_agenda_event", "active_files"),
)
OPTIONAL = (
    ("eprescription_count", "eprescriptions_imported"),
    ("eparcours_count", "eparcours_exchanges"),
)


def _population(kind: str, count: int) -> dict:
    return {"code": {"coding": [{"system": MEASURE_POPULATION, "code": kind}]}, "count": count}


def _code(code: str) -> dict:
    return {"coding": [{"system": URLS.indicator_system, "code": code}]}


def measure_report(extract: dict) -> dict:
    """The MeasureReport a vendor's FHIR stack would send for one extract."""
    month = Month.parse(extract["period_start"])
    groups = [
        {
            "code": _code(code),
            "population": [
                _population("numerator", extract[numerator]),
                _population("denominator", extract[denominator]),
            ],
        }
        for code, numerator, denominator in RATES
    ]
    groups += [
        {"code": _code(code), "population": [_population("initial-population", extract[name])]}
        for code, name in OPTIONAL
        if extract[name] is not None
    ]
    last = month.plus(1).first_day.toordinal() - 1
    return {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "summary",
        "measure": URLS.composite,
        "reporter": {
            "identifier": {"system": "https://finess.esante.gouv.fr", "value": extract["finess"]}
        },
        "period": {
            "start": month.first_day.isoformat(),
            "end": date.fromordinal(last).isoformat(),
        },
        "group": groups,
    }


def bundle(extracts: list[dict]) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": measure_report(e), "request": {"method": "POST", "url": "MeasureReport"}}
            for e in extracts
        ],
    }


def encode_bundles(
    fleet: ingest.Fleet, by_vendor: dict[str, list[dict]], batch: int
) -> list[tuple[str, int, bytes]]:
    """(token, reports, Bundle body) of every request, vendors interleaved (as bench_ingest)."""
    per_vendor = [
        [
            (
                fleet.token_of[vendor],
                len(extracts[i : i + batch]),
                orjson.dumps(bundle(extracts[i : i + batch])),
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


def check_fhir_answers(requests: list[tuple[str, int, bytes]], answers: list[bytes]) -> None:
    for index, ((_, rows, _), raw) in enumerate(zip(requests, answers, strict=True)):
        statuses = [e["response"]["status"] for e in orjson.loads(raw)["entry"]]
        created = statuses.count("201 Created")
        if created != rows:
            raise RuntimeError(f"bundle {index}: {created}/{rows} created; {statuses[:3]}")


def validation_costs(extracts: list[dict]) -> dict[str, float]:
    """Seconds, in this process, to check one Bundle of these reports with the R4B models,
    with the fast path, and to map its reports to extract rows."""
    from fhir.resources.R4B.bundle import Bundle

    body = orjson.dumps(bundle(extracts))
    costs = {}
    with collector_paused():
        started = time.perf_counter()
        Bundle.model_validate(orjson.loads(body))
        costs["models"] = time.perf_counter() - started
        started = time.perf_counter()
        decoded = decode_fast(body)
        costs["fast"] = time.perf_counter() - started
        if decoded is None:
            raise RuntimeError("the benchmark's reports should fit the fast path")
        started = time.perf_counter()
        for i, entry in enumerate(decoded.entry):
            mapped = report_to_row(entry.resource, f"Bundle.entry[{i}].resource", URLS, "2023")
            if mapped.row is None:
                raise RuntimeError(f"report {i} refused: {mapped.issues[:2]}")
        costs["mapping"] = time.perf_counter() - started
    return costs


async def prepare(server_url: str, args, clock: float) -> tuple[str, ingest.Fleet, int, Month]:
    """bench_ingest's setup, the history ending one month earlier; the JSON month."""
    url = await migrated_database(server_url, ingest.DATABASE)
    ingest.step("database migrated", clock)
    await ingest.load_referential(url, args.establishments)
    ingest.step(f"{args.establishments} establishments imported", clock)
    conn = await asyncpg.connect(url)
    try:
        fleet = await ingest.load_vendors_and_projects(conn, args.vendors)
        await ingest.create_tokens(url, fleet)
        json_month = Month.current().plus(-2)
        first = json_month.plus(-args.months)
        revisions = await ingest.load_history(conn, fleet, first, args.months)
        ingest.step(f"{revisions} history rows stored ({first} to {json_month.plus(-1)})", clock)
    finally:
        await conn.close()
    return url, fleet, revisions, json_month


async def settle(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        # As bench_ingest settles its history: the JSON push's updates vacuumed and its WAL
        # flushed now, rather than by autovacuum and a checkpoint during the FHIR push.
        await conn.execute("VACUUM (ANALYZE) measurement, latest_measurement")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


def rate_line(name: str, result: ingest.PushResult) -> str:
    pushed = sum(result.batches)
    return (
        f"{name}: {pushed} in {result.seconds:.2f} s = "
        f"{ingest.thousands(pushed / result.seconds)}/s ({ingest.describe_batches(result)}); "
        f"CPU server {result.server_cpu / pushed * 1e6:.0f} µs, PostgreSQL "
        f"{result.postgres_cpu / pushed * 1e6:.0f} µs per report"
    )


async def run(args, workdir: Path) -> str:
    clock = time.perf_counter()
    server_url = start_embedded_postgres(workdir / "pg")
    ingest.step("embedded PostgreSQL started", clock)
    url, fleet, revisions, json_month = await prepare(server_url, args, clock)
    fhir_month = json_month.plus(1)
    json_requests = ingest.encode_batches(fleet, ingest.pushed_month(fleet, json_month), args.batch)
    fhir_extracts = ingest.pushed_month(fleet, fhir_month)
    fhir_requests = encode_bundles(fleet, fhir_extracts, args.batch)
    sample = next(iter(fhir_extracts.values()))[: args.batch]
    costs = validation_costs(sample)
    ingest.step("bodies encoded, validation costs measured", clock)
    port, log = free_port(), workdir / "server.log"
    server = ingest.start_server(url, port, log, args.workers)
    pgdata = workdir / "pg" / "pgdata"
    try:
        base_url = f"http://127.0.0.1:{port}"
        await wait_healthy(base_url, server, log)
        ingest.step(f"server up, pushing {json_month} as JSON", clock)
        before = ingest.cpu_snapshot(server.pid, pgdata)
        json_result, answers = await ingest.push(base_url, json_requests, args.concurrency)
        after = ingest.cpu_snapshot(server.pid, pgdata)
        json_result.server_cpu, json_result.postgres_cpu = ingest.cpu_used(
            before, after, server.pid
        )
        ingest.check_answers(json_requests, answers)
        await settle(url)
        ingest.step(f"pushing {fhir_month} as FHIR", clock)
        before = ingest.cpu_snapshot(server.pid, pgdata)
        fhir_result, answers = await ingest.push(
            base_url, fhir_requests, args.concurrency, "/fhir", "application/fhir+json"
        )
        after = ingest.cpu_snapshot(server.pid, pgdata)
        fhir_result.server_cpu, fhir_result.postgres_cpu = ingest.cpu_used(
            before, after, server.pid
        )
        check_fhir_answers(fhir_requests, answers)
        memory_mb = ingest.server_memory_mb(server.pid)
        ingest.step("every report answered 201 Created", clock)
    finally:
        ingest.stop_server(server)
    await ingest.check_stored(url, fhir_month, sum(fhir_result.batches))
    fhir_rate = sum(fhir_result.batches) / fhir_result.seconds
    json_rate = sum(json_result.batches) / json_result.seconds
    n = len(sample)
    return "\n".join(
        (
            f"FHIR benchmark: {args.establishments} establishments, {args.months} months "
            f"stored ({ingest.thousands(revisions)} revisions), {args.vendors} vendors",
            rate_line(f"JSON extracts ({json_month})", json_result),
            rate_line(f"FHIR MeasureReports ({fhir_month})", fhir_result),
            f"FHIR / JSON: {fhir_rate / json_rate:.2f}",
            f"one Bundle of {n} reports, in this process: fhir.resources R4B models "
            f"{costs['models']:.2f} s ({costs['models'] / n * 1e6:.0f} µs/report), fast path "
            f"{costs['fast'] * 1e3:.1f} ms ({costs['fast'] / n * 1e6:.1f} µs/report), "
            f"mapping {costs['mapping'] * 1e3:.1f} ms ({costs['mapping'] / n * 1e6:.1f} µs/report)",
            f"server peak memory (VmHWM): {memory_mb:.0f} MB; machine {os.cpu_count()} "
            "cores, shared",
            f"target: >= {ingest.thousands(TARGET_RATE)} reports/s end to end: "
            f"{'MET' if fhir_rate >= TARGET_RATE else 'MISSED'}",
        )
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return ingest.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    try:
        return run_in_workdir(run, parse_args(argv))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
