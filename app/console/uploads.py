"""A vendor's file uploaded in the console goes through the API's ingestion: the same body
reading (CSV or JSON), the same checks, the same summary, the same audit."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.batches import is_csv, parse_batch
from app.config import get_settings
from app.errors import TooLarge
from app.extracts.ingestion import EXTRACTS
from app.ingestion import BatchOptions, ingest


def content_type(name: str, body: bytes) -> str:
    """What the file holds, by its extension, else by its first character."""
    lowered = name.lower()
    if lowered.endswith(".json"):
        return "application/json"
    if lowered.endswith(".csv"):
        return "text/csv"
    return "application/json" if body.lstrip()[:1] in (b"{", b"[") else "text/csv"


async def ingest_file(
    session: AsyncSession,
    principal: Principal,
    body: bytes,
    name: str,
    *,
    dry_run: bool,
    request: Request | None = None,
) -> dict[str, Any]:
    settings = get_settings()
    if len(body) > settings.max_body_bytes:
        raise TooLarge(f"The file exceeds {settings.max_body_bytes} bytes; split it.")
    kind = content_type(name, body)
    rows = parse_batch(body, kind, "extracts")
    if len(rows) > settings.max_batch_rows:
        raise TooLarge(
            f"A file holds at most {settings.max_batch_rows} rows; this one has {len(rows)}."
        )
    return await ingest(
        session,
        principal,
        rows,
        BatchOptions(dry_run=dry_run),
        EXTRACTS,
        payload=body,
        text_cells=is_csv(kind),
    )
