"""The access matrix (SPEC §8), operation by operation: every operation of the OpenAPI, called
by every role on an object of the caller's own scope and on one of another region or vendor.

Outside its scope a caller gets 404, as if the object did not exist; a write its role may
never do gets 403 (404 when the object itself is out of scope); a batch row outside the
sender's scope is refused in the import summary. The operations come from the app's OpenAPI,
so a new endpoint fails here until it is given its line in MATRIX.

What a role may call is declared on the route and checked before the body is read: a role
that may never call an operation gets its 403 (and a permitted role its 404 for an object
outside its scope) whatever it sends, even a body that is not JSON or not of the schema.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.access.dependencies import AuthorisedRoute, api_routes, role_requirement
from app.access.principal import Role
from app.access.repository import create_token
from app.controls.models import Control, ControlPlan
from app.db import Database, set_database
from app.identity import repository as people
from app.main import create_app
from app.referential.finess import make_finess
from tests.factories import Factory, valid_siren
from tests.test_extracts import extract
from tests.test_fhir import bundle as fhir_bundle
from tests.test_fhir import report as fhir_report

ROLES = ("vendor", "ars", "grades", "national")
OWN, FOREIGN, ANY = "own", "foreign", "any"
STORED, REFUSED = "row stored", "row refused"  # 200 with an import summary
ENTRY_STORED, ENTRY_REFUSED = "entry stored", "entry refused"  # 200 with a FHIR batch-response
Outcome = int | str


@dataclass(frozen=True)
class Side:
    """The objects of one side: the callers' own (region 11, their vendor) or another's
    (region 84, another vendor)."""

    region: str
    department: str
    siren: str
    finess: str  # in the vendor's project, with a first window of extracts and a pilot
    project_id: int
    pilot_id: int  # selected, on `finess`
    application_id: int  # applied, not decided
    spare: str  # an EHPAD in no project that never applied
    token_id: int  # a token that may be revoked
    person_id: int  # a person signed in through OpenID Connect, grades of the region
    grant_id: int  # that person's grant
    plan_id: int  # the region's control plan
    control_id: int  # a control of `finess` that found 100 € unduly paid

    def path_values(self) -> dict[str, Any]:
        return {
            "person_id": self.person_id,
            "grant_id": self.grant_id,
            "plan_id": self.plan_id,
            "control_id": self.control_id,
            "siren": self.siren,
            "finess": self.finess,
            "project_id": self.project_id,
            "pilot_id": self.pilot_id,
            "application_id": self.application_id,
            "token_id": self.token_id,
            "measure_id": "dmp-rate",
            "report_id": f"{self.finess}-2025-01",
            "job_id": 1,
        }


Request = Callable[[Side], dict[str, Any]]  # side -> httpx keyword arguments (params, json)


@dataclass(frozen=True)
class Line:
    """Expected outcomes per role: (own object, another's) when the operation is about an
    object, a single outcome when nothing in it belongs to anyone (tokens, vendors' list)."""

    vendor: Outcome | tuple[Outcome, Outcome]
    ars: Outcome | tuple[Outcome, Outcome]
    grades: Outcome | tuple[Outcome, Outcome]
    national: Outcome | tuple[Outcome, Outcome]
    request: Request = lambda side: {}

    @property
    def scoped(self) -> bool:
        return isinstance(self.national, tuple)

    def expected(self, role: str, side: str) -> Outcome:
        outcome = getattr(self, role)
        return outcome[side == FOREIGN] if isinstance(outcome, tuple) else outcome


def region(side: Side) -> dict[str, Any]:
    return {"params": {"region": side.region}}


def body(make: Callable[[Side], Any]) -> Request:
    return lambda side: {"json": make(side)}


READ = Line(vendor=(200, 404), ars=(200, 404), grades=(200, 404), national=(200, 200))
REGIONAL_READ = Line(
    vendor=(404, 404), ars=(200, 404), grades=(200, 404), national=(200, 200), request=region
)
PILOT_READ = Line(vendor=(404, 404), ars=(200, 404), grades=(200, 404), national=(200, 200))
PILOT_USAGE_READ = READ  # a vendor reads back the usage of the pilots in its projects
DASHBOARD = Line(  # a vendor's dashboards are its own whatever the region asked
    vendor=(200, 200), ars=(200, 404), grades=(200, 404), national=(200, 200), request=region
)
OPEN = Line(vendor=200, ars=200, grades=200, national=200)  # no token needed
# Controls are the ARS's (its region) and the national team's (reads); no one else's.
CONTROL_READ = Line(vendor=(403, 403), ars=(200, 404), grades=(403, 403), national=(200, 200))


def control_write(make: Callable[[Side], Any]) -> Line:
    return Line(
        vendor=(403, 403),
        ars=(201, 404),
        grades=(403, 403),
        national=(403, 403),
        request=body(make),
    )


MATRIX: dict[str, Line] = {
    "GET /health": OPEN,
    "GET /live": OPEN,
    "GET /ready": OPEN,
    "GET /metrics": OPEN,
    # -- referential ------------------------------------------------------------------------
    "GET /api/v1/vendors": Line(vendor=200, ars=200, grades=200, national=200),
    "POST /api/v1/vendors": Line(
        vendor=403,
        ars=403,
        grades=403,
        national=201,
        request=body(lambda s: {"siren": valid_siren(880_001), "name": "Nouvel éditeur"}),
    ),
    "GET /api/v1/vendors/{siren}": Line(
        vendor=(200, 404), ars=(200, 200), grades=(200, 200), national=(200, 200)
    ),
    "POST /api/v1/establishments": Line(
        vendor=(403, 403),
        ars=(201, 403),
        grades=(403, 403),
        national=(201, 201),
        request=body(
            lambda s: {
                "finess": make_finess(s.department, 880_002),
                "name": "EHPAD nouveau",
                "legal_entity_finess": make_finess(s.department, 880_003),
                "department": s.department,
                "category_code": "500",
            }
        ),
    ),
    "GET /api/v1/establishments/{finess}": READ,
    "GET /api/v1/establishments/{finess}/measurements": READ,
    "GET /api/v1/establishments/{finess}/revisions": READ,
    # An empty upload: the national team gets past the role check to the 422 of the body
    # (a real import runs in the background: tests/test_referential_imports.py).
    "POST /api/v1/referential/imports": Line(
        vendor=403, ars=403, grades=403, national=422, request=lambda side: {"content": b""}
    ),
    "GET /api/v1/referential/imports/{job_id}": Line(  # no import in this world
        vendor=403, ars=403, grades=403, national=404
    ),
    # -- projects ---------------------------------------------------------------------------
    "POST /api/v1/projects": Line(
        vendor=(403, 403),
        ars=(201, 403),
        grades=(403, 403),
        national=(201, 201),
        request=body(
            lambda s: {
                "reference": f"NEW-{s.region}",
                "name": "Nouveau projet",
                "region": s.region,
                "vendor_siren": s.siren,
                "software": "DUI",
                "funding_case": "acquisition",
                "submitted_on": "2023-03-01",
                "establishments": [{"finess": s.spare}],
            }
        ),
    ),
    "GET /api/v1/projects": Line(
        vendor=(200, 200), ars=(200, 404), grades=(200, 404), national=(200, 200), request=region
    ),
    "GET /api/v1/projects/{project_id}": READ,
    "GET /api/v1/projects/{project_id}/compliance": READ,
    "POST /api/v1/projects/{project_id}/events": Line(
        vendor=(403, 403),
        ars=(201, 404),
        grades=(403, 403),
        national=(201, 201),
        request=body(lambda s: {"type": "notified", "date": "2023-06-01"}),
    ),
    "GET /api/v1/projects/{project_id}/events": READ,
    "GET /api/v1/envelopes": Line(vendor=403, ars=200, grades=200, national=200),
    # -- dashboards -------------------------------------------------------------------------
    "GET /api/v1/dashboards/summary": DASHBOARD,
    "GET /api/v1/dashboards/monthly": DASHBOARD,
    "GET /api/v1/dashboards/breakdown": DASHBOARD,
    "GET /api/v1/dashboards/completeness": DASHBOARD,
    "GET /api/v1/reports/monthly": DASHBOARD,
    # -- extracts ---------------------------------------------------------------------------
    "POST /api/v1/extracts": Line(
        vendor=(STORED, REFUSED),
        ars=(403, 403),
        grades=(403, 403),
        national=(403, 403),
        request=body(lambda s: {"extracts": [extract(s.finess, "2025-04", "2025-04")]}),
    ),
    # -- FHIR -------------------------------------------------------------------------------
    "GET /fhir/metadata": OPEN,
    "GET /fhir/Measure": Line(vendor=200, ars=200, grades=200, national=200),
    "GET /fhir/Measure/{measure_id}": Line(vendor=200, ars=200, grades=200, national=200),
    "POST /fhir": Line(
        vendor=(ENTRY_STORED, ENTRY_REFUSED),
        ars=(403, 403),
        grades=(403, 403),
        national=(403, 403),
        request=body(lambda s: fhir_bundle(fhir_report(s.finess, "2025-04", "2025-04"))),
    ),
    "GET /fhir/MeasureReport": Line(
        vendor=(200, 404),
        ars=(200, 404),
        grades=(200, 404),
        national=(200, 200),
        request=lambda side: {"params": {"reporter": side.finess}},
    ),
    "GET /fhir/MeasureReport/{report_id}": READ,
    "POST /api/v1/extracts/withdrawals": Line(
        vendor=(201, 404),
        ars=(403, 403),
        grades=(403, 403),
        national=(403, 403),
        request=body(
            lambda s: {"finess": s.finess, "period_start": "2025-01", "period_end": "2025-03"}
        ),
    ),
    # -- Mon espace santé pilots ------------------------------------------------------------
    "POST /api/v1/pilots/applications": Line(
        vendor=(403, 403),
        ars=(201, 404),
        grades=(403, 403),
        national=(201, 201),
        request=body(
            lambda s: {
                "finess": s.spare,
                "technical_maturity": "segur_dui_installing",
                "dmp_connection": "effective",
                "mssante_connection": "planned",
                "applied_on": "2023-09-20",
            }
        ),
    ),
    "GET /api/v1/pilots/applications": REGIONAL_READ,
    "GET /api/v1/pilots/applications/{application_id}": PILOT_READ,
    "POST /api/v1/pilots/applications/{application_id}/decision": Line(
        vendor=(403, 403),
        ars=(200, 404),
        grades=(403, 403),
        national=(200, 200),
        request=body(
            lambda s: {"decision": "not_selected", "decided_on": "2023-11-20", "reason": "quota"}
        ),
    ),
    "GET /api/v1/pilots/summary": REGIONAL_READ,
    "POST /api/v1/pilots/usage": Line(
        vendor=(STORED, REFUSED),
        ars=(STORED, REFUSED),
        grades=(403, 403),
        national=(STORED, STORED),
        request=body(
            lambda s: {
                "usage": [
                    {
                        "finess": s.finess,
                        "month": "2024-03",
                        "ins_qualified_identities": 61,
                        "dmp_documents_sent": 140,
                        "mssante_messages_sent": 85,
                        "citizen_messages_sent": 12,
                    }
                ]
            }
        ),
    ),
    "GET /api/v1/pilots/usage": REGIONAL_READ,
    "GET /api/v1/pilots": REGIONAL_READ,
    "GET /api/v1/pilots/{pilot_id}": PILOT_READ,
    "POST /api/v1/pilots/{pilot_id}/events": Line(
        vendor=(403, 403),
        ars=(201, 404),
        grades=(403, 403),
        national=(201, 201),
        request=body(lambda s: {"type": "convention_signed", "date": "2024-01-10"}),
    ),
    "GET /api/v1/pilots/{pilot_id}/usage": PILOT_USAGE_READ,
    "GET /api/v1/pilots/{pilot_id}/usage/revisions": PILOT_USAGE_READ,
    # -- controls (annexe 4 C) ---------------------------------------------------------------
    "GET /api/v1/controls/risk": Line(
        vendor=(403, 403), ars=(200, 404), grades=(403, 403), national=(200, 200), request=region
    ),
    "GET /api/v1/controls/establishments/{finess}": CONTROL_READ,
    "GET /api/v1/controls/projects/{project_id}": CONTROL_READ,
    "POST /api/v1/controls/plans": control_write(
        lambda s: {"region": s.region, "year": 2030, "seed": 1}
    ),
    "GET /api/v1/controls/plans": Line(vendor=403, ars=200, grades=403, national=200),
    "GET /api/v1/controls/plans/{plan_id}": CONTROL_READ,
    "GET /api/v1/controls/plans/{plan_id}/replay": CONTROL_READ,
    "POST /api/v1/controls": control_write(
        lambda s: {
            "finess": s.finess,
            "kind": "documents",
            "controlled_on": "2025-01-10",
            "findings": "Pièces conformes",
            "compliant": True,
        }
    ),
    "GET /api/v1/controls": Line(vendor=403, ars=200, grades=403, national=200),
    "GET /api/v1/controls/{control_id}": CONTROL_READ,
    "POST /api/v1/controls/{control_id}/recovery": control_write(
        lambda s: {"type": "notified", "date": "2025-02-01", "proof_reference": "AR 2025-1"}
    ),
    # -- access -----------------------------------------------------------------------------
    "GET /api/v1/tokens": Line(vendor=403, ars=403, grades=403, national=200),
    "POST /api/v1/tokens": Line(
        vendor=403,
        ars=403,
        grades=403,
        national=201,
        request=body(lambda s: {"role": "grades", "region": "53", "name": "GRADeS Bretagne"}),
    ),
    "DELETE /api/v1/tokens/{token_id}": Line(vendor=403, ars=403, grades=403, national=204),
    "GET /api/v1/audit": Line(
        vendor=(403, 403), ars=(200, 404), grades=(403, 403), national=(200, 200), request=region
    ),
    # -- people and grants ------------------------------------------------------------------
    "GET /api/v1/me": Line(vendor=200, ars=200, grades=200, national=200),
    "GET /api/v1/people": Line(vendor=403, ars=200, grades=403, national=200),
    # No provider is configured here: past the role check, the issuer itself is refused.
    "POST /api/v1/people": Line(
        vendor=403,
        ars=422,
        grades=403,
        national=422,
        request=body(lambda s: {"issuer": "https://idp.example.org", "subject": "new"}),
    ),
    "GET /api/v1/people/{person_id}": Line(
        vendor=(403, 403), ars=(200, 404), grades=(403, 403), national=(200, 200)
    ),
    # The person already holds a grant: one at a time (409).
    "POST /api/v1/people/{person_id}/grants": Line(
        vendor=(403, 403),
        ars=(409, 404),
        grades=(403, 403),
        national=(409, 409),
        request=body(lambda s: {"role": "grades", "region": s.region}),
    ),
    "DELETE /api/v1/people/{person_id}/grants/{grant_id}": Line(
        vendor=(403, 403), ars=(204, 404), grades=(403, 403), national=(204, 204)
    ),
}

APP = create_app()
OPERATIONS = [
    f"{method.upper()} {path}"
    for path, methods in APP.openapi()["paths"].items()
    for method in methods
]


def cases() -> list[Any]:
    """(operation, role, side) for every operation of the OpenAPI; an operation missing from
    MATRIX still gets its cases, which fail and say so."""
    found = []
    for operation in OPERATIONS:
        line = MATRIX.get(operation)
        sides = (OWN, FOREIGN) if line is None or line.scoped else (ANY,)
        for role in ROLES:
            for side in sides:
                found.append(pytest.param(operation, role, side, id=f"{operation} {role} {side}"))
    return found


@dataclass(frozen=True)
class World:
    own: Side
    foreign: Side
    headers: dict[str, dict[str, str]]

    def side(self, name: str) -> Side:
        return self.foreign if name == FOREIGN else self.own


async def build_side(factory: Factory, client: httpx.AsyncClient, department: str) -> Side:
    region = {"75": "11", "69": "84"}[department]
    vendor = await factory.vendor(f"Éditeur {region}")
    finess = await factory.establishment(department)
    project = await factory.project(vendor, [finess], region=region)
    pilot = await factory.pilot_application(finess, status="selected")
    application = await factory.pilot_application(department=department)
    spare = await factory.establishment(department)
    _, revocable = await create_token(factory.session, Role.GRADES, region_code=region)
    person, _ = await people.create(
        factory.session,
        "https://idp.example.org",
        f"agent-{region}",
        kind="person",
        email=None,
        name=None,
    )
    grant = await people.add_grant(
        factory.session,
        person.id,
        Role.GRADES,
        vendor_siren=None,
        region_code=region,
        granted_by="test",
    )
    vendor_headers = await factory.token("vendor", vendor=vendor)
    await factory.session.commit()  # the app reads them from its own session
    pushed = await client.post(
        "/api/v1/extracts",
        json={"extracts": [extract(finess, "2025-01", "2025-03")]},
        headers=vendor_headers,
    )
    assert pushed.status_code == 200 and pushed.json()["counts"]["created"] == 1, pushed.text
    plan = ControlPlan(
        region_code=region,
        year=2024,
        method="random",
        seed=1,
        per_department=1,
        extra=0,
        candidates=[],
        uncovered=[],
    )
    factory.session.add(plan)
    await factory.session.flush()
    control = Control(
        region_code=region,
        finess=finess,
        project_id=project,
        plan_id=plan.id,
        kind="documents",
        controlled_on=date(2025, 1, 10),
        findings="Facture non justifiée",
        compliant=False,
        unduly_paid=Decimal("100.00"),
    )
    factory.session.add(control)
    await factory.session.commit()
    return Side(
        region,
        department,
        vendor,
        finess,
        project,
        pilot,
        application,
        spare,
        revocable.id,
        person.id,
        grant.id,
        plan.id,
        control.id,
    )


@pytest.fixture(scope="module")
async def connection(engine) -> AsyncIterator[Any]:
    """One transaction for the module, rolled back at its end; each test works in a savepoint
    of it, so that the world is built once."""
    connection = await engine.connect()
    transaction = await connection.begin()
    try:
        yield connection
    finally:
        await transaction.rollback()
        await connection.close()


@pytest.fixture(scope="module")
async def database(engine, connection) -> AsyncIterator[Database]:
    database = Database(engine)
    database.sessions = async_sessionmaker(
        bind=connection,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )
    yield database


@pytest.fixture(scope="module")
async def client(database) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(database))
    async with httpx.AsyncClient(transport=transport, base_url="http://matrix") as client:
        yield client


@pytest.fixture(scope="module")
async def world(database, client) -> World:
    set_database(database)
    try:
        async with database.sessions() as session:
            factory = Factory(session, client)
            own = await build_side(factory, client, "75")
            foreign = await build_side(factory, client, "69")
            headers = {
                "vendor": await factory.token("vendor", vendor=own.siren),
                "ars": await factory.token("ars", region=own.region),
                "grades": await factory.token("grades", region=own.region),
                "national": await factory.token("national"),
            }
            await session.commit()
    finally:
        set_database(None)
    return World(own, foreign, headers)


@pytest.fixture
async def in_savepoint(connection, database) -> AsyncIterator[None]:
    savepoint = await connection.begin_nested()
    set_database(database)
    try:
        yield
    finally:
        set_database(None)
        await savepoint.rollback()


@pytest.mark.parametrize(("operation", "role", "side"), cases())
async def test_access_matrix(operation, role, side, world, client, in_savepoint):
    line = MATRIX.get(operation)
    if line is None:
        pytest.fail(f"{operation} is not classified: give it its line in MATRIX")
    method, path = operation.split(" ", 1)
    target = world.side(side)
    response = await client.request(
        method,
        path.format(**target.path_values()),
        headers=world.headers[role],
        **line.request(target),
    )
    expected = line.expected(role, side)
    context = f"{operation} as {role} on {side} object: {response.status_code} {response.text}"
    if expected == STORED:
        assert response.status_code == 200, context
        assert response.json()["results"][0]["outcome"] == "created", context
    elif expected == REFUSED:
        assert response.status_code == 200, context
        (row,) = response.json()["results"]
        assert row["outcome"] == "rejected", context
        assert [e["code"] for e in row["errors"]] == ["not_covered"], context
    elif expected in (ENTRY_STORED, ENTRY_REFUSED):
        assert response.status_code == 200, context
        (entry,) = response.json()["entry"]
        wanted = "201 Created" if expected == ENTRY_STORED else "404 Not Found"
        assert entry["response"]["status"] == wanted, context
    else:
        assert response.status_code == expected, context
        if expected >= 400:
            errors = (
                "application/fhir+json" if path.startswith("/fhir") else "application/problem+json"
            )
            assert response.headers["content-type"] == errors, context


def test_the_matrix_lists_only_operations_that_exist():
    assert sorted(set(MATRIX) - set(OPERATIONS)) == []


@pytest.mark.parametrize("operation", [o for o in OPERATIONS if " /api/" in o])
async def test_every_api_operation_wants_a_token(operation, world, client, in_savepoint):
    method, path = operation.split(" ", 1)
    response = await client.request(method, path.format(**world.own.path_values()))
    assert response.status_code == 401, response.text


# Bodies a permitted caller would get 400 or 422 for: unreadable, or not of the schema.
INVALID_BODIES = {
    "malformed": ({"content": b'{"broken', "headers": {"content-type": "application/json"}}, 400),
    "not of the schema": ({"json": {"unexpected": [1, 2, 3]}}, 422),
}


def invalid_body_cases() -> list[Any]:
    found = []
    for operation in OPERATIONS:
        line = MATRIX.get(operation)
        if line is None or not operation.startswith(("POST /api/", "DELETE /api/")):
            continue
        if operation.startswith("DELETE"):
            continue  # no body
        sides = (OWN, FOREIGN) if line.scoped else (ANY,)
        for role in ROLES:
            for side in sides:
                for name in INVALID_BODIES:
                    found.append(
                        pytest.param(
                            operation, role, side, name, id=f"{operation} {role} {side} {name}"
                        )
                    )
    return found


@pytest.mark.parametrize(("operation", "role", "side", "body"), invalid_body_cases())
async def test_the_role_and_the_scope_are_checked_before_the_body(
    operation, role, side, body, world, client, in_savepoint
):
    """A refusal by role (403) or scope (404) comes first; otherwise the body's own fault."""
    line = MATRIX[operation]
    method, path = operation.split(" ", 1)
    target = world.side(side)
    request, fault = INVALID_BODIES[body]
    headers = {**world.headers[role], **request.get("headers", {})}
    sent = {k: v for k, v in request.items() if k != "headers"}
    response = await client.request(
        method, path.format(**target.path_values()), headers=headers, **sent
    )
    outcomes = {line.expected(role, own_or_foreign) for own_or_foreign in (OWN, FOREIGN)}
    if outcomes == {403}:  # the role may never call it
        wanted = 403
    elif "{" in path and line.expected(role, side) == 404:  # the path's object is not its
        wanted = 404
    else:  # a refusal that depends on what the body says comes after the body is read
        wanted = fault
    context = f"{operation} as {role} on {side} object, {body} body: {response.text}"
    assert response.status_code == wanted, context
    assert response.headers["content-type"] == "application/problem+json", context


def test_every_api_operation_declares_who_may_call_it():
    """The roles are declared on the route (`requires`), and its route class checks them
    before the body is read."""
    undeclared = [
        f"{sorted(route.methods)} {route.path}"
        for route in api_routes(APP.routes)
        if route.path.startswith("/api/")
        and (role_requirement(route) is None or not isinstance(route, AuthorisedRoute))
    ]
    assert undeclared == [], (
        "give these routes dependencies=[requires(...)] and their router "
        "route_class=AuthorisedRoute"
    )
