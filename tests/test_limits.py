"""Retries, abuse limits and malformed input: Idempotency-Key on every POST, 413, 429, 400."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest
from sqlalchemy import text

from app.audit.idempotency import request_hash
from app.config import get_settings
from tests.test_extracts import extract


@pytest.fixture
def settings(monkeypatch):
    def apply(**env: str):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield apply
    get_settings.cache_clear()


async def test_idempotent_retry_of_any_post_writes_nothing_twice(client, factory, session):
    admin = await factory.token("national")
    keyed = {**admin, "Idempotency-Key": "vendor-creation-1"}
    body = {"siren": "732829320", "name": "Éditeur"}
    first = await client.post("/api/v1/vendors", json=body, headers=keyed)
    retry = await client.post("/api/v1/vendors", json=body, headers=keyed)
    assert first.status_code == retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true" and retry.json() == first.json()
    audited = await session.execute(
        text(
            "SELECT count(*) FROM audit_event WHERE action = 'vendor.create' "
            "AND object_id = '732829320'"
        )
    )
    assert audited.scalar_one() == 1
    other = await client.post("/api/v1/vendors", json=body | {"name": "Autre"}, headers=keyed)
    assert other.status_code == 422 and other.json()["errors"][0]["code"] == "reused"
    # keys belong to the caller: another token may use the same key
    colleague = await factory.token("national")
    own = await client.post(
        "/api/v1/vendors", json=body, headers={**colleague, "Idempotency-Key": "vendor-creation-1"}
    )
    assert own.status_code == 409 and "idempotent-replayed" not in own.headers


async def test_a_retry_while_the_first_runs_gets_409(client, factory, engine, session):
    _, (finess,), headers = await factory.vendor_with_establishments()
    body = json.dumps({"extracts": [extract(finess, "2025-01", "2025-03")]}).encode()
    token_hash = hashlib.sha256(headers["Authorization"].split()[1].encode()).hexdigest()
    token_id = (
        await session.execute(
            text("SELECT id FROM access_token WHERE token_hash = :h"), {"h": token_hash}
        )
    ).scalar_one()
    caller = f"token:{token_id}"  # keys belong to the token, not to its bytes
    async with engine.begin() as connection:  # the first request, still running
        await connection.execute(
            text(
                "INSERT INTO idempotency_key (principal, key, request_hash, status_code, response)"
                " VALUES (:p, 'k-409', :h, 0, '')"
            ),
            {"p": caller, "h": request_hash("POST", "/api/v1/extracts", "", body)},
        )
    response = await client.post(
        "/api/v1/extracts",
        content=body,
        headers={**headers, "Idempotency-Key": "k-409", "Content-Type": "application/json"},
    )
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "in_progress"


async def test_rate_limit_answers_429_with_retry_after(client, factory, settings):
    settings(ESMS_RATE_LIMIT_PER_MINUTE="3")
    headers = await factory.token("national")
    statuses = [
        (await client.get("/api/v1/vendors", headers=headers)).status_code for _ in range(5)
    ]
    assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
    limited = await client.get("/api/v1/vendors", headers=headers)
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.headers["content-type"] == "application/problem+json"
    other = await factory.token("national")  # the limit is per token
    assert (await client.get("/api/v1/vendors", headers=other)).status_code == 200


async def test_oversized_body_on_any_endpoint_is_413(client, factory, settings):
    settings(ESMS_MAX_BODY_BYTES="1000")
    admin = await factory.token("national")
    response = await client.post(
        "/api/v1/vendors", json={"siren": "732829320", "name": "x" * 2000}, headers=admin
    )
    assert response.status_code == 413


async def test_slow_body_is_400_not_500(client, factory, settings):
    settings(ESMS_BODY_TIMEOUT_SECONDS="0.2")
    _, _, headers = await factory.vendor_with_establishments()

    async def trickle():
        yield b'{"extracts": ['
        await asyncio.sleep(0.5)
        yield b"]}"

    response = await client.post(
        "/api/v1/extracts",
        content=trickle(),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "body_timeout"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"\xff\xfe not utf-8", "text/csv"),
        (b"finess,period_start\n750712184", "text/csv"),
        (b'{"extracts": [1, "a", null]}', "application/json"),
        (b"[]", "application/json"),
        (b"", "application/json"),
        (b"<xml/>", "application/xml"),
    ],
)
async def test_malformed_batches_are_4xx(client, factory, content, content_type):
    _, _, headers = await factory.vendor_with_establishments()
    response = await client.post(
        "/api/v1/extracts", content=content, headers={**headers, "Content-Type": content_type}
    )
    assert 400 <= response.status_code < 500 or response.json()["status"] == "rejected"
    assert response.status_code != 500
