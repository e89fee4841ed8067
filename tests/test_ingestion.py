"""The one ingestion core: every kind of batch gets the same limits, audit and metrics."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from app.access.principal import Principal, Role
from app.config import get_settings
from app.errors import TooLarge
from app.extracts.ingestion import EXTRACTS
from app.extracts.schemas import ExtractBatch
from app.ingestion import BatchOptions, ingest
from app.pilots.schemas import PilotUsageBatch
from app.pilots.usage.ingestion import PILOT_USAGE
from tests.test_extracts import extract
from tests.test_pilots import usage


@pytest.fixture
def max_rows(monkeypatch):
    def apply(rows: int) -> None:
        monkeypatch.setenv("ESMS_MAX_BATCH_ROWS", str(rows))
        get_settings.cache_clear()

    yield apply
    get_settings.cache_clear()


async def test_pilot_usage_is_audited_with_its_request_and_counted_in_the_metrics(
    client, factory, session
):
    _, (finess,), headers = await factory.vendor_with_establishments()
    await factory.pilot_application(finess, status="selected")
    response = await client.post(
        "/api/v1/pilots/usage",
        json={"usage": [usage(finess, "2024-03"), usage(finess, "2023-01")]},
        headers=headers | {"X-Request-ID": "usage-push-1"},
    )
    assert [r["outcome"] for r in response.json()["results"]] == ["created", "rejected"]
    audited = (
        await session.execute(
            text(
                "SELECT action, object_id, detail FROM audit_event "
                "WHERE request_id = 'usage-push-1'"
            )
        )
    ).one()
    assert audited.action == "pilots.usage.import"
    assert audited.object_id == "usage-push-1"
    assert audited.detail["counts"]["created"] == 1
    body = (await client.get("/metrics")).text
    assert 'esms_batch_rows_total{kind="pilot_usage",outcome="created"}' in body
    assert 'esms_batch_rejections_total{code="before_campaign",kind="pilot_usage"}' in body


async def test_extracts_are_counted_under_their_kind_too(client, factory):
    _, (finess,), headers = await factory.vendor_with_establishments()
    await client.post(
        "/api/v1/extracts",
        json={"extracts": [extract(finess, "2025-01", "2025-03")]},
        headers=headers,
    )
    body = (await client.get("/metrics")).text
    assert 'esms_batch_rows_total{kind="extracts",outcome="created"}' in body


@pytest.mark.parametrize("kind", [EXTRACTS, PILOT_USAGE], ids=lambda k: k.name)
async def test_the_row_limit_of_the_settings_holds_for_callers_that_read_no_body(
    session, max_rows, kind
):
    """A caller handing rows it read itself (a FHIR bundle, an uploaded file) meets the same
    ESMS_MAX_BATCH_ROWS as an HTTP batch, before anything is parsed or written."""
    max_rows(2)
    sender = Principal(None, Role.NATIONAL)
    with pytest.raises(TooLarge, match="at most 2 rows; this one has 3"):
        await ingest(session, sender, [{}, {}, {}], BatchOptions(), kind)
    refused = await ingest(session, sender, [{}, {}], BatchOptions(dry_run=True), kind)
    assert refused["counts"]["rejected"] == 2 and refused["status"] == "rejected"


def test_the_documented_row_limit_is_the_setting():
    limit = get_settings().max_batch_rows
    for batch in (ExtractBatch, PilotUsageBatch):
        (rows,) = batch.model_json_schema()["properties"].values()
        assert rows["maxItems"] == limit
