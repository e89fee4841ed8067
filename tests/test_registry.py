"""Vendors, establishments and projects through the API."""

from app.referential.finess import make_finess


async def test_vendor_siren_is_checked(client, factory):
    admin = await factory.token("national")
    ok = await client.post(
        "/api/v1/vendors", json={"siren": "732 829 320", "name": "Éditeur"}, headers=admin
    )
    assert ok.status_code == 201 and ok.json()["siren"] == "732829320"
    again = await client.post(
        "/api/v1/vendors", json={"siren": "732829320", "name": "Éditeur"}, headers=admin
    )
    assert again.status_code == 409
    bad = await client.post(
        "/api/v1/vendors", json={"siren": "732829321", "name": "Éditeur"}, headers=admin
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "siren"
    assert "check digit" in bad.json()["errors"][0]["message"]


async def test_establishment_registration_checks_each_field(client, factory):
    admin = await factory.token("national")
    body = {
        "finess": "75 071 218 4",
        "name": "EHPAD Les Tilleuls",
        "legal_entity_finess": "750712192",
        "department": "75",
        "category_code": "500",
    }
    created = await client.post("/api/v1/establishments", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json() | {} == {
        "finess": "750712184",
        "name": "EHPAD Les Tilleuls",
        "legal_entity_finess": "750712192",
        "department": "75",
        "region": "11",
        "category_code": "500",
        "category_label": created.json()["category_label"],
        "project_id": None,
        "closed_on": None,
    }
    assert created.json()["category_label"]
    fetched = await client.get("/api/v1/establishments/750712184", headers=admin)
    assert fetched.json()["name"] == "EHPAD Les Tilleuls"
    assert (
        await client.post("/api/v1/establishments", json=body, headers=admin)
    ).status_code == 409

    bad = await client.post(
        "/api/v1/establishments",
        json=body | {"finess": "750712185", "legal_entity_finess": "12", "department": "69"},
        headers=admin,
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"finess", "legal_entity_finess"}
    mismatch = await client.post(
        "/api/v1/establishments",
        json=body | {"finess": make_finess("69", 4242), "department": "75"},
        headers=admin,
    )
    assert mismatch.json()["errors"][0]["code"] == "finess_mismatch"


async def test_project_registration_computes_funding(client, factory):
    admin = await factory.token("national")
    vendor = await factory.vendor()
    legal = make_finess("75", 999_001)
    numbers = [await factory.establishment("75", legal_entity=legal) for _ in range(20)]
    body = {
        "reference": "IDF-2023-001",
        "name": "Groupement DUI Paris",
        "region": "11",
        "vendor_siren": vendor,
        "software": "DUI Soft 5",
        "funding_case": "acquisition",
        "submitted_on": "2023-03-15",
        "establishments": [{"finess": n} for n in numbers],
    }
    response = await client.post("/api/v1/projects", json=body, headers=admin)
    assert response.status_code == 201, response.text
    project = response.json()
    # annexe 5: 20 acquisitions x (7 000 usage + 14 000 software)
    assert project["funding"] == {
        "usage": "140000.00",
        "software": "280000.00",
        "hardware": "0.00",
        "amoa": "0.00",
        "total": "420000.00",
        "advance": "210000.00",
        "balance": "210000.00",
    }
    assert project["guichet"] == "regional"
    assert project["warnings"] == []
    fetched = await client.get(f"/api/v1/projects/{project['id']}", headers=admin)
    assert fetched.json()["funding"]["total"] == "420000.00"
    assert len(fetched.json()["establishments"]) == 20
    establishment = await client.get(f"/api/v1/establishments/{numbers[0]}", headers=admin)
    assert establishment.json()["project_id"] == project["id"]

    # an establishment belongs to at most one project
    again = await client.post(
        "/api/v1/projects",
        json=body | {"reference": "IDF-2023-002", "establishments": [{"finess": numbers[3]}]},
        headers=admin,
    )
    assert again.status_code == 422
    assert again.json()["errors"][0] == {
        "field": "establishments[0].finess",
        "code": "already_in_project",
        "message": again.json()["errors"][0]["message"],
    }


async def test_project_errors_name_their_fields(client, factory):
    ars = await factory.token("ars", region="11")
    body = {
        "reference": "X",
        "name": "X",
        "region": "11",
        "vendor_siren": "732829320",
        "software": "S",
        "funding_case": "acquisition",
        "submitted_on": "2023-03-15",
        "establishments": [{"finess": "750712185"}, {"finess": "750712184"}],
    }
    response = await client.post("/api/v1/projects", json=body, headers=ars)
    assert response.status_code == 422
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [
        ("vendor_siren", "unknown_vendor"),
        ("establishments[0].finess", "invalid_finess"),
        ("establishments[1].finess", "unknown_finess"),
    ]
    other_region = await client.post("/api/v1/projects", json=body | {"region": "84"}, headers=ars)
    assert other_region.status_code == 403


async def test_small_project_warns_and_late_filing_is_refused(client, factory):
    admin = await factory.token("national")
    vendor = await factory.vendor()
    numbers = [await factory.establishment("75") for _ in range(3)]
    body = {
        "reference": "IDF-SMALL",
        "name": "Petit",
        "region": "11",
        "vendor_siren": vendor,
        "software": "S",
        "funding_case": "upgrade",
        "submitted_on": "2023-05-02",
        "establishments": [{"finess": n} for n in numbers],
    }
    small = await client.post("/api/v1/projects", json=body, headers=admin)
    assert small.status_code == 201
    assert [w["code"] for w in small.json()["warnings"]] == ["below_minimum_size"]
    assert small.json()["funding"]["usage"] == "15000.00"  # 3 upgrades x 5 000
    late = await client.post(
        "/api/v1/projects",
        json=body
        | {
            "reference": "IDF-LATE",
            "submitted_on": "2023-09-16",
            "establishments": [{"finess": await factory.establishment("75")}],
        },
        headers=admin,
    )
    assert late.status_code == 422
    assert late.json()["errors"][0]["field"] == "submitted_on"
