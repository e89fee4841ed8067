"""The one time zone of the service (Europe/Paris) and the `YYYY-MM` month type."""

from __future__ import annotations

import re
from dataclasses import FrozenInstanceError
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def now() -> datetime:
    return datetime.now(PARIS)


def today() -> date:
    return now().date()


def to_paris(moment: datetime) -> datetime:
    return moment.astimezone(PARIS)


class Month:
    """A calendar month, written `YYYY-MM` everywhere in the API.

    Immutable, compared and hashed by its index (months since year 0). A batch compares and
    subtracts months several times per row: the index and the first day are computed once.
    """

    __slots__ = ("first_day", "index", "month", "year")
    year: int
    month: int
    index: int
    first_day: date

    def __init__(self, year: int, month: int) -> None:
        init = object.__setattr__
        init(self, "year", year)
        init(self, "month", month)
        init(self, "index", year * 12 + month - 1)
        init(self, "first_day", date(year, month, 1))

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    __delattr__ = __setattr__  # type: ignore[assignment]

    def __reduce__(self) -> tuple[type[Month], tuple[int, int]]:
        return Month, (self.year, self.month)

    @classmethod
    def parse(cls, text: str) -> Month:
        if not isinstance(text, str):
            raise ValueError(f"{text!r} is not a month written YYYY-MM")
        return _parse_month(text)

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    @classmethod
    def current(cls) -> Month:
        """The month in progress in Europe/Paris: it is not completed yet."""
        return cls.of(today())

    def plus(self, months: int) -> Month:
        index = self.index + months
        return Month(index // 12, index % 12 + 1)

    def __sub__(self, other: Month) -> int:
        return self.index - other.index

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Month:
            return NotImplemented
        return self.index == other.index

    def __hash__(self) -> int:
        return hash(self.index)

    def __lt__(self, other: Month) -> bool:
        if other.__class__ is not Month:
            return NotImplemented
        return self.index < other.index

    def __le__(self, other: Month) -> bool:
        if other.__class__ is not Month:
            return NotImplemented
        return self.index <= other.index

    def __gt__(self, other: Month) -> bool:
        if other.__class__ is not Month:
            return NotImplemented
        return self.index > other.index

    def __ge__(self, other: Month) -> bool:
        if other.__class__ is not Month:
            return NotImplemented
        return self.index >= other.index

    def __repr__(self) -> str:
        return f"Month(year={self.year}, month={self.month})"

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@lru_cache(maxsize=4096)
def _parse_month(text: str) -> Month:
    # A batch names the same few months thousands of times.
    found = _MONTH.match(text)
    if not found:
        raise ValueError(f"{text!r} is not a month written YYYY-MM")
    return Month(int(found.group(1)), int(found.group(2)))


def months_inclusive(start: Month, end: Month) -> int:
    return end - start + 1
