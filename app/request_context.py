"""The id of the request being served, for the logs, the audit trail and the rows a request
writes: set by the request-id middleware, read anywhere below it without the web framework."""

from __future__ import annotations

from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request this code runs for; None outside a request (command line, tests)."""
    return REQUEST_ID.get()
