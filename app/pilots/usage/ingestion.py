"""The pilots' Mon espace santé usage as a kind of batch for the ingestion core
(`PILOT_USAGE`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.campaigns import current_campaign
from app.clock import Month
from app.ingestion import Outcome, Prediction
from app.ingestion.core import echoed_text
from app.pilots.usage import repository, rules
from app.request_context import current_request_id


def _key(row: rules.UsageRow, context: rules.UsageContext) -> tuple[int, date]:
    assert context.pilot_id is not None and row.month is not None  # a row without errors
    return context.pilot_id, row.month.first_day


class PilotUsage:
    """Rows (finess, month, the four counts) of the pilots in the sender's scope, stored as
    revisions of `pilot_usage`."""

    name = "pilot_usage"
    audit_action = "pilots.usage.import"
    audit_object = "pilot_usage_batch"

    def parse(self, raw_rows: Sequence[Any], text_cells: bool) -> list[rules.UsageRow]:
        return [rules.parse_usage_row(i, raw, text_cells) for i, raw in enumerate(raw_rows)]

    async def contexts(
        self, session: AsyncSession, principal: Principal, rows: Sequence[rules.UsageRow]
    ) -> dict[int, rules.UsageContext]:
        return await repository.usage_contexts(
            session,
            [
                (row.index, row.finess, row.month.first_day)
                for row in rows
                if row.finess is not None and row.month is not None
            ],
            campaign=str(current_campaign().year),
            principal=principal,
        )

    def check(
        self, rows: Sequence[rules.UsageRow], contexts: Mapping[int, rules.UsageContext]
    ) -> None:
        opening = Month.of(current_campaign().pilots.calendar.applications_open)
        rules.check_usage_rows(rows, contexts, Month.current(), opening)

    def outcome(self, row: rules.UsageRow, context: rules.UsageContext) -> Prediction:
        return rules.usage_outcome(row, context)

    async def write(
        self,
        session: AsyncSession,
        principal: Principal,
        rows: Sequence[rules.UsageRow],
        contexts: Mapping[int, rules.UsageContext],
        predicted: Sequence[Prediction],
        to_write: Sequence[int],
    ) -> dict[int, int | None]:
        keys = {i: _key(rows[i], contexts[i]) for i in to_write}
        written = await repository.write_usage(
            session,
            [(*keys[i], rules.usage_tuple(rows[i].counts)) for i in to_write],
            vendor_siren=principal.vendor_siren,
            sender_role=principal.role.value,
            token_id=principal.token_id,
            request_id=current_request_id(),
        )
        surprises: dict[int, int | None] = {}
        for i in to_write:
            revision = written.get(keys[i])
            if revision != predicted[i][1]:
                surprises[i] = revision
        return surprises

    async def settle(
        self,
        session: AsyncSession,
        rows: Sequence[rules.UsageRow],
        contexts: Mapping[int, rules.UsageContext],
        unwritten: Sequence[int],
    ) -> dict[int, Prediction]:
        # Another sender stored the same counts between our read and our write.
        keys = {i: _key(rows[i], contexts[i]) for i in unwritten}
        current = await repository.current_revisions(session, list(keys.values()))
        return {i: (Outcome.UNCHANGED, current.get(key)) for i, key in keys.items()}

    def result(self, row: rules.UsageRow, outcome: Outcome, revision: int | None) -> dict[str, Any]:
        return {
            "index": row.index,
            "finess": row.finess if row.finess is not None else echoed_text(row.raw_finess),
            "month": str(row.month) if row.month else echoed_text(row.raw_month),
            "outcome": outcome,
            "revision": revision,
            "errors": [e.as_dict() for e in row.errors],
            "warnings": [e.as_dict() for e in row.warnings],
        }

    def audit_region(self, principal: Principal) -> str | None:
        return principal.region_code

    async def refused(
        self, session: AsyncSession, principal: Principal, rows: Sequence[rules.UsageRow]
    ) -> None:
        return None  # a refused pilot-usage row tells nothing beyond its batch's answer


PILOT_USAGE = PilotUsage()
