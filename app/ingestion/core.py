"""The steps of a batch ingestion, written once for every kind of batch (see the package
docstring)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal
from app.audit import service as audit
from app.batches import collector_paused
from app.config import get_settings
from app.errors import TooLarge
from app.fields import FieldError
from app.ingestion.outcomes import ImportStatus, Outcome, Prediction
from app.observability.metrics import record_batch
from app.request_context import current_request_id

_REJECTED: Prediction = (Outcome.REJECTED, None)
_SKIPPED: Prediction = (Outcome.SKIPPED, None)


@dataclass(frozen=True, slots=True)
class BatchOptions:
    dry_run: bool = False  # validate and report, store nothing
    atomic: bool = False  # store all rows or none


class BatchRow(Protocol):
    """What the core reads of a parsed row: its position in the batch and its problems."""

    index: int
    errors: list[FieldError]
    warnings: list[FieldError]


RowT = TypeVar("RowT", bound=BatchRow)
ContextT = TypeVar("ContextT")


class BatchKind(Protocol, Generic[RowT, ContextT]):
    """One kind of batch: its rows, its rules and its table. Rows are indexed by their
    position in the batch (`row.index == position`)."""

    name: str  # metrics label, e.g. "extracts"
    audit_action: str  # e.g. "extracts.import"
    audit_object: str  # e.g. "extract_batch"

    def parse(self, raw_rows: Sequence[Any], text_cells: bool) -> list[RowT]:
        """Each row parsed on its own (pure); `text_cells`: CSV cells, where numbers are text."""
        ...

    async def contexts(
        self, session: AsyncSession, principal: Principal, rows: Sequence[RowT]
    ) -> Mapping[int, ContextT]:
        """What the database knows about each row without errors, by row index."""
        ...

    def check(self, rows: Sequence[RowT], contexts: Mapping[int, ContextT]) -> None:
        """The rules that need the database (pure): problems are added to the rows."""
        ...

    def outcome(self, row: RowT, context: ContextT) -> Prediction:
        """The predicted outcome and revision of a row without errors."""
        ...

    async def write(
        self,
        session: AsyncSession,
        principal: Principal,
        rows: Sequence[RowT],
        contexts: Mapping[int, ContextT],
        predicted: Sequence[Prediction],
        to_write: Sequence[int],
    ) -> dict[int, int | None]:
        """Store the rows at `to_write` (predicted created or revised) in one set-based write.

        Returns the rows whose revision is not the predicted one: the revision written, or
        None for a row not written (another sender stored it meanwhile)."""
        ...

    async def settle(
        self,
        session: AsyncSession,
        rows: Sequence[RowT],
        contexts: Mapping[int, ContextT],
        unwritten: Sequence[int],
    ) -> dict[int, Prediction]:
        """The outcome of rows that were not written, from what is stored now."""
        ...

    def result(self, row: RowT, outcome: Outcome, revision: int | None) -> dict[str, Any]:
        """One row of the summary's `results`."""
        ...

    def audit_region(self, principal: Principal) -> str | None:
        """The region the audit trail files the batch under."""
        ...

    async def refused(
        self, session: AsyncSession, principal: Principal, rows: Sequence[RowT]
    ) -> None:
        """Keep what the refused rows tell (not for a dry run, which stores nothing); called
        once the outcome of every row is known, an atomic batch refused whole included."""
        ...


def summary_status(outcomes: Mapping[Outcome, int]) -> ImportStatus:
    """ok: every row taken; rejected: none; partial otherwise (skipped rows count as not
    taken)."""
    refused = outcomes.get(Outcome.REJECTED, 0) + outcomes.get(Outcome.SKIPPED, 0)
    if refused == 0:
        return ImportStatus.OK
    return ImportStatus.PARTIAL if sum(outcomes.values()) > refused else ImportStatus.REJECTED


async def ingest(
    session: AsyncSession,
    principal: Principal,
    raw_rows: Sequence[Any],
    options: BatchOptions,
    kind: BatchKind[RowT, ContextT],
    *,
    payload: bytes | None = None,
    text_cells: bool = False,
) -> dict[str, Any]:
    """Validate and store a batch of `kind`; the import summary of SPEC §10 (a plain dict,
    ready for orjson). `payload`, the bytes as sent, is hashed into the audit trail."""
    limit = get_settings().max_batch_rows
    if len(raw_rows) > limit:
        raise TooLarge(f"A batch holds at most {limit} rows; this one has {len(raw_rows)}.")
    with collector_paused():
        rows = kind.parse(raw_rows, text_cells)
    contexts = await kind.contexts(session, principal, [row for row in rows if not row.errors])
    with collector_paused():
        kind.check(rows, contexts)
        predicted = [
            _REJECTED if row.errors else kind.outcome(row, contexts[row.index]) for row in rows
        ]

    if options.atomic and _REJECTED in predicted:
        final = [p if p == _REJECTED else _SKIPPED for p in predicted]
    elif options.dry_run:
        final = predicted
    else:
        final = await _write(session, principal, kind, rows, contexts, predicted)
    counts = Counter(o for o, _ in final)
    tally = {name.value: counts[name] for name in Outcome}
    if not options.dry_run:
        if counts[Outcome.REJECTED]:
            await kind.refused(session, principal, rows)
        if counts[Outcome.CREATED] or counts[Outcome.REVISED]:
            await audit.record(
                session,
                principal,
                kind.audit_action,
                kind.audit_object,
                current_request_id() or "",
                payload=payload,
                region_code=kind.audit_region(principal),
                detail={"counts": tally},
            )
        record_batch(kind.name, tally, (e.code for row in rows if row.errors for e in row.errors))
    with collector_paused():
        results = [kind.result(row, o, rev) for row, (o, rev) in zip(rows, final, strict=True)]
    return {
        "status": summary_status(counts),
        "dry_run": options.dry_run,
        "atomic": options.atomic,
        "counts": tally,
        "results": results,
    }


async def _write(
    session: AsyncSession,
    principal: Principal,
    kind: BatchKind[RowT, ContextT],
    rows: list[RowT],
    contexts: Mapping[int, ContextT],
    predicted: list[Prediction],
) -> list[Prediction]:
    created, revised = Outcome.CREATED, Outcome.REVISED  # read once, not once per row
    to_write = [i for i, (o, _) in enumerate(predicted) if o is created or o is revised]
    surprises = await kind.write(session, principal, rows, contexts, predicted, to_write)
    final = list(predicted)
    unwritten = []
    for i, revision in surprises.items():
        if revision is None:
            unwritten.append(i)
        else:
            final[i] = (Outcome.CREATED if revision == 1 else Outcome.REVISED, revision)
    if unwritten:
        # Another sender changed these rows between our read and our write.
        for i, settled in (await kind.settle(session, rows, contexts, unwritten)).items():
            final[i] = settled
    return final


def echoed_text(raw: Any) -> str | None:
    """What a row sent, echoed in its result when it is text (else its error says why)."""
    return raw if isinstance(raw, str) else None
