"""The vocabulary of an import summary (pure: rules of every kind use it)."""

from __future__ import annotations

from app.vocabulary import Vocabulary


class Outcome(Vocabulary):
    """What became of one row of a batch."""

    CREATED = "created"
    REVISED = "revised"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"
    SKIPPED = "skipped"  # valid, not stored because the atomic batch held a refused row


class ImportStatus(Vocabulary):
    """A batch as a whole: every row taken, some, or none."""

    OK = "ok"
    PARTIAL = "partial"
    REJECTED = "rejected"


# An outcome with the revision the row has (or would have) once stored.
Prediction = tuple[Outcome, int | None]
