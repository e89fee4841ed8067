"""How many establishments the control signals flag on the demo dataset.

What it prints
    The share of establishments with declared figures that at least one signal flags, the
    count per kind of signal, the risk score distribution, and the share per region, with the
    time the national assessment took.

How
    A throw-away embedded PostgreSQL, migrated; the demo dataset (`app.demo`, 600
    establishments over 24 months by default); `app.controls.service.assess_scope` for the
    whole country, as the national team's risk list computes it, then again as a second
    visit finds it kept. Everything is stopped and deleted
    at the end.

Run (from the repository root)
    .venv/bin/python -m tests.benchmarks.controls_demo
    .venv/bin/python -m tests.benchmarks.controls_demo --establishments 5000 --months 24
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

from app.access.principal import Principal, Role
from app.controls.service import assess_scope
from app.dashboards.repository import data_version
from app.db import Database, make_engine, start_embedded_postgres
from app.demo import DemoSize, load_demo
from tests.benchmarks.common import migrated_database, run_in_workdir

NATIONAL = Principal(None, Role.NATIONAL, name="controls demo")


async def run(args: argparse.Namespace, workdir: Path) -> str:
    server = start_embedded_postgres(workdir / "pg")
    url = await migrated_database(server, "esms_controls_demo")
    database = Database(make_engine(url.replace("postgresql://", "postgresql+asyncpg://"), 2))
    try:
        await load_demo(database, size=DemoSize(args.establishments, args.months))
        async with database.sessions() as session:
            started = time.perf_counter()
            version = await data_version(session)
            assessed = await assess_scope(session, NATIONAL, None, version)
            elapsed = time.perf_counter() - started
            started = time.perf_counter()  # a second visit, the data unchanged: kept
            again = await assess_scope(session, NATIONAL, None, version)
            kept = time.perf_counter() - started
            assert again is assessed
    finally:
        await database.dispose()
    flagged = [a for a in assessed if a.score > 0]
    kinds = Counter(code for a in flagged for code in {s.code.value for s in a.signals})
    scores = Counter(a.score for a in flagged)
    regions = Counter(a.region for a in assessed)
    regions_flagged = Counter(a.region for a in flagged)
    lines = [
        f"demo dataset: {args.establishments} establishments, {args.months} months",
        f"establishments with declared figures: {len(assessed)}",
        f"flagged by at least one signal: {len(flagged)} "
        f"({100 * len(flagged) / max(1, len(assessed)):.1f} %)",
        f"national assessment: {elapsed:.2f} s; again, the data unchanged: {kept * 1000:.1f} ms",
        "establishments per kind of signal:",
        *(f"  {code:<32} {count:>5}" for code, count in kinds.most_common()),
        "risk scores of the flagged: "
        + ", ".join(f"{score}: {count}" for score, count in sorted(scores.items())),
        "flagged per region: "
        + ", ".join(
            f"{region} {regions_flagged[region]}/{regions[region]}" for region in sorted(regions)
        ),
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--establishments", type=int, default=600)
    parser.add_argument("--months", type=int, default=24)
    return run_in_workdir(run, parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
