"""A risk score per establishment and per project, built from the signals (annexe 4 C: "la
programmation et la méthodologie des contrôles dépendent de l'analyse de risques")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from app.controls.signals import Signal, SignalCode

MAXIMUM = 100


def score(signals: Iterable[Signal], weights: Mapping[SignalCode, int]) -> int:
    """The weights of the kinds of signal found, each kind counted once, capped at 100: two
    rates at their target are one pattern, not two."""
    return min(MAXIMUM, sum(weights[code] for code in {s.code for s in signals}))


@dataclass(frozen=True)
class ProjectRisk:
    """A project is as risky as its riskiest establishment; how many are flagged says
    whether the pattern is one establishment's or the whole deployment's."""

    score: int
    establishments: int
    flagged: int


def project_risk(scores: Sequence[int]) -> ProjectRisk:
    return ProjectRisk(
        score=max(scores, default=0),
        establishments=len(scores),
        flagged=sum(1 for s in scores if s > 0),
    )
