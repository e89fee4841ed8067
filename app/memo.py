"""What a process keeps in memory by data version: values computed from the database, each
served again only for the version (and day, or month) it was computed at, so never older
than the data. The console's prepared pages (`app.console.kept`) and the controls' risk
assessments (`app.controls.service`) keep theirs here; the API's answers, bytes counted in
megabytes, in `app.answers`."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Protocol, TypeVar


class Kept:
    """The values served last, by key, each with its version; at most `size` of them, the
    least recently used dropped first. A kept value is shared by every reader: read it, never
    change it."""

    def __init__(self, size: int):
        self.size = size
        self.entries: OrderedDict[Any, tuple[str, Any]] = OrderedDict()

    def get(self, key: Any, version: str) -> tuple[bool, Any]:
        entry = self.entries.get(key)
        if entry is None or entry[0] != version:
            return False, None
        self.entries.move_to_end(key)
        return True, entry[1]

    def keep(self, key: Any, version: str, value: Any) -> None:
        self.entries[key] = (version, value)
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)

    def clear(self) -> None:
        self.entries.clear()


class _Clearable(Protocol):
    def clear(self) -> None: ...


C = TypeVar("C", bound=_Clearable)

# Every keeper of the process (these and `app.answers`'), so that a new app starts with none
# of them filled.
KEEPERS: list[_Clearable] = []


def registered(kept: C) -> C:
    KEEPERS.append(kept)
    return kept


def keeper(size: int) -> Kept:
    return registered(Kept(size))


def forget_all() -> None:
    for kept in KEEPERS:
        kept.clear()
