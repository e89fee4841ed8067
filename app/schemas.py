"""Shapes shared by every domain: money as exact decimal strings, pages of results."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Generic, TypeVar

from fastapi import Path
from pydantic import BaseModel, Field, PlainSerializer

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
# Ids are PostgreSQL integers: one outside 1..2**31-1 names nothing and is refused (422).
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
