"""FINESS import benchmark: time and peak memory of `esms-usage finess import` on a synthetic
FINESS+ flow of national size, and on one ten times larger.

What it measures
    For each size, the wall-clock time of the import (reading, selecting, staging and the
    upsert, committed) and the peak resident memory (ru_maxrss) of the process that runs it.
    Memory that does not grow with the file shows that it is streamed, never loaded whole.
    The same file imported again (nothing to change) is timed too.

How
    A throw-away embedded PostgreSQL migrated with the app's migrations, a fresh database per
    size; the file written by the app's synthesiser (`finess synth --format finess-plus`):
    `--establishments` ESSMS of the programme (about 3 % closed) and as many structures of
    other categories (pharmacies, hospitals, clinics), as in the real national file, which
    lists about 100 000 structures. Each import runs in a child process of its own, so that
    its peak memory is its own. Files and database are deleted at the end, on error too.

Run (from the repository root)
    .venv/bin/python -m tests.benchmarks.bench_finess_import                 # 45 000 and 450 000
    .venv/bin/python -m tests.benchmarks.bench_finess_import --establishments 5000

It exits 0 whether or not the targets (national size under 60 s; memory within 10 % between
the two sizes) are met: the figures are what matters.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from app.db import start_embedded_postgres
from app.referential.finess_file import write_synthetic_finess_file
from app.referential.finess_formats import FinessFormat
from tests.benchmarks.common import ROOT, migrated_database, run_in_workdir


def child(path: str) -> None:
    """Import `path` into DATABASE_URL and print the figures as one JSON line."""
    from app.db import Database, make_engine
    from app.referential.importer import import_finess_file

    async def work() -> dict[str, object]:
        url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+asyncpg://")
        database = Database(make_engine(url, pool_size=1))
        try:
            started = time.perf_counter()
            report = await import_finess_file(database, path)
            seconds = time.perf_counter() - started
        finally:
            await database.dispose()
        return {"seconds": seconds, "summary": report.summary()}

    figures = asyncio.run(work())
    figures["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB
    print(json.dumps(figures))


def import_in_child(url: str, path: Path) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.bench_finess_import", "--child", str(path)],
        env={**os.environ, "DATABASE_URL": url, "ESMS_LOG_LEVEL": "warning"},
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the import failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


async def run(args: argparse.Namespace, workdir: Path) -> str:
    server = start_embedded_postgres(workdir / "pg")
    lines = [
        f"FINESS+ import, {os.cpu_count()} cores (shared machine: other work may run meanwhile)"
    ]
    peaks = []
    for factor in (1, 10):
        count = args.establishments * factor
        path = workdir / f"structures-{count}.json"
        started = time.perf_counter()
        write_synthetic_finess_file(
            path, count, seed=11, format=FinessFormat.FINESS_PLUS, other_share=1.0
        )
        written = time.perf_counter() - started
        size_mb = path.stat().st_size / 1024**2
        url = await migrated_database(server, f"bench_finess_{count}")
        first = import_in_child(url, path)
        again = import_in_child(url, path)
        peaks.append(first["peak_mb"])
        lines += [
            f"{count:>9,} establishments of the programme, about as many other structures: "
            f"file {size_mb:,.0f} MB (written in {written:.0f} s)",
            f"    import     {first['seconds']:7.1f} s   peak memory {first['peak_mb']:6.0f} MB"
            f"   {first['summary']}",
            f"    re-import  {again['seconds']:7.1f} s   peak memory {again['peak_mb']:6.0f} MB"
            f"   {again['summary']}",
        ]
        path.unlink()
    growth = 100 * (peaks[1] - peaks[0]) / peaks[0]
    lines.append(
        f"peak memory, 10x file against national size: {growth:+.1f} % (target within 10 %)"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--establishments", type=int, default=45_000, help="national size")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0
    return run_in_workdir(run, args)


if __name__ == "__main__":
    sys.exit(main())
