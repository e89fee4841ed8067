"""Bodies that cannot be read answer 400 (or 422) with a problem+json saying what is wrong and
where, never 500; random bytes under either content type to every POST never get a server
error; and no answer, not even an unexpected error's 500, closes the client's connection."""

from __future__ import annotations

import asyncio
import contextlib
import os
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.access.principal import Role
from app.access.repository import create_token
from app.controls.models import Control
from app.db import APP_ROLE, Database, as_role, make_engine, set_database
from app.identity import repository as people
from app.main import create_app
from tests.benchmarks.common import free_port
from tests.conftest import _create_database
from tests.factories import Factory

CSV_HEADER = (
    b"finess,period_start,period_end,accompanied_persons,eligible_persons,"
    b"mssante_messages_sent,dmp_fed_persons,active_files,active_files_with_care_project,"
    b"active_files_with_agenda_event"
)


def csv_body(finess: str, row_end: bytes = b"\n") -> bytes:
    return CSV_HEADER + b"\n" + f"{finess},2025-01,2025-03,80,75,60,55,78,72,74".encode() + row_end


@pytest.fixture
async def vendor(factory) -> tuple[str, dict[str, str]]:
    _, (finess,), headers = await factory.vendor_with_establishments()
    await factory.session.commit()
    return finess, headers


