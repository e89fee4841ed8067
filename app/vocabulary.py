"""Closed lists of words (statuses, cases, outcomes) typed once, as `Vocabulary` enums.

A `Vocabulary` is a `StrEnum`: it equals its value, so ORM columns, SQL parameters and JSON
take it as the plain text they store. Pydantic checks it and documents it as the inline list
of its values, exactly as a `Literal` of them would be (same OpenAPI document, same 422
message), while the code reads a member.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema


class Vocabulary(StrEnum):
    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls,
            core_schema.literal_schema([member.value for member in cls]),
            serialization=core_schema.plain_serializer_function_ser_schema(
                str, when_used="json-unless-none"
            ),
        )


def sql_values(vocabulary: type[StrEnum], words: Iterable[StrEnum] | None = None) -> str:
    """The words (all, or some) as a SQL list of literals, for CHECK constraints and CASE
    expressions."""
    return ", ".join(f"'{vocabulary(word).value}'" for word in (words or vocabulary))
