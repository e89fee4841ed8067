"""A vendor's file uploaded in the console goes through the one ingestion core, as a batch
sent to the API does: the same body reading (CSV or JSON), checks, summary and audit."""

from __future__ import annotations

from typing import Any

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
    session: AsyncSession, principal: Principal, body: bytes, name: str, *, dry_run: bool
) -> dict[str, Any]:
    limit = get_settings().max_body_bytes
    if len(body) > limit:
        raise TooLarge(f"The file exceeds {limit} bytes; split it.")
    kind = content_type(name, body)
    return await ingest(
        session,
        principal,
        parse_batch(body, kind, "extracts"),
        BatchOptions(dry_run=dry_run),
        EXTRACTS,
        payload=body,
        text_cells=is_csv(kind),
    )
