"""FINESS files uploaded through the API, imported in the background as jobs.

Operators of a hosted service have no shell: the national team uploads the file, gets a job
at once, and reads its progress and, at the end, its report (or the error that stopped it)
from any server process, since both live in `referential_import`. The import itself is the
command line's (`importer.import_finess_file`): one transaction, so a file that fails leaves
the referential as it was. The upload is streamed to a temporary file, never held in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import time
from pathlib import Path

from fastapi import Request
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.config import get_settings
from app.db import Database
from app.errors import DomainError, FieldError, Invalid, TooLarge
from app.referential import repository
from app.referential.finess_formats import (
    FinessFormat,
    InvalidFinessFile,
    UnreadableFinessFile,
    open_finess_file,
)
from app.referential.importer import import_finess_file
from app.referential.models import ImportStatus, ReferentialImport

log = logging.getLogger("esms.referential.imports")

PROGRESS_EVERY_SECONDS = 1.0
_running: set[asyncio.Task[None]] = set()


async def receive_file(request: Request) -> tuple[Path, int]:
    """Stream the request body to a temporary file: its path and size (413 above the limit,
    422 when empty). The caller owns the file."""
    limit = get_settings().max_import_bytes
    handle, name = tempfile.mkstemp(prefix="esms-finess-import-")
    path, size = Path(name), 0
    try:
        with os.fdopen(handle, "wb") as file:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"The file exceeds {limit} bytes (ESMS_MAX_IMPORT_BYTES).")
                file.write(chunk)
        if size == 0:
            raise Invalid(
                "No file was sent.",
                [FieldError("body", "empty", "send the FINESS file as the request body")],
            )
    except BaseException:
        discard(path)
        raise
    return path, size


def discard(path: Path) -> None:
    path.unlink(missing_ok=True)


class UnreadableUpload(DomainError):
    status, title, code = 400, "Bad request", "malformed"


def _recognise(path: Path) -> FinessFormat:
    with path.open("rb") as binary:
        return open_finess_file(binary).format


async def recognise(path: Path) -> FinessFormat:
    """The format of an uploaded file, from its start: 400 when it is not well-formed, 422
    when it is a file of another kind (the rest is checked by the import, in the job)."""
    try:
        return await asyncio.to_thread(_recognise, path)
    except UnreadableFinessFile as exc:
        raise UnreadableUpload(
            "The file is not well-formed.", [FieldError("body", "malformed", str(exc))]
        ) from None
    except InvalidFinessFile as exc:
        raise Invalid(
            "The file is not a FINESS file.", [FieldError("body", "not_finess", str(exc))]
        ) from None


async def create(
    session: AsyncSession, principal: Principal, file_name: str | None, size: int
) -> ReferentialImport:
    job = ReferentialImport(
        status=ImportStatus.QUEUED,
        file_name=file_name,
        size_bytes=size,
        requested_by=principal.label,
    )
    return await repository.add_import(session, job)


async def start(
    database: Database, job: ReferentialImport, path: Path, principal: Principal
) -> None:
    """Run the import of a committed job in the background of this process."""
    task = asyncio.create_task(run(database, job.id, job.size_bytes, path, principal))
    _running.add(task)
    task.add_done_callback(_running.discard)


async def stop_running() -> None:
    """Cancel the imports of this process (server shutdown): their jobs end as failed."""
    for task in list(_running):
        task.cancel()
    for task in list(_running):
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _set(database: Database, job_id: int, **values: object) -> None:
    async with database.sessions() as session, session.begin():
        await repository.update_import(session, job_id, **values)


async def run(database: Database, job_id: int, size: int, path: Path, principal: Principal) -> None:
    """Import the file of a job, recording its progress, then its report or its error."""
    last = 0.0

    async def progress(done: int, rows: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_SECONDS:
            last = now
            await _set(database, job_id, bytes_read=done, rows_read=rows)

    try:
        await _set(database, job_id, status=ImportStatus.RUNNING, started_at=func.now())
        report = await import_finess_file(database, path, principal=principal, progress=progress)
    except InvalidFinessFile as exc:
        await _finish(
            database,
            job_id,
            ImportStatus.FAILED,
            error={"where": exc.where, "message": exc.message},
        )
    except asyncio.CancelledError:
        await _finish(
            database,
            job_id,
            ImportStatus.FAILED,
            error={"where": None, "message": "the server stopped during the import; send it again"},
        )
        raise
    except Exception:
        log.exception("referential import %s failed", job_id)
        await _finish(
            database,
            job_id,
            ImportStatus.FAILED,
            error={"where": None, "message": "the import stopped on an internal error"},
        )
    else:
        await _finish(
            database,
            job_id,
            ImportStatus.SUCCEEDED,
            report=report.as_dict(),
            rows_read=report.rows,
            bytes_read=size,
        )
    finally:
        discard(path)


async def _finish(database: Database, job_id: int, status: ImportStatus, **values: object) -> None:
    # Shielded: a job cancelled by a shutdown still records why it ended.
    with contextlib.suppress(Exception):
        await asyncio.shield(
            _set(database, job_id, status=status, finished_at=func.now(), **values)
        )
