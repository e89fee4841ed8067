"""Who sees what, defined once (app.access.scopes): the SQLAlchemy and the raw SQL forms of
each rule agree, the module stands apart from the domains, and the pilots' regional rule."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import select, text

from app.access.principal import Principal, Role
from app.access.scopes import (
    Scope,
    establishment_visible,
    establishments_sql,
    pilot_visible,
    pilots_sql,
    positional,
    project_visible,
    projects_sql,
)
from app.db import raw_connection
from app.pilots.models import PilotApplication
from app.projects.models import Project
from app.referential.models import Establishment
from tests.test_pilots import usage


def test_the_scope_module_imports_no_domain():
    """The domains' repositories import the scopes: the scopes must not import them back."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, app.access.scopes; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('app'))))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert loaded == ["app", "app.access", "app.access.principal", "app.access.scopes"]


@pytest.fixture
async def world(factory):
    """Region 11 (Île-de-France) and 84 (Auvergne-Rhône-Alpes): a vendor's project of region
    11 holding one establishment of 11 and one located in 84, and one more establishment in
    84 outside any project. The one in 84 of the project is a pilot of 84."""
    vendor = await factory.vendor()
    home = await factory.establishment("75")
    away = await factory.establishment("69")
    alone = await factory.establishment("69")
    project = await factory.project(vendor, [home, away], region="11")
    pilot = await factory.pilot_application(away, status="selected")
    return vendor, {"home": home, "away": away, "alone": alone}, project, pilot


def _principals(vendor: str) -> dict[str, Principal]:
    return {
        "national": Principal(1, Role.NATIONAL),
        "vendor": Principal(2, Role.VENDOR, vendor_siren=vendor),
        "ars 11": Principal(3, Role.ARS, region_code="11"),
        "grades 84": Principal(4, Role.GRADES, region_code="84"),
        "unbound ars": Principal(5, Role.ARS),
    }


async def test_each_rule_answers_the_same_from_sqlalchemy_and_from_raw_sql(session, world):
    vendor, places, project, pilot = world
    names = {finess: name for name, finess in places.items()}
    conn = await raw_connection(session)
    expected = {
        "national": ({"home", "away", "alone"}, True, True),
        "vendor": ({"home", "away"}, True, True),
        "ars 11": ({"home", "away"}, True, False),
        "grades 84": ({"away", "alone"}, False, True),
        "unbound ars": (set(), False, False),
    }
    for who, principal in _principals(vendor).items():
        scope = Scope.of(principal)
        orm = await session.execute(
            select(Establishment.finess).where(
                Establishment.finess.in_(names), establishment_visible(principal)
            )
        )
        sql, args = positional(
            establishments_sql(scope, finess="e.finess", region="e.region_code"), scope, 2
        )
        raw = await conn.fetch(
            f"SELECT e.finess FROM establishment e WHERE e.finess = any($1) AND {sql}",
            list(names),
            *args,
        )
        joined_sql = establishments_sql(
            scope, finess="e.finess", region="e.region_code", project="p"
        )
        joined = await session.execute(
            text(
                "SELECT e.finess FROM establishment e "
                "LEFT JOIN project_establishment pe ON pe.finess = e.finess "
                "LEFT JOIN project p ON p.id = pe.project_id "
                f"WHERE e.finess = any(:names) AND {joined_sql}"
            ),
            {"names": list(names), **scope.params},
        )
        seen, sees_project, sees_pilot = expected[who]
        assert {names[f] for (f,) in orm} == seen, who
        assert {names[r["finess"]] for r in raw} == seen, who
        assert {names[f] for (f,) in joined} == seen, who

        orm_projects = await session.execute(
            select(Project.id).where(Project.id == project, project_visible(principal))
        )
        project_sql, project_args = positional(projects_sql(scope, project="p"), scope, 2)
        raw_projects = await conn.fetch(
            f"SELECT p.id FROM project p WHERE p.id = $1 AND {project_sql}", project, *project_args
        )
        assert bool(orm_projects.all()) is bool(raw_projects) is sees_project, who

        orm_pilots = await session.execute(
            select(PilotApplication.id).where(
                PilotApplication.id == pilot, pilot_visible(principal)
            )
        )
        pilot_sql, pilot_args = positional(
            pilots_sql(scope, finess="a.finess", region="a.region_code"), scope, 2
        )
        raw_pilots = await conn.fetch(
            f"SELECT a.id FROM pilot_application a WHERE a.id = $1 AND {pilot_sql}",
            pilot,
            *pilot_args,
        )
        assert bool(orm_pilots.all()) is bool(raw_pilots) is sees_pilot, who


async def test_an_ars_follows_its_projects_elsewhere_but_not_their_pilots(client, factory, world):
    """The establishment of an Île-de-France project located in Auvergne-Rhône-Alpes is seen
    by the ARS of Île-de-France; as a pilot it belongs to Auvergne-Rhône-Alpes, whose ARS
    alone reads it and pushes its usage."""
    _, places, _, pilot = world
    away = places["away"]
    ars_11 = await factory.token("ars", region="11")
    ars_84 = await factory.token("ars", region="84")
    assert (await client.get(f"/api/v1/establishments/{away}", headers=ars_11)).status_code == 200
    assert (await client.get(f"/api/v1/pilots/{pilot}", headers=ars_11)).status_code == 404
    assert (await client.get(f"/api/v1/pilots/{pilot}/usage", headers=ars_11)).status_code == 404
    assert (await client.get(f"/api/v1/pilots/{pilot}", headers=ars_84)).status_code == 200

    body = {"usage": [usage(away, "2024-03")]}
    refused = await client.post("/api/v1/pilots/usage", json=body, headers=ars_11)
    assert [
        (r["outcome"], [e["code"] for e in r["errors"]]) for r in refused.json()["results"]
    ] == [("rejected", ["not_covered"])]
    taken = await client.post("/api/v1/pilots/usage", json=body, headers=ars_84)
    assert [r["outcome"] for r in taken.json()["results"]] == ["created"]
