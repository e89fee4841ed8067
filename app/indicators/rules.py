"""Annexe 2 usage indicators (cibles d'usage) computed from one measurement's counts.

Each rate is (numerator / denominator) x 100 over the collection period. A rate whose
denominator is 0 is not computable (None) and does not meet its target. The exact ratio is
compared with the target, so 69.99 % misses 70 %; only the displayed value is rounded,
half-up to one decimal. The MSSanté rate counts messages, so it may exceed 100 %.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import NamedTuple

# code -> (numerator, denominator), in the order of annexe 2.
RATES: dict[str, tuple[str, str]] = {
    # Taux d'utilisation de la MS Santé: messages envoyés / personnes pouvant bénéficier
    # d'un projet d'accueil et d'accompagnement.
    "mssante_rate": ("mssante_messages_sent", "eligible_persons"),
    # Taux d'utilisation du DMP: DMP alimentés avec au moins un document / mêmes personnes.
    "dmp_rate": ("dmp_fed_persons", "eligible_persons"),
    # Taux de dossiers actifs: dossiers actifs / personnes accompagnées (file active).
    "active_files_rate": ("active_files", "accompanied_persons"),
    # Dossiers actifs avec un projet personnalisé en préparation ou actif / dossiers actifs.
    "care_project_rate": ("active_files_with_care_project", "active_files"),
    # Dossiers actifs ayant au moins un événement dans l'agenda / dossiers actifs.
    "agenda_rate": ("active_files_with_agenda_event", "active_files"),
}
# Annexe 2 C: optional indicators, raw counts without a target.
COUNTS: dict[str, str] = {
    "eprescription_count": "eprescriptions_imported",
    "eparcours_count": "eparcours_exchanges",
}


class Ratio(NamedTuple):
    """An exact count ratio (denominator > 0), compared by cross-multiplication: exact like a
    Fraction, without its cost (compliance compares hundreds of thousands of them)."""

    numerator: int
    denominator: int

    @classmethod
    def of(cls, value: Ratio | Fraction | Decimal | int) -> Ratio:
        if isinstance(value, Ratio):
            return value
        if isinstance(value, bool) or not isinstance(value, Fraction | Decimal | int):
            raise TypeError(f"a rate must be an exact ratio, got {value!r}")
        exact = Fraction(value)
        return cls(exact.numerator, exact.denominator)

    @property
    def percent(self) -> Fraction:
        return Fraction(self.numerator * 100, self.denominator)


@dataclass(frozen=True, slots=True)
class Indicator:
    code: str
    ratio: Ratio | None  # exact; for the optional counts, the count over 1
    target: Decimal | None
    met: bool | None  # None for indicators without a target

    @property
    def value(self) -> Decimal | None:
        """Percentage for display (one decimal), or the raw count."""
        if self.ratio is not None and self.code in COUNTS:
            return Decimal(self.ratio.numerator)
        return display(self.ratio)


def rate(numerator: int | None, denominator: int | None) -> Ratio | None:
    if numerator is None or not denominator:
        return None
    return Ratio(numerator, denominator)


def display(ratio: Ratio | None) -> Decimal | None:
    """The percentage rounded half-up to one decimal, for display only (exact arithmetic)."""
    if ratio is None:
        return None
    numerator, denominator = ratio
    tenths = (2000 * numerator + denominator) // (2 * denominator)
    return Decimal(tenths).scaleb(-1)


@lru_cache(maxsize=64)
def _target(target: Decimal) -> tuple[int, int]:
    exact = Fraction(target)
    return exact.numerator, exact.denominator


def meets(ratio: Ratio | None, target: Decimal) -> bool:
    """ratio x 100 >= target, exactly: 69.99 % misses 70 %."""
    if ratio is None:
        return False
    target_numerator, target_denominator = _target(target)
    numerator, denominator = ratio
    return numerator * 100 * target_denominator >= target_numerator * denominator


def compute(counts: Mapping[str, int | None], targets: Mapping[str, Decimal]) -> list[Indicator]:
    """All indicators of one measurement, rates first then the optional counts."""
    result = []
    for code, (numerator, denominator) in RATES.items():
        value = rate(counts.get(numerator), counts.get(denominator))
        target = targets[code]
        result.append(Indicator(code, value, target, meets(value, target)))
    for code, field in COUNTS.items():
        raw = counts.get(field)
        result.append(Indicator(code, None if raw is None else Ratio(raw, 1), None, None))
    return result


def meets_targets(indicators: list[Indicator]) -> bool:
    """An establishment meets its targets for a measurement when all five rates meet theirs."""
    return all(i.met for i in indicators if i.code in RATES)
