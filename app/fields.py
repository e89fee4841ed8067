"""Why a field was refused: the unit of every error and warning the service reports."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One reason a field was refused: `field` is a dotted path into the request."""

    field: str
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        # Written out rather than dataclasses.asdict, a recursive deep copy: a batch reports
        # thousands of these.
        return {"field": self.field, "code": self.code, "message": self.message}
