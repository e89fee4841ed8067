"""Column types shared by the ORM classes."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

E = TypeVar("E", bound=StrEnum)


class Words(TypeDecorator[E], Generic[E]):
    """A text column holding the words of one vocabulary: stored as the plain text (the
    schema is a `varchar(length)` as before), read back as the enum's member."""

    impl = String
    cache_ok = True

    def __init__(self, vocabulary: type[E], length: int):
        super().__init__(length)
        self.vocabulary = vocabulary

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self.vocabulary(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> E | None:
        return None if value is None else self.vocabulary(value)
