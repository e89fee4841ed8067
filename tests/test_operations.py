"""Health, request ids and the append-only audit trail."""

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.db import Database, make_engine, set_database
from app.main import create_app


async def test_health_is_503_when_the_database_does_not_answer(db):
    unreachable = Database(make_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none"))
    app = create_app(unreachable)
    set_database(unreachable)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get("/health")
    finally:
        set_database(db)
        await unreachable.dispose()
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"


async def test_request_id_is_echoed_in_headers_and_problems(client):
    response = await client.get("/api/v1/vendors", headers={"X-Request-ID": "abc-123"})
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["request_id"] == "abc-123"
    generated = await client.get("/health")
    assert len(generated.headers["x-request-id"]) == 32


async def test_writes_are_audited_and_the_trail_cannot_be_changed(
    client, factory, session, owner_engine
):
    admin = await factory.token("national")
    await client.post(
        "/api/v1/vendors",
        json={"siren": "732829320", "name": "Éditeur"},
        headers={**admin, "X-Request-ID": "req-vendor-1"},
    )
    row = (
        await session.execute(
            text(
                "SELECT action, object_id, request_id, payload_hash FROM audit_event "
                "WHERE request_id = 'req-vendor-1'"
            )
        )
    ).one()
    assert row.action == "vendor.create" and row.object_id == "732829320"
    assert len(row.payload_hash) == 64
    # Not even the schema's owner (the service's own role may not try: test_least_privilege).
    async with owner_engine.connect() as owner:
        for statement in ("UPDATE audit_event SET action = 'x'", "DELETE FROM audit_event"):
            with pytest.raises(DBAPIError, match="append-only"):
                async with owner.begin():
                    await owner.execute(text(statement))


async def test_an_establishment_with_extracts_cannot_be_deleted(client, factory, session):
    from tests.test_extracts import extract, push

    _, (finess,), headers = await factory.vendor_with_establishments()
    await push(client, headers, extract(finess, "2025-01", "2025-03"))
    with pytest.raises(DBAPIError, match="has extracts"):
        async with session.begin_nested():
            await session.execute(
                text("DELETE FROM establishment WHERE finess = :f"), {"f": finess}
            )


async def test_audit_trail_is_readable_by_national_and_scoped_for_an_ars(client, factory):
    admin = await factory.token("national")
    await client.post(
        "/api/v1/establishments",
        json={
            "finess": "750712184",
            "name": "EHPAD",
            "legal_entity_finess": "750712192",
            "department": "75",
            "category_code": "500",
        },
        headers={**admin, "X-Request-ID": "req-audit-1"},
    )
    await client.post(
        "/api/v1/vendors", json={"siren": "732829320", "name": "Éditeur"}, headers=admin
    )
    everything = (await client.get("/api/v1/audit", params={"limit": 5}, headers=admin)).json()
    actions = [e["action"] for e in everything["items"]]
    assert actions[:2] == ["vendor.create", "establishment.create"]  # newest first
    created = everything["items"][1]
    assert (created["object_id"], created["region"], created["request_id"]) == (
        "750712184",
        "11",
        "req-audit-1",
    )
    ars = await factory.token("ars", region="11")
    mine = (await client.get("/api/v1/audit", headers=ars)).json()["items"]
    assert {e["region"] for e in mine} == {"11"}
    assert "vendor.create" not in {e["action"] for e in mine}  # not a regional write
    assert (
        await client.get("/api/v1/audit", params={"region": "84"}, headers=ars)
    ).status_code == 404
    grades = await factory.token("grades", region="11")
    assert (await client.get("/api/v1/audit", headers=grades)).status_code == 403
