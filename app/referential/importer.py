"""Load a FINESS file into the referential: the one path of the command line, the API's import
jobs, the demo and the benchmarks.

The rows are read as a stream (`finess_formats`), sorted by the programme's rules
(`selection`), copied in chunks into a staging table, then written by one set-based upsert;
memory does not grow with the file. The whole file is one transaction: a file that fails
half-way (truncated, a wrong column count) leaves the referential as it was. Establishments
absent from a file are left alone: a daily FINESS+ flow lists only what changed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from app.access.principal import COMMAND_LINE, Principal
from app.audit import service as audit
from app.db import Database, raw_connection
from app.referential import repository
from app.referential.finess_formats import FinessFileError, FinessRow, open_finess_file
from app.referential.selection import FinessRecord, Skipped, SkipReason, select

CHUNK = 10_000
MAX_ERRORS = 100  # errors kept in a report; the others are counted

# Called after each chunk with (bytes of the file read, rows read).
Progress = Callable[[int, int], Awaitable[None]]


@dataclass
class ImportReport:
    """What an import did. `rows` counts the structures of the file, `kept` the programme's
    establishments among them (each number once); `created + updated + unchanged = kept`;
    `closed` the establishments this import recorded as closed."""

    format: str | None = None
    encoding: str | None = None
    rows: int = 0
    kept: int = 0
    created: int = 0
    updated: int = 0
    closed: int = 0
    skipped: dict[str, dict[str, int]] = field(
        default_factory=lambda: {reason.value: {} for reason in SkipReason}
    )
    errors: list[FinessFileError] = field(default_factory=list)
    error_count: int = 0

    @property
    def unchanged(self) -> int:
        return self.kept - self.created - self.updated

    @property
    def skipped_count(self) -> int:
        return sum(sum(by_key.values()) for by_key in self.skipped.values())

    def refuse(self, error: FinessFileError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(error)

    def skip(self, skipped: Skipped) -> None:
        by_key = self.skipped[skipped.reason.value]
        by_key[skipped.key] = by_key.get(skipped.key, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "encoding": self.encoding,
            "rows": self.rows,
            "kept": self.kept,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "closed": self.closed,
            "skipped": {
                reason: dict(sorted(by_key.items())) for reason, by_key in self.skipped.items()
            },
            "refused": self.error_count,
            "errors": [{"where": e.where, "message": e.message} for e in self.errors],
        }

    def summary(self) -> str:
        return (
            f"{self.rows} structures read, {self.kept} establishments of the programme: "
            f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.closed} closed; {self.skipped_count} skipped, {self.error_count} refused"
        )


def _next_chunk(iterator: Iterator[FinessRecord]) -> list[FinessRecord]:
    return list(islice(iterator, CHUNK))


def _selected(rows: Iterable[FinessRow | FinessFileError], report: ImportReport):
    for row in rows:
        report.rows += 1
        outcome = select(row) if isinstance(row, FinessRow) else row
        if isinstance(outcome, FinessRecord):
            yield outcome
        elif isinstance(outcome, Skipped):
            report.skip(outcome)
        else:
            report.refuse(outcome)


async def import_records(
    database: Database,
    records: Iterable[FinessRecord],
    *,
    principal: Principal = COMMAND_LINE,
    report: ImportReport | None = None,
    progress: Progress | None = None,
    position: Callable[[], int] = lambda: 0,
) -> ImportReport:
    """Store establishments of the programme, in one transaction; the report of what changed."""
    report = report or ImportReport()
    iterator: Iterator[FinessRecord] = iter(records)
    async with database.sessions() as session, session.begin():
        conn = await raw_connection(session)
        await repository.start_staging(conn)
        ordinal = 0
        # Reading and parsing run in a thread: a server keeps answering during an import.
        while chunk := await asyncio.to_thread(_next_chunk, iterator):
            await repository.stage(
                conn,
                [
                    (
                        ordinal + offset,
                        r.where,
                        r.finess,
                        r.name,
                        r.legal_entity_finess,
                        r.department,
                        r.category_code,
                        r.category_label,
                        r.closed_on,
                    )
                    for offset, r in enumerate(chunk)
                ],
            )
            ordinal += len(chunk)
            if progress is not None:
                await progress(position(), report.rows or ordinal)
        duplicates, total = await repository.staged_duplicates(conn, MAX_ERRORS)
        for row in duplicates:
            first, *again = row["places"]
            for place in again:
                report.refuse(FinessFileError(place, f"{row['finess']} already read at {first}"))
        report.error_count += max(0, total - len(duplicates))  # beyond the rows fetched
        counts = await repository.upsert_staged(conn)
        report.kept, report.created = counts["kept"], counts["created"]
        report.updated, report.closed = counts["updated"], counts["closed"]
        await audit.record(
            session,
            principal,
            "referential.import",
            "establishment",
            "*",
            detail={k: v for k, v in report.as_dict().items() if k != "errors"},
        )
    return report


async def import_finess_file(
    database: Database,
    path: str | os.PathLike[str],
    *,
    principal: Principal = COMMAND_LINE,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a FINESS file of any of the three formats (recognised from its content).

    Raises `InvalidFinessFile` (nothing written) for a file that cannot be read as a whole.
    """
    report = ImportReport()
    binary = await asyncio.to_thread(open, path, "rb")
    with binary:
        finess_file = await asyncio.to_thread(open_finess_file, binary)
        report.format = finess_file.format.value
        await import_records(
            database,
            _selected(finess_file.rows, report),
            principal=principal,
            report=report,
            progress=progress,
            position=binary.raw.tell,
        )
        report.encoding = finess_file.encoding
    return report
