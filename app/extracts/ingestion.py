"""Annexe 2 usage extracts as a kind of batch for the ingestion core (`EXTRACTS`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.batches import collector_paused
from app.campaigns import current_campaign
from app.clock import Month
from app.controls import service as controls
from app.extracts import repository
from app.extracts.rules import (
    Context,
    Row,
    Windows,
    check_against_series,
    counts_tuple,
    outcome,
    parse_rows,
)
from app.fields import FieldError
from app.ingestion import Outcome, Prediction
from app.ingestion.core import echoed_text
from app.request_context import current_request_id


def _errors(items: list[FieldError]) -> list[dict[str, str]]:
    return [e.as_dict() for e in items]


def _month_text(month: Month | None, raw: Any) -> Any:
    """A parsed month as written in the API (YYYY-MM); the value sent when it did not parse.

    Seven ASCII characters that parsed are already written that way: no need to format them.
    """
    if month is None:
        return echoed_text(raw)  # the summary echoes text only
    if type(raw) is str and len(raw) == 7 and raw.isascii():
        return raw
    return str(month)


def _start(row: Row) -> date:
    assert row.start is not None  # a row without errors has its months
    return row.start.first_day


def _end(row: Row) -> date:
    assert row.end is not None
    return row.end.first_day


class Extracts:
    """Rows (finess, period_start, period_end, the nine counts) checked against each
    establishment's series (SPEC §3) and stored as revisions of `measurement`."""

    name = "extracts"
    audit_action = "extracts.import"
    audit_object = "extract_batch"

    def parse(self, raw_rows: Sequence[Any], text_cells: bool) -> list[Row]:
        return parse_rows(raw_rows, text_cells)

    async def contexts(
        self, session: AsyncSession, principal: Principal, rows: Sequence[Row]
    ) -> dict[int, Context]:
        return await repository.load_contexts(
            session,
            [row.index for row in rows],
            [row.finess or "" for row in rows],
            [_start(row) for row in rows],
            principal,
        )

    def check(self, rows: Sequence[Row], contexts: Mapping[int, Context]) -> None:
        campaign = current_campaign()
        windows = Windows(campaign.first_window_months, campaign.later_window_months)
        check_against_series(rows, contexts, Month.current(), windows)

    def outcome(self, row: Row, context: Context) -> Prediction:
        return outcome(row, context)

    async def write(
        self,
        session: AsyncSession,
        principal: Principal,
        rows: Sequence[Row],
        contexts: Mapping[int, Context],
        predicted: Sequence[Prediction],
        to_write: Sequence[int],
    ) -> dict[int, int | None]:
        with collector_paused():
            records = [
                repository.staging_record(
                    rows[i].finess or "",
                    _start(rows[i]),
                    _end(rows[i]),
                    rows[i].first_window,
                    predicted[i][1] or 1,
                    _errors(rows[i].warnings) if rows[i].warnings else None,
                    counts_tuple(rows[i].counts),
                )
                for i in to_write
            ]
        surprises = await repository.write_batch(
            session,
            records,
            vendor_siren=principal.vendor_siren,
            token_id=principal.token_id,
            request_id=current_request_id(),
        )
        if not surprises:
            return {}
        return {
            i: surprises[key]
            for i in to_write
            if (key := (rows[i].finess, _start(rows[i]))) in surprises
        }

    async def settle(
        self,
        session: AsyncSession,
        rows: Sequence[Row],
        contexts: Mapping[int, Context],
        unwritten: Sequence[int],
    ) -> dict[int, Prediction]:
        keys = [(rows[i].finess or "", _start(rows[i])) for i in unwritten]
        current = await repository.current_rows(session, keys)
        settled: dict[int, Prediction] = {}
        for i, key in zip(unwritten, keys, strict=True):
            stored = current[key]
            if stored["locked"]:
                rows[i].errors.append(
                    FieldError("period_start", "period_locked", "frozen by a balance decision")
                )
                settled[i] = (Outcome.REJECTED, None)
            else:
                settled[i] = (Outcome.UNCHANGED, stored["revision"])
        return settled

    def result(self, row: Row, outcome: Outcome, revision: int | None) -> dict[str, Any]:
        # Most rows have neither error nor warning: an empty tuple is written [] in JSON as
        # an empty list is, but it is not allocated each time, and a dict of plain values is
        # left out of the garbage collector's walks.
        return {
            "index": row.index,
            "finess": row.finess if row.finess is not None else echoed_text(row.raw_finess),
            "period_start": _month_text(row.start, row.raw_start),
            "period_end": _month_text(row.end, row.raw_end),
            "outcome": outcome,
            "revision": revision,
            "errors": _errors(row.errors) if row.errors else (),
            "warnings": _errors(row.warnings) if row.warnings else (),
        }

    def audit_region(self, principal: Principal) -> str | None:
        return None

    async def refused(
        self, session: AsyncSession, principal: Principal, rows: Sequence[Row]
    ) -> None:
        # Revisions of frozen periods feed the control signals, whether refused on their own,
        # with their atomic batch, or found frozen only at write time.
        await controls.record_frozen_attempts(session, principal, rows)


EXTRACTS = Extracts()
