"""The one time zone of the service (Europe/Paris) and the `YYYY-MM` month type."""

from __future__ import annotations

import re
from dataclasses import dataclass
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


@dataclass(frozen=True, order=True, slots=True)
class Month:
    """A calendar month, written `YYYY-MM` everywhere in the API."""

    year: int
    month: int

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

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def index(self) -> int:
        return self.year * 12 + self.month - 1

    def plus(self, months: int) -> Month:
        index = self.index + months
        return Month(index // 12, index % 12 + 1)

    def __sub__(self, other: Month) -> int:
        return self.index - other.index

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
