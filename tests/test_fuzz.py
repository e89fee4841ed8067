"""Fuzzing: schemathesis drives every operation of the OpenAPI, as each role, against the app
in process on a committed database, and checks that no answer is a server error and that
every answer (status, content type, body) is the one the contract declares, and that
invalid input is refused."""

from __future__ import annotations

import os
import zlib
from collections import Counter
from dataclasses import dataclass
from datetime import date

import httpx
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from app import migrate
from app.access.principal import Role
from app.access.repository import create_token
from app.config import get_settings
from app.db import Database, make_engine, set_database
from app.main import create_app
from tests.conftest import _create_database, app_url
from tests.factories import Factory
from tests.test_extracts import extract

# Random examples per operation, role and generation mode (valid, invalid data): tuned so
# that the whole file runs in about a minute and a half on two idle cores (the coverage
# phase, national only: ~40 s).
MAX_EXAMPLES = int(os.environ.get("ESMS_FUZZ_EXAMPLES", "10"))
# A fixed seed makes a run reproducible (CI fails on code, not on luck); ESMS_FUZZ_SEED=random
# explores new data, another number replays that run.
_SEED = os.environ.get("ESMS_FUZZ_SEED", "20230113")
SEED = None if _SEED == "random" else int(_SEED)
CONTRACT = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
CHECKS = [*CONTRACT, negative_data_rejection]
# A batch that can be read answers 200 with each row's refusal in its summary (a negative
# count, a month of the wrong shape), and 413 beyond the row limit: schema-violating rows
# are refused, but not by a 4xx of the whole request.
ROW_BY_ROW = {"/api/v1/extracts", "/api/v1/pilots/usage"}
SENT: Counter[str] = Counter()  # requests per role, printed at the end (pytest -s)

APP = create_app()  # its lifespan connects to DATABASE_URL, set by the `world` fixture


def _schema(*, coverage: bool) -> schemathesis.BaseSchema:
    """The app's OpenAPI with valid and invalid data; the coverage phase adds the boundary
    values of every parameter and property (deterministic, a few thousand requests)."""
    config = schemathesis.Config.from_dict(
        {
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES},
            "phases": {"coverage": {"enabled": coverage}},
        }
        | ({"seed": SEED} if SEED is not None else {})
    )
    return schemathesis.openapi.from_dict(APP.openapi(), config=config)


boundaries = _schema(coverage=True)
random_data = _schema(coverage=False)


@dataclass(frozen=True)
class World:
    headers: dict[str, dict[str, str]]  # role -> Authorization header
    token_ids: frozenset[int]  # the fuzzer must not revoke the tokens it fuzzes with
    path_values: dict[str, str | int]  # path parameter -> an object that exists


@pytest.fixture(scope="module")
async def world(pg_server):
    """A committed database with objects to find, and a token per role; the app's lifespan
    reaches it through DATABASE_URL, with the rate limit out of the way."""
    url = await _create_database(pg_server, "esms_fuzz")
    await migrate.upgrade(url)
    database = Database(make_engine(url, pool_size=2))
    async with database.sessions() as session:
        factory = Factory(session, None)  # type: ignore[arg-type]
        vendor = await factory.vendor("Éditeur fuzz")
        paris, boulogne = await factory.establishment("75"), await factory.establishment("92")
        project = await factory.project(vendor, [paris, boulogne], region="11")
        lyon = await factory.establishment("69")
        await factory.project(await factory.vendor("Autre éditeur"), [lyon], region="84")
        pilot = await factory.pilot_application(
            paris, status="selected", decided_on=date(2023, 11, 20)
        )
        tokens = {
            "vendor": await create_token(session, Role.VENDOR, vendor_siren=vendor),
            "ars": await create_token(session, Role.ARS, region_code="11"),
            "grades": await create_token(session, Role.GRADES, region_code="11"),
            "national": await create_token(session, Role.NATIONAL),
        }
        await session.commit()
    headers = {role: {"Authorization": f"Bearer {token}"} for role, (token, _) in tokens.items()}
    set_database(database)
    try:
        transport = httpx.ASGITransport(app=create_app(database))
        async with httpx.AsyncClient(transport=transport, base_url="http://fuzz") as client:
            rows = [
                extract(boulogne, "2025-01", "2025-03"),
                extract(boulogne, "2025-04", "2025-04"),
            ]
            pushed = await client.post(
                "/api/v1/extracts", json={"extracts": rows}, headers=headers["vendor"]
            )
            assert pushed.status_code == 200, pushed.text
    finally:
        set_database(None)
        await database.dispose()

    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATABASE_URL", app_url(url))  # the service's role, as in production
        env.setenv("ESMS_RESOLVED_DATABASE_URL", url)
        env.setenv("ESMS_RATE_LIMIT_PER_MINUTE", "1000000000")
        env.setenv("ESMS_DB_POOL_SIZE", "2")
        get_settings.cache_clear()
        yield World(
            headers=headers,
            token_ids=frozenset(row.id for _, row in tokens.values()),
            path_values={
                "finess": boulogne,
                "project_id": project,
                "pilot_id": pilot,
                "application_id": pilot,
                "siren": vendor,
            },
        )
    get_settings.cache_clear()
    print(
        "\nschemathesis requests per role, all answers by the contract: "
        + ", ".join(f"{role} {SENT[role]}" for role in ("vendor", "ars", "grades", "national"))
    )


@boundaries.parametrize()
def test_every_operation_answers_by_its_contract_at_the_boundaries(case, world):
    """The national team reaches every operation: boundary values and random data."""
    call_and_validate(case, "national", world)


@pytest.mark.parametrize("role", ["vendor", "ars", "grades"])
@random_data.parametrize()
def test_every_operation_answers_by_its_contract_for_every_role(case, role, world):
    """The scoped roles take other paths (403, 404, rows refused): random data."""
    call_and_validate(case, role, world)


def call_and_validate(case: schemathesis.Case, role: str, world: World) -> None:
    parameters = case.path_parameters or {}
    token_id = str(parameters.get("token_id", ""))
    if token_id.isdigit() and int(token_id) in world.token_ids:
        # an invalid case may carry a valid id (its flaw is elsewhere): never revoke these
        parameters["token_id"] = int(token_id) + 1_000_000
    # Valid cases aim at existing objects half of the time, so that reads find something.
    if case.meta.generation.mode.is_positive and zlib.crc32(repr(parameters).encode()) % 2:
        for name in parameters:
            if name in world.path_values:
                parameters[name] = world.path_values[name]
    checks = CONTRACT if case.operation.path in ROW_BY_ROW else CHECKS
    SENT[role] += 1
    case.call_and_validate(app=APP, headers=dict(world.headers[role]), checks=checks)
