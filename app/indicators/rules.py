"""Annexe 2 usage indicators (cibles d'usage) computed from one measurement's counts.

Each rate is (numerator / denominator) x 100 over the collection period. A rate whose
denominator is 0 is not computable (None) and does not meet its target. The exact ratio is
compared with the target, so 69.99 % misses 70 %; only the displayed value is rounded,
half-up to one decimal. The MSSanté rate counts messages, so it may exceed 100 %.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

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
_ONE_DECIMAL = Decimal("0.1")


@dataclass(frozen=True, slots=True)
class Indicator:
    code: str
    exact: Fraction | None  # percentage, exact
    target: Decimal | None
    met: bool | None  # None for indicators without a target

    @property
    def value(self) -> Decimal | None:
        return display(self.exact)


def rate(numerator: int | None, denominator: int | None) -> Fraction | None:
    if numerator is None or not denominator:
        return None
    return Fraction(numerator * 100, denominator)


def display(value: Fraction | None) -> Decimal | None:
    """Half-up rounding to one decimal, for display only."""
    if value is None:
        return None
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return exact.quantize(_ONE_DECIMAL, rounding=ROUND_HALF_UP)


def meets(value: Fraction | None, target: Decimal) -> bool:
    return value is not None and value >= Fraction(target)


def compute(counts: Mapping[str, int | None], targets: Mapping[str, Decimal]) -> list[Indicator]:
    """All indicators of one measurement, rates first then the optional counts."""
    result = []
    for code, (numerator, denominator) in RATES.items():
        value = rate(counts.get(numerator), counts.get(denominator))
        target = targets[code]
        result.append(Indicator(code, value, target, meets(value, target)))
    for code, field in COUNTS.items():
        raw = counts.get(field)
        result.append(Indicator(code, None if raw is None else Fraction(raw), None, None))
    return result


def meets_targets(indicators: list[Indicator]) -> bool:
    """An establishment meets its targets for a measurement when all five rates meet theirs."""
    return all(i.met for i in indicators if i.code in RATES)
