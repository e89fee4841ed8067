"""Shapes shared by every domain: money as exact decimal strings, pages of results."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Path
from pydantic import BaseModel, BeforeValidator, Field, PlainSerializer

# Money travels as an exact decimal string ("336000.00"), never as a float.
Money = Annotated[
    Decimal,
    PlainSerializer(lambda v: f"{v:.2f}", return_type=str, when_used="json"),
    Field(json_schema_extra={"type": "string", "pattern": r"^-?\d+\.\d{2}$"}),
]
# A displayed percentage (one decimal) or a raw count: a JSON number, for dashboards.
DisplayNumber = Annotated[
    Decimal,
    PlainSerializer(
        lambda v: int(v) if v == v.to_integral_value() and v.as_tuple().exponent >= 0 else float(v),
        return_type=float,
        when_used="json",
    ),
]


def _written_as_text(value: Any) -> Any:
    """Dates travel as ISO text: a number would otherwise be read as seconds since 1970."""
    if isinstance(value, int | float):
        raise ValueError("write it as text: YYYY-MM-DD (a date-time: YYYY-MM-DDTHH:MM:SS)")
    return value


# A date (YYYY-MM-DD) or a date-time sent by a caller: as ISO text, never as a number.
Day = Annotated[date, BeforeValidator(_written_as_text)]
Instant = Annotated[datetime, BeforeValidator(_written_as_text)]
# Ids are PostgreSQL integers: one outside 1..2**31-1 names nothing and is refused (422).
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
