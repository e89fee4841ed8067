"""Read answers kept by data version: computed once, served again while the data has not moved.

Every write is audited, so the data version (a counter every audited write moves when it
commits, read on the request's arrival) moves with every change a reader could see. An
answer is kept with the version it was computed at, and with the day or month it depends on
(a compliance's `overdue` follows the day; a dashboard's default range the month), and
served only while the request's own version is that one. So a reader never gets figures
older than the data, in any process.

- Each process keeps the answers it served last in memory (`Answers`, 32 MB at most): a warm
  read is the statement on arrival and nothing else.
- The answer carries an ETag: a client that sends it back in If-None-Match gets a 304
  (nothing computed when the answer is kept) while the data has not moved; only once the
  answer exists for the caller's scope, so that a caller out of scope still gets its 404.
- A cache key starts with the caller's scope (role and vendor or region): an answer is only
  ever served to callers who see exactly what its first caller saw. Whoever else asks the
  same URL computes their own, and a 404 (out of their scope) is never kept.
- `shared`: the dashboards also keep their answers in the `dashboard_cache` table, so a new
  process (or another pod) fills itself from there instead of computing them again.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Literal

from fastapi import Request, Response

from app.access.principal import Principal
from app.clock import Month, today
from app.dashboards import repository
from app.memo import registered

# The dashboards may be a minute old in a browser's cache (they change monthly, and a poll
# then costs nothing); the other reads are revalidated at each use, so that a client that
# keeps them never shows figures older than the data (a 304 costs one round trip).
DASHBOARD_CACHE_CONTROL = "private, max-age=60"
REVALIDATE = "private, no-cache"
# For `responses=` of the routes that answer through `answer`.
NOT_MODIFIED = {"description": "Not modified: the If-None-Match ETag is still current"}


class Answers:
    """The answers this process served last, by cache key, each with its version: an answer
    is only served for the version it was computed at."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.size = 0
        self.entries: OrderedDict[str, tuple[str, str, bytes]] = OrderedDict()

    def get(self, key: str, version: str) -> tuple[str, bytes] | None:
        entry = self.entries.get(key)
        if entry is None or entry[0] != version:
            return None
        self.entries.move_to_end(key)
        return entry[1], entry[2]

    def keep(self, key: str, version: str, content_type: str, body: bytes) -> None:
        if len(body) > self.max_bytes // 8:
            return
        old = self.entries.pop(key, None)
        if old is not None:
            self.size -= len(old[2])
        self.entries[key] = (version, content_type, body)
        self.size += len(body)
        while self.size > self.max_bytes:
            _, (_, _, dropped) = self.entries.popitem(last=False)
            self.size -= len(dropped)

    def clear(self) -> None:
        self.entries.clear()
        self.size = 0


answers = registered(Answers(32 * 1024 * 1024))


async def data_version(request: Request, session) -> int:
    """The data version as the request arrived (read with its rate limit, or with a console
    page's session), else now."""
    version = getattr(request.state, "data_version", None)
    if version is None:
        version = await repository.data_version(session)
    return version


async def answer(
    request: Request,
    session,
    principal: Principal,
    render: Callable[[], Awaitable[tuple[bytes, str]]],
    *,
    follows: Literal["month", "day"] = "month",
    exact_url: bool = False,
    filename: str | None = None,
    cache_control: str = REVALIDATE,
    shared: ModuleType | None = None,
) -> Response:
    """The kept answer when the data (and the day or month it `follows`) has not moved, else
    `render()` (body and media type), kept for next time.

    The key is the caller's scope, the path and the query parameters (in any order; with
    `exact_url`, the whole URL as sent, for answers that quote it)."""
    moment = today() if follows == "day" else Month.current()
    version = f"{await data_version(request, session)}|{moment}"
    if exact_url:
        named = str(request.url)
    else:
        query = "&".join(sorted(f"{k}={v}" for k, v in request.query_params.multi_items()))
        named = f"{request.url.path}?{query}"
    key = hashlib.sha256(f"{principal.scope_key}|{named}".encode()).hexdigest()
    etag = '"' + hashlib.sha256(f"{key}|{version}".encode()).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": cache_control}
    if filename:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    kept, cache = answers.get(key, version), "hit"
    if kept is None and shared is not None:
        hit = await shared.cached(session, key)
        if hit is not None and hit.version == version:
            kept = hit.content_type, bytes(hit.body)
            answers.keep(key, version, *kept)
    if kept is None:
        started = time.perf_counter()
        body, media_type = await render()
        if shared is not None:
            elapsed = round((time.perf_counter() - started) * 1000)
            await shared.store(session, key, version, media_type, body, elapsed)
        answers.keep(key, version, media_type, body)
        kept, cache = (media_type, body), "miss"
    # Only once this scope's answer exists (its render found what it names): a caller out of
    # scope gets its 404 whatever ETag it sends.
    candidates = {t.strip() for t in request.headers.get("if-none-match", "").split(",")}
    if etag in candidates or "*" in candidates:
        return Response(status_code=304, headers=headers)
    return Response(kept[1], media_type=kept[0], headers=headers | {"X-Cache": cache})
