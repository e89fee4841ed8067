"""The draw of an ARS's yearly control plan (instruction 2023/13, annexe 4 C 2): "Chaque ARS
contrôlera a minima un ESSMS par département. Les ESSMS contrôlés peuvent être sélectionnés
de manière aléatoire ou sur la base de critères qu'il appartiendra aux ARS de définir."

The random part is replayable by anyone, in any language, without this code: each funded
establishment gets the key SHA-256("<seed>:<FINESS>") written in hexadecimal, and a random
pick takes the smallest keys. The same seed and candidates always give the same plan; a
candidate added later does not change which of the others are picked before it.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class DrawMethod(StrEnum):
    # One establishment per département (and any extra) at random.
    RANDOM = "random"
    # The riskiest establishment of each département, then the riskiest of the region.
    RISK = "risk"
    # One per département at random (the annexe's minimum), the extra ones by risk.
    MIXED = "mixed"


class PickReason(StrEnum):
    DEPARTMENT_RANDOM = "department_random"
    DEPARTMENT_RISK = "department_risk"
    EXTRA_RANDOM = "extra_random"
    EXTRA_RISK = "extra_risk"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A funded establishment of the region, with its risk score when the plan is drawn."""

    finess: str
    department: str
    risk_score: int = 0


@dataclass(frozen=True, slots=True)
class Pick:
    finess: str
    department: str
    risk_score: int
    reason: PickReason
    draw_key: str


@dataclass(frozen=True)
class Draw:
    picks: tuple[Pick, ...]
    uncovered: tuple[str, ...]  # départements of the region without a funded establishment


def draw_key(seed: int, finess: str) -> str:
    return hashlib.sha256(f"{seed}:{finess}".encode()).hexdigest()


def draw(
    candidates: Sequence[Candidate],
    departments: Sequence[str],
    method: DrawMethod,
    seed: int,
    per_department: int = 1,
    extra: int = 0,
) -> Draw:
    """`per_department` establishments in each département of the region, then `extra` more
    from the whole region; by the smallest draw keys (random) or the highest risk score,
    ties by the smallest key (risk)."""
    keys = {c.finess: draw_key(seed, c.finess) for c in candidates}

    def by_key(c: Candidate) -> tuple:
        return (keys[c.finess],)

    def by_risk(c: Candidate) -> tuple:
        return (-c.risk_score, keys[c.finess])

    per_department_order, per_department_reason = (
        (by_risk, PickReason.DEPARTMENT_RISK)
        if method is DrawMethod.RISK
        else (by_key, PickReason.DEPARTMENT_RANDOM)
    )
    extra_order, extra_reason = (
        (by_key, PickReason.EXTRA_RANDOM)
        if method is DrawMethod.RANDOM
        else (by_risk, PickReason.EXTRA_RISK)
    )
    located: dict[str, list[Candidate]] = defaultdict(list)
    for candidate in candidates:
        located[candidate.department].append(candidate)
    picks: list[Pick] = []
    taken: set[str] = set()
    for department in sorted(departments):
        for candidate in sorted(located.get(department, []), key=per_department_order)[
            :per_department
        ]:
            picks.append(_pick(candidate, per_department_reason, keys))
            taken.add(candidate.finess)
    rest = sorted((c for c in candidates if c.finess not in taken), key=extra_order)
    picks += [_pick(c, extra_reason, keys) for c in rest[:extra]]
    uncovered = tuple(d for d in sorted(departments) if not located.get(d))
    return Draw(tuple(picks), uncovered)


def _pick(candidate: Candidate, reason: PickReason, keys: dict[str, str]) -> Pick:
    return Pick(
        candidate.finess,
        candidate.department,
        candidate.risk_score,
        reason,
        keys[candidate.finess],
    )
