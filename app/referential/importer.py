"""Loading a FINESS extraction file into the referential, in chunks of set-based upserts."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from app.access.principal import COMMAND_LINE
from app.audit import service as audit
from app.db import Database
from app.referential.finess_file import FinessFileError, FinessRecord, iter_finess_file
from app.referential.repository import upsert_establishments

CHUNK = 20_000


@dataclass
class ImportReport:
    read: int = 0
    created: int = 0
    updated: int = 0
    errors: list[FinessFileError] = field(default_factory=list)

    @property
    def unchanged(self) -> int:
        return self.read - self.created - self.updated


async def import_records(database: Database, items) -> ImportReport:
    """Upsert establishments from FinessRecord items (errors are reported, not stored).

    The whole file is one transaction: a file that fails half-way leaves nothing behind.
    """
    report = ImportReport()
    iterator = iter(items)
    async with database.sessions() as session, session.begin():
        while chunk := list(islice(iterator, CHUNK)):
            records = []
            seen: set[str] = set()
            for item in chunk:
                if isinstance(item, FinessRecord):
                    if item.finess in seen:
                        report.errors.append(
                            FinessFileError(item.line, f"{item.finess} appears twice in the file")
                        )
                        continue
                    seen.add(item.finess)
                    report.read += 1
                    records.append(
                        (
                            item.finess,
                            item.name,
                            item.legal_entity_finess,
                            item.department,
                            item.category_code,
                            item.category_label,
                        )
                    )
                else:
                    report.errors.append(item)
            created, updated = await upsert_establishments(session, records)
            report.created += created
            report.updated += updated
        await audit.record(
            session,
            COMMAND_LINE,
            "referential.import",
            "establishment",
            "*",
            detail={
                "read": report.read,
                "created": report.created,
                "updated": report.updated,
                "refused": len(report.errors),
            },
        )
    return report


async def import_finess_file(database: Database, path: Path) -> ImportReport:
    return await import_records(database, iter_finess_file(path))
