"""The one batch ingestion core: every way rows come in (JSON or CSV extracts, pilot usage,
FHIR bundles, files uploaded in the console) runs the same steps through `ingest`.

    from app.ingestion import BatchOptions, ingest
    from app.extracts.ingestion import EXTRACTS      # or app.pilots.usage.ingestion.PILOT_USAGE

    summary = await ingest(session, principal, rows, BatchOptions(dry_run=True), EXTRACTS,
                           payload=body, text_cells=is_csv)

`rows` are already read: plain dicts (a decoded JSON array, the lines of a CSV file, the
rows a FHIR bundle was turned into) or the typed rows of a kind's own fast decoder. The
core then, for every kind and in this order:

1. refuses a batch above `ESMS_MAX_BATCH_ROWS` rows (413), whoever the caller;
2. parses each row on its own (`kind.parse`, pure: every error with its field);
3. loads what the database knows about the valid rows in one round trip (`kind.contexts`);
4. checks the rows against it (`kind.check`, pure) and predicts each outcome
   (`kind.outcome`);
5. stops there for a dry run, or skips every valid row of an atomic batch holding a
   refused one; otherwise writes the rows predicted created or revised in one set-based
   statement (`kind.write`), and asks again about the rows another sender changed between
   the read and the write (`kind.settle`);
6. records the batch in the audit trail (when it stored something) and in the metrics
   (`esms_batch_rows_total`, `esms_batch_rejections_total`, labelled by kind);
7. answers the import summary of SPEC §10: a status, the counts per `Outcome`, and one
   result per row (`kind.result`).

A new kind is an object with the attributes and methods of `BatchKind` (see
`app.extracts.ingestion` for the annexe 2 extracts, `app.pilots.usage.ingestion` for the
pilots' usage), kept in its domain's package: the core imports no domain.
"""

from app.ingestion.core import BatchKind, BatchOptions, BatchRow, ingest, summary_status
from app.ingestion.outcomes import ImportStatus, Outcome, Prediction

__all__ = [
    "BatchKind",
    "BatchOptions",
    "BatchRow",
    "ImportStatus",
    "Outcome",
    "Prediction",
    "ingest",
    "summary_status",
]
