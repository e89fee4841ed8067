"""Query parameters shared by the read endpoints: month ranges written YYYY-MM, a region."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from app.clock import Month
from app.errors import FieldError, Invalid

MONTH_PATTERN = r"^[1-9]\d{3}-(0[1-9]|1[0-2])$"
FromQuery = Annotated[
    str | None, Query(alias="from", pattern=MONTH_PATTERN, description="first month, YYYY-MM")
]
ToQuery = Annotated[str | None, Query(pattern=MONTH_PATTERN, description="last month, YYYY-MM")]
RegionQuery = Annotated[
    str | None, Query(max_length=2, description="INSEE region code; default: the caller's")
]


def month_bounds(from_: str | None, to: str | None) -> tuple[Month | None, Month | None]:
    start = Month.parse(from_) if from_ else None
    end = Month.parse(to) if to else None
    if start and end and end < start:
        raise Invalid("`to` is before `from`.", [FieldError("to", "before_from", "to < from")])
    return start, end
