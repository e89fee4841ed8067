"""Figures a page shows, kept until the data moves: the API's dashboard answers are kept the
same way (`dashboard_cache`, under the data version that every audited write moves when it
commits), so a page computed once serves every visit of the same scope until then.

Two layers, as for the API's answers (`app.answers`):
- each process keeps the figures it served last in memory, already prepared for the page
  (`prepare`: models, a chart drawn), under the version and day they were computed for: a
  repeat visit computes, validates and draws nothing;
- the `dashboard_cache` table, where a new process (or another pod) finds them as plain JSON.

The version is the one read with the session on the page's arrival
(`request.state.data_version`, see `app.console.sessions`), else read now. Read before
computing: the figures then hold every write of that version (or later ones, never fewer), so
what is kept under it is never older than the data.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.answers import data_version
from app.clock import today
from app.dashboards import repository
from app.memo import keeper

# What pages served last, prepared (a prepared value is shared by every visit: pages only
# read it).
prepared = keeper(512)


def _key(principal: Principal, name: str, params: dict[str, Any]) -> str:
    query = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if v is not None)
    return hashlib.sha256(f"console:{name}|{principal.scope_key}|{query}".encode()).hexdigest()


def _as_is(value: Any) -> Any:
    return value


async def kept(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    name: str,
    params: dict[str, Any],
    compute: Callable[[], Awaitable[Any]],
    *,
    prepare: Callable[[Any], Any] = _as_is,
) -> Any:
    """`prepare(compute())` (compute returns plain JSON values), from memory or from the
    shared table when the data version and the day are those it was computed for (overdue
    flags and late months follow the day)."""
    key = _key(principal, name, params)
    version = f"{await data_version(request, session)}|{today()}"
    found, value = prepared.get(key, version)
    if found:
        return value
    hit = await repository.cached(session, key)
    if hit is not None and hit.version == version:
        value = prepare(orjson.loads(hit.body))
    else:
        started = time.perf_counter()
        plain = await compute()
        elapsed = round((time.perf_counter() - started) * 1000)
        body = orjson.dumps(plain)
        await repository.store(session, key, version, "application/json", body, elapsed)
        value = prepare(plain)
    prepared.keep(key, version, value)
    return value
