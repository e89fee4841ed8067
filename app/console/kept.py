"""Figures a page shows, kept until the data moves: the API's dashboard answers are kept the
same way (`dashboard_cache`, under the data version that every audited write moves when it
commits), so a page computed once serves every visit of the same scope until then."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.clock import today
from app.dashboards import repository


def _key(principal: Principal, name: str, params: dict[str, Any]) -> str:
    scope = f"{principal.role.value}:{principal.vendor_siren or principal.region_code or 'all'}"
    query = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if v is not None)
    return hashlib.sha256(f"console:{name}|{scope}|{query}".encode()).hexdigest()


async def kept(
    session: AsyncSession,
    principal: Principal,
    name: str,
    params: dict[str, Any],
    compute: Callable[[], Awaitable[Any]],
) -> Any:
    """What `compute()` returns (plain JSON values), from the cache when the data version
    and the day are those it was computed for (overdue flags and late months follow the
    day)."""
    key = _key(principal, name, params)
    # Read before computing: the figures then hold every write of this version (or later
    # ones, never fewer), so what is kept under it is never older than the data.
    version = f"{await repository.data_version(session)}|{today()}"
    hit = await repository.cached(session, key)
    if hit is not None and hit.version == version:
        return orjson.loads(hit.body)
    started = time.perf_counter()
    value = await compute()
    elapsed = round((time.perf_counter() - started) * 1000)
    await repository.store(session, key, version, "application/json", orjson.dumps(value), elapsed)
    return value
