"""The thresholds of the control signals and the weights of the risk score: campaign data
(the `[controls]` table of the campaign file), so that a campaign tunes them without code."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from types import MappingProxyType

from app.campaigns.loader import CAMPAIGNS_DIR, CURRENT_YEAR, CampaignFileError
from app.controls.signals import SignalCode


@dataclass(frozen=True)
class Thresholds:
    per_department: int
    plateau_margin_points: Decimal
    plateau_months: int
    jump_window_months: int
    jump_shortfall_months: int
    jump_min_points: Decimal
    repeat_months: int
    repeat_min_persons: int
    shared_counts_months: int
    mssante_per_eligible_per_month: Decimal
    equal_files_periods: int
    late_revision_days: int
    weights: Mapping[SignalCode, int]


_INTEGERS = (
    "per_department",
    "plateau_months",
    "jump_window_months",
    "jump_shortfall_months",
    "repeat_months",
    "repeat_min_persons",
    "shared_counts_months",
    "equal_files_periods",
    "late_revision_days",
)
_DECIMALS = ("plateau_margin_points", "jump_min_points", "mssante_per_eligible_per_month")


def parse_thresholds(table: Mapping[str, object], source: str) -> Thresholds:
    """Read the `[controls]` table, listing every missing or unusable figure at once."""
    problems: list[str] = []
    values: dict[str, object] = {}
    for name in _INTEGERS:
        raw = table.get(name)
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
            problems.append(f"'controls.{name}' must be a whole number of at least 1")
        values[name] = raw
    for name in _DECIMALS:
        raw = table.get(name)
        try:
            value = Decimal(str(raw)) if isinstance(raw, str) else None
        except ArithmeticError:
            value = None
        if value is None or not value.is_finite() or value <= 0:
            problems.append(f"'controls.{name}' must be a positive decimal written as a string")
        values[name] = value
    raw_weights = table.get("weights")
    weights: dict[SignalCode, int] = {}
    if not isinstance(raw_weights, Mapping):
        problems.append("'controls.weights' is missing")
        raw_weights = {}
    for code in SignalCode:
        weight = raw_weights.get(code.value)
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            problems.append(f"'controls.weights.{code.value}' must be a whole number 0 to 100")
        weights[code] = weight  # type: ignore[assignment]
    unknown = sorted(set(raw_weights) - {code.value for code in SignalCode})
    if unknown:
        problems.append(f"'controls.weights' names unknown signals: {unknown}")
    if problems:
        raise CampaignFileError(source, problems)
    return Thresholds(**values, weights=MappingProxyType(weights))  # type: ignore[arg-type]


@cache
def current_thresholds() -> Thresholds:
    path = CAMPAIGNS_DIR / f"{CURRENT_YEAR}.toml"
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    return parse_thresholds(data.get("controls", {}), str(path))