@pytest.mark.parametrize(
    ("name", "body", "content_type", "code", "where"),
    [
        (
            "a carriage return inside a field (found by a fuzzer: it was a 500)",
            b"\r:\xf1\x84\xac\x86l\xc3\x8f",
            "text/csv",
            "invalid_csv",
            "line 1, column 1",
        ),
        (
            "a stray carriage return in a row",
            CSV_HEADER + b"\n750712184,2025-01,20\r25-03,80,75,60,55,78,72,74\n",
            "text/csv",
            "invalid_csv",
            "line 2, column 21",
        ),
        ("a NUL byte", CSV_HEADER + b"\n7507\x0012184,2025-01\n", "text/csv", "nul_byte", "line 2"),
        (
            "bytes that are not UTF-8",
            CSV_HEADER + b"\n\xe9t\xe9\n",
            "text/csv",
            "encoding",
            "line 2",
        ),
        (
            "a quote left open",
            CSV_HEADER + b'\n750712184,"2025-01,2025-03\n',
            "text/csv",
            "invalid_csv",
            "line 2",
        ),
        (
            "a lone surrogate",
            b'{"extracts": ["\\udc00"]}',
            "application/json",
            "invalid_json",
            "line 1",
        ),
        (
            "a member named twice",
            b'{"extracts": [{"finess": "750712184", "finess": "750712192"}]}',
            "application/json",
            "duplicate_member",
            "appears twice",
        ),
        (
            "nesting deeper than anyone means",
            b'{"extracts": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            "application/json",
            "invalid_json",
            "depth",
        ),
    ],
)
async def test_an_unreadable_batch_is_refused_saying_what_and_where(
    client, vendor, name, body, content_type, code, where
):
    _, headers = vendor
    response = await client.post(
        "/api/v1/extracts", content=body, headers={**headers, "content-type": content_type}
    )
    assert response.status_code == 400, (name, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    (error,) = response.json()["errors"]
    assert (error["field"], error["code"]) == ("body", code), (name, error)
    assert where in error["message"], (name, error)


async def test_a_bom_and_mixed_line_endings_are_read(client, vendor):
    finess, headers = vendor
    body = b"\xef\xbb\xbf" + CSV_HEADER + b"\r\n" + csv_body(finess).split(b"\n", 1)[1]
    body += f"{finess},2025-04,2025-04,80,75,60,55,78,72,74\r\n".encode()
    response = await client.post(
        "/api/v1/extracts", content=body, headers={**headers, "content-type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["counts"]["created"] == 2
    as_json = await client.post(
        "/api/v1/extracts",
        content=b'\xef\xbb\xbf{"extracts": []}',
        headers={**headers, "content-type": "application/json"},
    )
    assert as_json.status_code == 200, as_json.text


async def test_a_json_body_of_a_model_is_read_as_strictly(client, factory):
    """The same strict reading for the bodies FastAPI validates (projects, vendors...)."""
    headers = await factory.token("national")
    await factory.session.commit()
    for body, code in [
        (b'{"siren": "732829320", "name": "\\ud800"}', "invalid_json"),
        (b'{"siren": "732829320", "name": "A", "name": "B"}', "duplicate_member"),
        (b"[" * 3000 + b"]" * 3000, "invalid_json"),
    ]:
        response = await client.post(
            "/api/v1/vendors", content=body, headers={**headers, "content-type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert response.json()["errors"][0]["code"] == code


# -- random bytes to every POST ------------------------------------------------------------


class Fuzzed:
    """A database of its own with an object behind every POST's path, the tokens that may
    call them, and the app, all on one event loop that the (synchronous) examples drive."""

    def __init__(self, runner: asyncio.Runner, client: httpx.AsyncClient, calls: list[Any]):
        self.runner = runner
        self.client = client
        self.calls = calls  # (path, headers)


async def _world(pg_server: str) -> tuple[Database, list[tuple[str, dict[str, str]]]]:
    from app import migrate

    url = await _create_database(pg_server, "esms_bytes")
    await migrate.upgrade(url)
    database = Database(make_engine(as_role(url, APP_ROLE), pool_size=2))  # the service's
    async with database.sessions() as session:
        factory = Factory(session, None)  # type: ignore[arg-type]
        vendor = await factory.vendor()
        finess = await factory.establishment("75")
        project = await factory.project(vendor, [finess], region="11")
        pilot = await factory.pilot_application(finess, status="selected")
        application = await factory.pilot_application(department="75")
        national = await factory.token("national")
        vendor_headers = await factory.token("vendor", vendor=vendor)
        token, _ = await create_token(session, Role.ARS, region_code="11")
        person, _ = await people.create(
            session, "https://idp.example.org", "agent", kind="person", email=None, name=None
        )
        control = Control(
            region_code="11",
            finess=finess,
            project_id=project,
            kind="documents",
            controlled_on=date(2025, 1, 10),
            findings="Facture non justifiée",
            compliant=False,
            unduly_paid=Decimal("100.00"),
        )
        session.add(control)
        await session.commit()
    ars = {"Authorization": f"Bearer {token}"}
    calls = [
        ("/api/v1/vendors", national),
        ("/api/v1/establishments", ars),
        ("/api/v1/projects", ars),
        (f"/api/v1/projects/{project}/events", ars),
        ("/api/v1/extracts", vendor_headers),
        ("/api/v1/extracts/withdrawals", vendor_headers),
        ("/api/v1/pilots/applications", ars),
        (f"/api/v1/pilots/applications/{application}/decision", ars),
        ("/api/v1/pilots/usage", vendor_headers),
        (f"/api/v1/pilots/{pilot}/events", ars),
        ("/api/v1/tokens", national),
        ("/api/v1/people", national),
        (f"/api/v1/people/{person.id}/grants", national),
        ("/api/v1/referential/imports", national),
        ("/api/v1/controls/plans", ars),
        ("/api/v1/controls", ars),
        (f"/api/v1/controls/{control.id}/recovery", ars),
    ]
    return database, calls


@pytest.fixture(scope="module")
def fuzzed(pg_server) -> Fuzzed:
    with asyncio.Runner() as runner:
        database, calls = runner.run(_world(pg_server))
        set_database(database)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(database)), base_url="http://bytes"
        )
        try:
            yield Fuzzed(runner, client, calls)
        finally:
            set_database(None)
            runner.run(client.aclose())
            runner.run(database.dispose())


def test_every_post_is_listed(fuzzed):
    posts = {
        path
        for path, operations in create_app().openapi()["paths"].items()
        if "post" in operations and path.startswith("/api/")
    }
    listed = {path.split("/")[3] for path, _ in fuzzed.calls}
    assert {path.split("/")[3] for path in posts} <= listed
    assert len(fuzzed.calls) == len(posts)


def _prefixed(prefixes: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.builds(bytes.__add__, st.sampled_from(prefixes), st.binary(max_size=200))


BODIES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")),
    _prefixed([b"{", b'{"extracts": [', b'{"usage": [{"finess": ', b"[", b'"', b"\xef\xbb\xbf"]),
    _prefixed([CSV_HEADER + b"\n", CSV_HEADER + b"\r\n750712184,", b"finess;month\r"]),
)


@settings(
    max_examples=int(os.environ.get("ESMS_BYTES_EXAMPLES", "150")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    call=st.integers(min_value=0, max_value=11),
    content_type=st.sampled_from(["application/json", "text/csv"]),
    body=BODIES,
)
def test_random_bytes_never_get_a_server_error(fuzzed, call, content_type, body):
    path, headers = fuzzed.calls[call]
    response = fuzzed.runner.run(
        fuzzed.client.post(path, content=body, headers={**headers, "content-type": content_type})
    )
    assert response.status_code < 500, (path, content_type, body, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json", response.text


# -- the connection stays usable -------------------------------------------------------------


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, dict[str, str], bytes]:
    """One request and its answer on an open HTTP/1.1 connection."""
    writer.write(request)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines if x)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


def _request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def test_no_answer_closes_the_connection(db, session):
    """An unexpected error gives one 500 problem, and the next request on the same
    keep-alive connection is served, as after a 400."""
    factory = Factory(session, None)  # type: ignore[arg-type]
    _, _, headers = await factory.vendor_with_establishments()
    await session.commit()
    app: FastAPI = create_app(db)

    @app.get("/boom", include_in_schema=False)
    async def boom() -> None:
        raise RuntimeError("a bug")

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="critical")
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for it)
            await asyncio.sleep(0.02)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            status, answer, body = await _exchange(reader, writer, _request("GET", "/boom", {}))
            assert status == 500 and answer["content-type"] == "application/problem+json"
            assert b"problem:internal" in body
            unreadable = _request(
                "POST", "/api/v1/extracts", {**headers, "Content-Type": "text/csv"}, b"\r:\xf1"
            )
            assert (await _exchange(reader, writer, unreadable))[0] == 400
            status, _, body = await _exchange(reader, writer, _request("GET", "/live", {}))
            assert (status, body) == (200, b'{"status":"live"}')
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
    finally:
        server.should_exit = True
        await serving


async def test_a_row_result_echoes_only_text(client, vendor):
    """A value that is not text (an object, a number) is refused with its reason and not
    echoed: the summary keeps its documented shape (found by the fuzzer)."""
    _, headers = vendor
    response = await client.post(
        "/api/v1/extracts",
        json={"extracts": [{"finess": 750712184, "period_start": {}, "period_end": [1]}]},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    (row,) = response.json()["results"]
    assert (row["finess"], row["period_start"], row["period_end"]) == (None, None, None)
    assert {e["field"] for e in row["errors"]} >= {"finess", "period_start", "period_end"}
