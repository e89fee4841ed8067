"""How an import shows its progress: a bar on a terminal (rich), plain periodic lines when
the output is not one (CI logs, a redirected file)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from app.referential.importer import Progress

PLAIN_EVERY_SECONDS = 5.0


@contextmanager
def import_progress(size: int, out: IO[str] | None = None) -> Iterator[Progress]:
    """A progress callback for an import of a file of `size` bytes, written to `out`."""
    out = out or sys.stderr
    if out.isatty():
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import (
            Progress as Bar,
        )

        with Bar(
            TextColumn("importing"),
            BarColumn(),
            DownloadColumn(),
            TextColumn("{task.fields[rows]} structures"),
            TimeRemainingColumn(),
            console=Console(file=out),
            transient=True,
        ) as bar:
            task = bar.add_task("import", total=size, rows=0)

            async def advance(done: int, rows: int) -> None:
                bar.update(task, completed=done, rows=f"{rows:,}")

            yield advance
        return

    last = time.monotonic()

    async def report(done: int, rows: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PLAIN_EVERY_SECONDS:
            last = now
            share = f"{100 * done / size:.0f} %" if size else "?"
            print(
                f"esms-usage: {share} of the file read ({done:,} of {size:,} bytes), "
                f"{rows:,} structures",
                file=out,
                flush=True,
            )

    yield report
