"""Establishments FINESS+ says are closed: kept with their closing date, left out of the
establishments expected to report after it, still shown (marked closed) in their project's
compliance."""

from __future__ import annotations

import json
from datetime import date

from app.clock import Month
from app.referential.importer import import_finess_file
from tests.test_dashboards import dataset


def finess_plus(path, *establishments: tuple[str, str, date | None]) -> None:
    """A FINESS+ flow of (FINESS ET, FINESS EJ, closing date) EHPAD in Paris."""
    entities = []
    for number, legal, closed in establishments:
        general = {"numFinessEge": number, "nomEgeCourt": f"EHPAD {number}    "}
        if closed:
            general["dateFermeture"] = closed.isoformat()
        ege = {
            "informationsGeneralesEGE": general,
            "categorieentiteGeographiqueExercice": "500",
            "adresse": [{"usageAdresse": "03", "cogCommune": "75113"}],
            "etatObjet": "I" if closed else "A",
        }
        entities.append({"informationsGeneralesPMEJ": {"numFinessPm": legal}, "ege": [ege]})
    document = {"schemaVersion": "v1.0.0", "generatedAt": "2026-03-09T15:49:37Z", "pmej": entities}
    path.write_text(json.dumps(document))


def last_month_start() -> date:
    return Month.current().plus(-1).first_day


async def test_a_closed_establishment_leaves_completeness_and_counts(client, factory, db, tmp_path):
    ars, project_id, (_a, _b, _c, d) = await dataset(client, factory)
    legal = (await client.get(f"/api/v1/establishments/{d}", headers=ars)).json()[
        "legal_entity_finess"
    ]
    closed_on = Month.current().plus(-3).first_day  # D closed before the last completed month
    path = tmp_path / "structures.json"
    finess_plus(path, (d, legal, closed_on))
    report = await import_finess_file(db, path)
    assert (report.kept, report.updated, report.closed) == (1, 1, 1)

    shown = (await client.get(f"/api/v1/establishments/{d}", headers=ars)).json()
    assert shown["closed_on"] == closed_on.isoformat() and shown["project_id"] == project_id

    page = (await client.get("/api/v1/dashboards/completeness", headers=ars)).json()
    assert page["total"] == 3 and d not in {item["finess"] for item in page["items"]}
    counts = (await client.get("/api/v1/dashboards/summary", headers=ars)).json()["counts"]
    assert (counts["establishments"], counts["in_projects"]) == (4, 3)

    # Still in its project's compliance, marked closed, so the ARS sees why it is silent.
    compliance = (await client.get(f"/api/v1/projects/{project_id}/compliance", headers=ars)).json()
    marked = {item["finess"]: item["closed_on"] for item in compliance["establishments"]}
    assert len(marked) == 4
    assert marked[d] == closed_on.isoformat()
    assert [closed for finess, closed in marked.items() if finess != d] == [None] * 3


async def test_an_establishment_closing_during_the_last_month_is_still_expected(
    client, factory, db, tmp_path
):
    ars, _, (_a, _b, _c, d) = await dataset(client, factory)
    legal = (await client.get(f"/api/v1/establishments/{d}", headers=ars)).json()[
        "legal_entity_finess"
    ]
    path = tmp_path / "structures.json"
    finess_plus(path, (d, legal, last_month_start().replace(day=15)))
    await import_finess_file(db, path)
    page = (await client.get("/api/v1/dashboards/completeness", headers=ars)).json()
    assert page["total"] == 4 and d in {item["finess"] for item in page["items"]}

    # Reopened in a later flow: the closing date goes, and it is expected again.
    finess_plus(path, (d, legal, None))
    report = await import_finess_file(db, path)
    assert (report.updated, report.closed) == (1, 0)
    shown = (await client.get(f"/api/v1/establishments/{d}", headers=ars)).json()
    assert shown["closed_on"] is None


async def test_a_skipped_structure_answers_404_like_an_unknown_one(client, factory, db):
    national = await factory.token("national")
    sample = "tests/data/finess-plus-structures-sample-20260309.json"
    report = await import_finess_file(db, sample)
    assert report.kept == 13
    assert (
        await client.get("/api/v1/establishments/010780906", headers=national)
    ).status_code == 200
    # A clinic (365) and the Wallis-et-Futuna hospital (355) of the same file were skipped.
    for number in ("010780195", "980600027"):
        response = await client.get(f"/api/v1/establishments/{number}", headers=national)
        assert response.status_code == 404
