"""Recording writes in the append-only audit trail."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.audit.models import AuditEvent
from app.request_context import current_request_id


def payload_hash(payload: bytes | Any) -> str:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload, default=str)
    return hashlib.sha256(raw).hexdigest()


async def record(
    session: AsyncSession,
    principal: Principal,
    action: str,
    object_type: str,
    object_id: str,
    *,
    payload: bytes | Any = None,
    region_code: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    person = principal.person
    session.add(
        AuditEvent(
            token_id=principal.token_id,
            person_id=person.id if person else None,
            person_issuer=person.issuer if person else None,
            person_subject=person.subject if person else None,
            person_email=person.email if person else None,
            role=principal.role.value,
            principal=principal.label,
            region_code=region_code,
            action=action,
            object_type=object_type,
            object_id=object_id,
            request_id=current_request_id(),
            payload_hash=payload_hash(payload) if payload is not None else None,
            detail=detail or {},
        )
    )
