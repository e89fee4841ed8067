"""FINESS files uploaded through the API and imported in the background: the job answers at
once, its progress and report are read later, a bad file leaves the referential as it was.

The import commits in its own transactions (and reports progress from others while it runs),
so these tests use a database of their own instead of the rolled-back one of the others."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from app import migrate
from app.access.principal import Role
from app.access.repository import create_token
from app.db import Database, make_engine, set_database
from app.main import create_app
from tests.conftest import _create_database

DATA = Path(__file__).resolve().parent / "data"
SAMPLE = DATA / "finess-plus-structures-sample-20260309.json"
IMPORTS = "/api/v1/referential/imports"


@pytest.fixture(scope="module")
async def imports_database(pg_server: str):
    url = await _create_database(pg_server, "esms_imports")
    await migrate.upgrade(url)
    database = Database(make_engine(url, pool_size=4))
    yield database
    await database.dispose()


@pytest.fixture
async def api(imports_database: Database):
    set_database(imports_database)
    transport = httpx.ASGITransport(app=create_app(imports_database))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
    set_database(None)


async def headers(database: Database, role: Role, **bound: str) -> dict[str, str]:
    async with database.sessions() as session, session.begin():
        token, _ = await create_token(session, role, name="imports", **bound)
    return {"Authorization": f"Bearer {token}"}


async def finished(api: httpx.AsyncClient, auth: dict[str, str], location: str) -> dict:
    for _ in range(300):
        job = (await api.get(location, headers=auth)).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"the import did not finish: {job}")


async def count(database: Database) -> tuple:
    async with database.engine.connect() as conn:
        result = await conn.exec_driver_sql("SELECT count(*), max(updated_at) FROM establishment")
        return tuple(result.one())


async def test_an_uploaded_finess_plus_file_is_imported_with_its_report(api, imports_database):
    national = await headers(imports_database, Role.NATIONAL)
    response = await api.post(
        IMPORTS, params={"file_name": SAMPLE.name}, content=SAMPLE.read_bytes(), headers=national
    )
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["status"] == "queued" and started["file_name"] == SAMPLE.name
    assert response.headers["location"] == f"{IMPORTS}/{started['id']}"

    job = await finished(api, national, response.headers["location"])
    assert job["status"] == "succeeded", job
    assert job["progress"] == {
        "bytes_read": 108_503, "size_bytes": 108_503, "percent": 100.0, "rows_read": 27
    }  # fmt: skip
    report = job["report"]
    assert (report["format"], report["rows"], report["kept"]) == ("finess-plus", 27, 13)
    assert (report["created"], report["closed"], report["refused"]) == (13, 2, 0)
    assert report["skipped"]["category"] == {
        "108": 3, "109": 3, "122": 1, "141": 1, "146": 1, "161": 1, "321": 1, "355": 2, "365": 1
    }  # fmt: skip
    closed = await api.get("/api/v1/establishments/010790061", headers=national)
    assert closed.json()["closed_on"] == "1994-09-02"
    # The same file again changes nothing.
    again = await api.post(IMPORTS, content=SAMPLE.read_bytes(), headers=national)
    report = (await finished(api, national, again.headers["location"]))["report"]
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 0, 13)


async def test_a_truncated_upload_fails_and_leaves_the_referential_as_it_was(api, imports_database):
    national = await headers(imports_database, Role.NATIONAL)
    raw = SAMPLE.read_bytes()
    # Ends in the middle of the EHPAD of pmej[16]: the 5 establishments read before it
    # would be new ones, and none must be written.
    cut = raw.replace(b'"010780575"', b'"010780583"')[: raw.index(b'"numFinessEge" : "010780906"')]
    before = await count(imports_database)
    response = await api.post(IMPORTS, content=cut, headers=national)
    assert response.status_code == 202
    job = await finished(api, national, response.headers["location"])
    assert job["status"] == "failed" and job["report"] is None
    assert job["error"]["where"] == "pmej[16]"
    assert "truncated or malformed" in job["error"]["message"]
    assert await count(imports_database) == before
    unknown = await api.get("/api/v1/establishments/010780583", headers=national)
    assert unknown.status_code == 404


async def test_only_the_national_team_imports(api, imports_database):
    ars = await headers(imports_database, Role.ARS, region_code="84")
    refused = await api.post(IMPORTS, content=SAMPLE.read_bytes(), headers=ars)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert (await api.get(f"{IMPORTS}/1", headers=ars)).status_code == 403
    national = await headers(imports_database, Role.NATIONAL)
    assert (await api.get(f"{IMPORTS}/999999", headers=national)).status_code == 404
    empty = await api.post(IMPORTS, content=b"", headers=national)
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "body"


async def test_a_file_of_another_kind_is_refused_at_once(api, imports_database):
    national = await headers(imports_database, Role.NATIONAL)
    other = await api.post(IMPORTS, content=b"finess,period_start\n", headers=national)
    assert other.status_code == 422
    [error] = other.json()["errors"]
    assert error["field"] == "body" and error["message"].startswith("line 1: not a FINESS file")
    malformed = await api.post(
        IMPORTS, content=b'{"schemaVersion": "v1.0.0", "pmej": [{', headers=national
    )
    assert malformed.status_code == 202  # its start is the FINESS+ flow: the job finds the end
    job = await finished(api, national, malformed.headers["location"])
    assert job["status"] == "failed" and job["error"]["where"] == "pmej[0]"
    broken = await api.post(IMPORTS, content=b'{"broken', headers=national)
    assert broken.status_code == 400
    assert "not well-formed JSON" in broken.json()["errors"][0]["message"]
