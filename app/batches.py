"""Reading a batch body: bounded in size, JSON or CSV, rows handed over as dicts (or as
the typed rows of a domain's own decoder, when it reads the whole batch)."""

from __future__ import annotations

import csv
import gc
import io
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
from fastapi import Request
from pydantic import BaseModel

from app.errors import DomainError, FieldError, Invalid, TooLarge

# The models of the batch bodies the routes read themselves, for the OpenAPI components.
BATCH_MODELS: list[type[BaseModel]] = []


def batch_request_body(model: type[BaseModel], csv_example: str) -> dict[str, Any]:
    """The `openapi_extra` of a route that reads its batch itself (`read_batch`): JSON as
    `model`, or CSV with the same columns, each with an example."""
    BATCH_MODELS.append(model)
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}},
                "text/csv": {
                    "schema": {
                        "type": "string",
                        "description": "a header line, then one row "
                        "per line; the same columns as the JSON fields",
                    },
                    "example": csv_example,
                },
            },
        }
    }


def batch_schemas() -> dict[str, Any]:
    """The JSON schemas of the batch models and of the models they use, by name."""
    schemas: dict[str, Any] = {}
    for model in BATCH_MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it exceeds `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"The body exceeds {limit} bytes; split the batch.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"The body exceeds {limit} bytes; split the batch.")
        chunks.append(chunk)
    return b"".join(chunks)


def _media(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def is_csv(content_type: str) -> bool:
    return _media(content_type) in ("text/csv", "application/csv")


def is_json(content_type: str) -> bool:
    return _media(content_type) in ("application/json", "")


BOM = b"\xef\xbb\xbf"


def _position(text: str, index: int) -> tuple[int, int]:
    """Line and column (from 1) of the character at `index` of `text`."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _unreadable(what: str, code: str, where: str, why: str) -> DomainError:
    said = f"{where}: {why}" if where else why
    return DomainError(f"{what}: {said}.", [FieldError("body", code, said)])


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        names = [name for name, _ in pairs]
        twice = next(name for name in names if names.count(name) > 1)
        raise ValueError(f"the member {twice!r} appears twice in one object")
    return members


def parse_json(body: bytes) -> Any:
    """A JSON document read strictly: a byte order mark is allowed; malformed syntax, invalid
    UTF-8, lone surrogates, nesting deeper than 1024 levels and a member named twice in one
    object are refused with 400, saying where."""
    if body.startswith(BOM):
        body = body[len(BOM) :]
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _unreadable(
            "The body is not valid JSON",
            "invalid_json",
            f"line {exc.lineno}, column {exc.colno}",
            exc.msg,
        ) from exc
    reject_duplicate_members(body)
    return document


def reject_duplicate_members(body: bytes) -> None:
    """Refuse a JSON document (already known to be valid) that names a member twice in one
    object: the fast decoders keep the last silently, and the sender meant one of them."""
    try:
        json.loads(body, object_pairs_hook=_unique_members)
    except RecursionError as exc:  # deeper than this interpreter reads, and than anyone means
        raise _unreadable(
            "The body is not valid JSON", "invalid_json", "", "nested too deeply"
        ) from exc
    except ValueError as exc:
        raise _unreadable("The body is not valid JSON", "duplicate_member", "", str(exc)) from exc


def parse_csv(body: bytes) -> list[dict[str, Any]]:
    """The rows of a CSV with a header line: UTF-8 (a byte order mark is allowed), `,` or `;`,
    lines ending with LF or CRLF (mixed too). Invalid UTF-8, a NUL byte, a carriage return
    inside an unquoted field and a quote left open are refused with 400, saying where."""
    what = "The CSV body cannot be read"
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        column = exc.start - body.rfind(b"\n", 0, exc.start)  # in bytes
        raise _unreadable(
            what, "encoding", f"line {line}, column {column}", "bytes that are not UTF-8"
        ) from exc
    nul = text.find("\x00")
    if nul >= 0:
        line, column = _position(text, nul)
        raise _unreadable(what, "nul_byte", f"line {line}, column {column}", "a NUL byte")
    sample = text[:4096]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter, strict=True)
    rows: list[Any] = []
    try:
        if not reader.fieldnames or "finess" not in reader.fieldnames:
            raise DomainError(
                "The CSV needs a header line naming its columns (finess, …).",
                [FieldError("body", "missing_header", "no finess column in the header")],
            )
        for record in reader:
            if None in record:
                rows.append({"__extra_cells__": record.pop(None), **record})
            else:
                rows.append(record)
    except csv.Error as exc:
        # DictReader.line_num: the last line of the last record read whole.
        raise _unreadable(what, "invalid_csv", *_csv_fault(text, reader.line_num + 1, exc)) from exc
    return rows


def _csv_fault(text: str, record_line: int, exc: csv.Error) -> tuple[str, str]:
    """Where a csv.Error is and what it means, in the sender's words."""
    message = str(exc)
    if "new-line character" in message:
        # The reader stops at the first line holding a carriage return not followed by LF.
        lines = text.split("\n")
        for number, line in enumerate(lines, start=1):
            column = line.rstrip("\r").find("\r")
            if column >= 0:
                return (
                    f"line {number}, column {column + 1}",
                    "a carriage return inside an unquoted field (end lines with LF or CRLF, "
                    "or quote the field)",
                )
    if "unexpected end of data" in message:
        return f"line {record_line}", "a quoted field is not closed before the end of the body"
    return f"line {record_line}", message


def parse_batch(body: bytes, content_type: str, key: str = "extracts") -> list[Any]:
    """The rows of a batch sent as CSV (with a header line) or as JSON `{key: [...]}`."""
    media = _media(content_type)
    if is_csv(content_type):
        return parse_csv(body)
    if not is_json(content_type):
        raise DomainError(
            f"Unsupported content type {media!r}: send application/json or text/csv.",
            [FieldError("Content-Type", "unsupported", "application/json or text/csv")],
        )
    document = parse_json(body)
    if not isinstance(document, dict) or not isinstance(document.get(key), list):
        raise Invalid(
            f'The body must be an object {{"{key}": [...]}}.',
            [FieldError(key, "required", f"a list of {key} is required")],
        )
    return document[key]


async def read_batch(
    request: Request,
    key: str,
    decode: Callable[[bytes], Sequence[Any] | None] | None = None,
) -> tuple[Sequence[Any], bytes, bool]:
    """A batch request's rows, its raw body (for the audit hash) and whether it is CSV.

    `decode` reads a JSON body whose rows are all well formed at once (None when it cannot:
    the body is then read as any JSON). Refused with 413 above the body size or the row
    count of the settings.
    """
    from app.config import get_settings

    settings = get_settings()
    body = await read_limited_body(request, settings.max_body_bytes)
    content_type = request.headers.get("content-type", "application/json")
    with collector_paused():
        rows = None
        if decode is not None and is_json(content_type):
            rows = decode(body)
            if rows is not None:
                reject_duplicate_members(body)
        if rows is None:
            rows = parse_batch(body, content_type, key)
    if len(rows) > settings.max_batch_rows:
        raise TooLarge(
            f"A batch holds at most {settings.max_batch_rows} rows; this one has {len(rows)}."
        )
    return rows, body, is_csv(content_type)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector over a synchronous stretch of batch work.

    A batch builds thousands of small objects at once; every few hundred of them the
    collector would walk the young ones, and now and then every object of the process,
    to find no cycle: the rows of a batch form none and are freed with the batch. For code
    without `await` only, so that no other request runs while the collector is off.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
