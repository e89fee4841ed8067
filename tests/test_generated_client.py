"""A vendor's view of the contract: a Python client generated from the committed
openapi/openapi.json (openapi-python-client) pushes a batch of extracts and a batch of pilot
usage to a running server, and reads back the import summaries."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import pytest

from app.access.principal import Role
from app.access.repository import create_token
from app.db import Database, make_engine
from tests.benchmarks.common import free_port, start_server, stop_server, wait_healthy
from tests.conftest import _create_database
from tests.factories import Factory
from tests.test_extracts import extract

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "esms_vendor_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[object, str]:
    """The client package generated from the committed contract, imported; and what the
    generator said (it skips the CSV variant of the batch bodies: it has no CSV support)."""
    out = tmp_path_factory.mktemp("client")
    config = out / "config.yaml"
    config.write_text("post_hooks: []\n")
    result = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(ROOT / "openapi" / "openapi.json"),
            "--meta",
            "none",
            "--output-path",
            str(out / PACKAGE),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE), result.stdout + result.stderr
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def test_the_generator_finds_every_reference_and_skips_only_csv(generated):
    _, said = generated
    assert "Could not find reference" not in said, said
    warnings = [line for line in said.splitlines() if line.startswith("WARNING parsing")]
    assert warnings == [
        "WARNING parsing POST /api/v1/extracts within extracts.",
        "WARNING parsing POST /api/v1/pilots/usage within pilots.",
    ], said
    assert said.count("Unsupported content type text/csv") == 2, said


@pytest.fixture(scope="module")
async def server(pg_server):
    """A server process on a database of its own with a vendor, its project (two
    establishments of Paris, one of them a Mon espace santé pilot) and its token."""
    url = await _create_database(pg_server, "esms_client")
    from app import migrate

    await migrate.upgrade(url)
    database = Database(make_engine(url, pool_size=1))
    try:
        async with database.sessions() as session:
            factory = Factory(session, None)  # type: ignore[arg-type]
            vendor = await factory.vendor("Éditeur généré")
            first, second = await factory.establishment("75"), await factory.establishment("75")
            await factory.project(vendor, [first, second], region="11")
            await factory.pilot_application(first, status="selected", decided_on=date(2023, 12, 1))
            token, _ = await create_token(session, Role.VENDOR, vendor_siren=vendor)
            await session.commit()
    finally:
        await database.dispose()
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="esms-client-")) / "server.log"
    process = start_server(url, port, log, "--no-migrate")
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", process, log)
        yield f"http://127.0.0.1:{port}", token, (first, second)
    finally:
        stop_server(process)


def test_a_generated_client_pushes_extracts_and_pilot_usage(generated, server):
    client_module, _ = generated
    base_url, token, (first, second) = server
    push_extracts = importlib.import_module(
        f"{PACKAGE}.api.extracts.push_extracts_api_v1_extracts_post"
    )
    push_usage = importlib.import_module(
        f"{PACKAGE}.api.pilots.push_usage_api_v1_pilots_usage_post"
    )
    models = importlib.import_module(f"{PACKAGE}.models")
    client = client_module.AuthenticatedClient(base_url=base_url, token=token)
    with client:
        live = client.get_httpx_client().get("/live")
        assert "server" not in live.headers  # nothing tells which server runs, nor its version
        assert live.headers["x-content-type-options"] == "nosniff"
        batch = models.ExtractBatch.from_dict(
            {
                "extracts": [
                    extract(first, "2025-01", "2025-03"),
                    extract(first, "2025-04", "2025-04"),
                    extract(second, "2025-01", "2025-03", eligible_persons=900),
                ]
            }
        )
        answer = push_extracts.sync_detailed(client=client, body=batch)
        assert answer.status_code == 200, answer.content
        summary = answer.parsed
        assert isinstance(summary, models.ImportSummary)
        assert summary.status == "partial"
        assert (summary.counts.created, summary.counts.rejected) == (2, 1)
        refused = summary.results[2]
        assert refused.outcome == "rejected"
        assert [e.field for e in refused.errors] == ["eligible_persons"]

        again = push_extracts.sync(client=client, body=batch, dry_run=True)
        assert (again.counts.unchanged, again.counts.rejected, again.dry_run) == (2, 1, True)

        usage = models.PilotUsageBatch.from_dict(
            {
                "usage": [
                    {
                        "finess": first,
                        "month": "2024-03",
                        "ins_qualified_identities": 61,
                        "dmp_documents_sent": 140,
                        "mssante_messages_sent": 85,
                        "citizen_messages_sent": 12,
                    }
                ]
            }
        )
        pushed = push_usage.sync(client=client, body=usage)
        assert isinstance(pushed, models.PilotUsageImportSummary)
        assert (pushed.status, pushed.counts.created) == ("ok", 1)
