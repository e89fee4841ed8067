"""Tokens, roles and scopes (SPEC §8): outside a caller's scope everything answers 404."""

from datetime import timedelta

from app.clock import now
from tests.test_extracts import extract, push


async def test_vendor_cannot_see_another_vendors_establishment(client, factory):
    _, (mine,), headers = await factory.vendor_with_establishments()
    _, (theirs,), their_headers = await factory.vendor_with_establishments()
    await push(client, their_headers, extract(theirs, "2025-01", "2025-03"))
    for path in (
        f"/api/v1/establishments/{theirs}",
        f"/api/v1/establishments/{theirs}/measurements",
        f"/api/v1/establishments/{theirs}/revisions",
    ):
        response = await client.get(path, headers=headers)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get(f"/api/v1/establishments/{mine}", headers=headers)).status_code == 200
    withdrawal = await client.post(
        "/api/v1/extracts/withdrawals",
        json={"finess": theirs, "period_start": "2025-01", "period_end": "2025-03"},
        headers=headers,
    )
    assert withdrawal.status_code == 404


async def test_ars_and_grades_see_their_region_only(client, factory):
    _, (paris,), vendor = await factory.vendor_with_establishments(department="75", region="11")
    _, (lyon,), _ = await factory.vendor_with_establishments(department="69", region="84")
    await push(client, vendor, extract(paris, "2025-01", "2025-03"))
    for role in ("ars", "grades"):
        headers = await factory.token(role, region="11")
        assert (
            await client.get(f"/api/v1/establishments/{paris}", headers=headers)
        ).status_code == 200
        series = await client.get(f"/api/v1/establishments/{paris}/measurements", headers=headers)
        assert len(series.json()["items"]) == 1
        assert (
            await client.get(f"/api/v1/establishments/{lyon}", headers=headers)
        ).status_code == 404
    national = await factory.token("national")
    assert (await client.get(f"/api/v1/establishments/{lyon}", headers=national)).status_code == 200


async def test_projects_are_scoped(client, factory):
    vendor = await factory.vendor()
    here = await factory.project(vendor, [await factory.establishment("75")], region="11")
    there = await factory.project(vendor, [await factory.establishment("69")], region="84")
    ars = await factory.token("ars", region="11")
    assert (await client.get(f"/api/v1/projects/{here}", headers=ars)).status_code == 200
    assert (await client.get(f"/api/v1/projects/{there}", headers=ars)).status_code == 404
    listed = (await client.get("/api/v1/projects", headers=ars)).json()
    assert [p["id"] for p in listed["items"]] == [here]
    other_vendor = await factory.token("vendor", vendor=await factory.vendor())
    assert (await client.get(f"/api/v1/projects/{here}", headers=other_vendor)).status_code == 404
    own_vendor = await factory.token("vendor", vendor=vendor)
    assert (await client.get(f"/api/v1/projects/{there}", headers=own_vendor)).status_code == 200


async def test_expired_and_revoked_tokens_are_refused(client, factory):
    expired = await factory.token("national", expires_at=now() - timedelta(seconds=1))
    response = await client.get("/api/v1/vendors", headers=expired)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]

    admin = await factory.token("national")
    created = await client.post(
        "/api/v1/tokens",
        json={"role": "grades", "region": "53", "name": "GRADeS Bretagne"},
        headers=admin,
    )
    assert created.status_code == 201
    token = created.json()["token"]
    grades = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/vendors", headers=grades)).status_code == 200
    listed = (await client.get("/api/v1/tokens", headers=admin)).json()
    assert all("token" not in t for t in listed)  # shown once, stored hashed
    revoked = await client.delete(f"/api/v1/tokens/{created.json()['id']}", headers=admin)
    assert revoked.status_code == 204
    assert (await client.get("/api/v1/vendors", headers=grades)).status_code == 401


async def test_token_bindings_are_checked(client, factory):
    admin = await factory.token("national")
    cases = [
        ({"role": "vendor"}, "vendor_siren"),
        ({"role": "vendor", "vendor_siren": "732829320"}, "vendor_siren"),
        ({"role": "ars"}, "region"),
        ({"role": "ars", "region": "99"}, "region"),
        ({"role": "national", "region": "11"}, "region"),
    ]
    for body, field in cases:
        response = await client.post("/api/v1/tokens", json=body, headers=admin)
        assert response.status_code == 422, body
        assert response.json()["errors"][0]["field"] == field


async def test_writes_outside_a_role_are_refused(client, factory):
    grades = await factory.token("grades", region="11")
    vendor = await factory.token("vendor", vendor=await factory.vendor())
    ars = await factory.token("ars", region="11")
    body = {"siren": "732829320", "name": "Éditeur"}
    for headers in (grades, vendor, ars):
        assert (await client.post("/api/v1/vendors", json=body, headers=headers)).status_code == 403
        assert (
            await client.post("/api/v1/tokens", json={"role": "national"}, headers=headers)
        ).status_code == 403
    establishment = {
        "finess": "750712184",
        "name": "EHPAD",
        "legal_entity_finess": "750712192",
        "department": "75",
        "category_code": "500",
    }
    for headers in (grades, vendor):
        response = await client.post("/api/v1/establishments", json=establishment, headers=headers)
        assert response.status_code == 403
    other_ars = await factory.token("ars", region="84")
    response = await client.post("/api/v1/establishments", json=establishment, headers=other_ars)
    assert response.status_code == 403
    assert (
        await client.post("/api/v1/establishments", json=establishment, headers=ars)
    ).status_code == 201
