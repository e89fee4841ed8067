"""Load a campaign file (instruction 2023/13 annexes 1, 2, 3, 5; 2023/120) into dataclasses.

Over 400 lines because it is the campaign file's schema: one dataclass and one checked read
per table of the file, kept together so that a new campaign's figures are checked in one place.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from app.vocabulary import Vocabulary

CURRENT_YEAR = 2023
CAMPAIGNS_DIR = Path(__file__).resolve().parent

# Annexe 2: the five indicators that carry a target; a campaign must give all of them.
TARGET_INDICATORS = (
    "mssante_rate",
    "dmp_rate",
    "active_files_rate",
    "care_project_rate",
    "agenda_rate",
)


class FundingCase(Vocabulary):
    """The three mutually exclusive funding cases of part II D."""

    ACQUISITION = "acquisition"
    UPGRADE = "upgrade"
    GENERALISATION = "generalisation"


class CampaignFileError(ValueError):
    """A campaign file is missing a figure or holds one that cannot be used."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = tuple(problems)
        listed = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"campaign file {source} cannot be used:\n{listed}")


@dataclass(frozen=True)
class RankedAmount:
    """An amount per establishment that drops after the rank threshold (annexe 5 A)."""

    within: Decimal  # ranks 1 .. rank_threshold
    beyond: Decimal  # ranks rank_threshold + 1 and later

    def for_rank(self, rank: int, rank_threshold: int) -> Decimal:
        return self.within if rank <= rank_threshold else self.beyond


@dataclass(frozen=True)
class CaseAmounts:
    """Usage and software-equipment amounts of one funding case (annexe 5 A 1 and 2)."""

    usage: RankedAmount
    software: RankedAmount


@dataclass(frozen=True)
class SmallOrganisations:
    """Extras for "petits organismes gestionnaires" (annexe 5 A 3)."""

    fewer_than: int
    fewer_than_corse_overseas: int
    hardware_cap_per_establishment: Decimal
    amoa_flat_sum: Decimal


@dataclass(frozen=True)
class DateWindow:
    """A period whose both bounds are included."""

    opens: date
    closes: date

    def contains(self, day: date) -> bool:
        return self.opens <= day <= self.closes


@dataclass(frozen=True)
class FilingWindows:
    """Where and when a request may be filed (part III)."""

    regional: DateWindow
    multiregional: DateWindow
    national: DateWindow


@dataclass(frozen=True)
class Engagement:
    """Commitment deadlines of part V B."""

    deadline: date  # commitments must be made strictly before this day
    redeployment_on: date
    redeployed_deadline: date


@dataclass(frozen=True)
class PilotsCalendar:
    """Provisional calendar of the Mon espace santé pilots (instruction 2023/120, part D)."""

    applications_open: date
    applications_close: date
    selection_deadline: date
    convention_deadline: date
    pilot_start: date
    pilot_end: date
    intermediate_report_deadline: date
    final_report_deadline: date


@dataclass(frozen=True)
class Pilots:
    """Mon espace santé pilots (instruction 2023/120): amount, quotas, split, calendar."""

    instruction: str
    amount_per_pilot: Decimal
    budget: Decimal
    national_cap: int
    per_legal_entity: int
    regional_quotas: Mapping[str, int]
    split_targets: Mapping[str, int]  # percent per domain
    calendar: PilotsCalendar


@dataclass(frozen=True)
class Campaign:
    """Every figure of one campaign; the rules read them from here, never from code."""

    year: int
    instruction: str
    signed_on: date
    rank_threshold: int
    advance_share: Decimal
    amounts: Mapping[FundingCase, CaseAmounts]
    small_organisations: SmallOrganisations
    targets: Mapping[str, Decimal]  # percent per indicator code
    first_window_months: int
    later_window_months: int
    filing_windows: FilingWindows
    guichet_threshold: int
    minimum_project_size: int
    minimum_project_size_corse_overseas: int
    engagement: Engagement
    indicative_duration_months: Mapping[FundingCase, int]
    corse_overseas_regions: frozenset[str]
    regional_envelopes: Mapping[str, Decimal]
    regional_total: Decimal
    national_envelope: Decimal
    pilots: Pilots

    @property
    def engagement_deadline(self) -> date:
        return self.engagement.deadline

    def is_corse_or_overseas(self, region_code: str) -> bool:
        return region_code in self.corse_overseas_regions

    def small_organisation_threshold(self, region_code: str) -> int:
        """An EJ managing fewer establishments than this is a small organisation."""
        if self.is_corse_or_overseas(region_code):
            return self.small_organisations.fewer_than_corse_overseas
        return self.small_organisations.fewer_than

    def minimum_size(self, region_code: str) -> int:
        if self.is_corse_or_overseas(region_code):
            return self.minimum_project_size_corse_overseas
        return self.minimum_project_size


class _Reader:
    """Reads typed figures out of the parsed TOML, collecting every problem before failing."""

    def __init__(self, data: Mapping[str, Any]):
        self.data = data
        self.problems: list[str] = []

    def raw(self, path: str) -> Any:
        node: Any = self.data
        for part in path.split("."):
            if not isinstance(node, Mapping) or part not in node:
                self.problems.append(f"missing figure '{path}'")
                return None
            node = node[part]
        return node

    def table(self, path: str) -> Mapping[str, Any]:
        value = self.raw(path)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problems.append(f"'{path}' must be a table")
            return {}
        return value

    def integer(self, path: str, *, minimum: int = 0, value: Any = None) -> int:
        value = self.raw(path) if value is None else value
        if value is None:
            return minimum
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.append(f"'{path}' must be an integer, got {value!r}")
            return minimum
        if value < minimum:
            self.problems.append(f"'{path}' must be at least {minimum}, got {value}")
        return value

    def decimal(self, path: str, *, value: Any = None, money: bool = False) -> Decimal:
        value = self.raw(path) if value is None else value
        if value is None:
            return Decimal(0)
        # Money comes as a quoted string so that no binary float ever touches it.
        if not isinstance(value, str) and (money or isinstance(value, bool | float)):
            self.problems.append(f"'{path}' must be a quoted decimal string, got {value!r}")
            return Decimal(0)
        try:
            number = Decimal(value if isinstance(value, str) else int(value))
        except (InvalidOperation, ValueError, TypeError):
            self.problems.append(f"'{path}' is not a decimal number: {value!r}")
            return Decimal(0)
        if not number.is_finite() or number < 0:
            self.problems.append(f"'{path}' must be a finite amount ≥ 0, got {value!r}")
            return Decimal(0)
        return number

    def money(self, path: str, *, value: Any = None) -> Decimal:
        return self.decimal(path, value=value, money=True)

    def day(self, path: str) -> date:
        value = self.raw(path)
        if value is None:
            return date.min
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        elif isinstance(value, date) and not isinstance(value, datetime):
            return value
        self.problems.append(f"'{path}' must be a date (YYYY-MM-DD), got {value!r}")
        return date.min

    def text(self, path: str) -> str:
        value = self.raw(path)
        if value is None:
            return ""
        if not isinstance(value, str) or not value.strip():
            self.problems.append(f"'{path}' must be a non-empty string")
            return ""
        return value

    def window(self, path: str) -> DateWindow:
        known_problems = len(self.problems)
        window = DateWindow(self.day(f"{path}.opens"), self.day(f"{path}.closes"))
        if len(self.problems) == known_problems and window.closes < window.opens:
            self.problems.append(f"'{path}' closes before it opens")
        return window

    def ranked(self, path: str) -> RankedAmount:
        return RankedAmount(self.money(f"{path}.within"), self.money(f"{path}.beyond"))

    def per_case(self, path: str, read: Any) -> dict[FundingCase, Any]:
        return {case: read(f"{path}.{case.value}") for case in FundingCase}


def _parse(data: Mapping[str, Any], source: str) -> Campaign:
    read = _Reader(data)

    amounts = read.per_case(
        "funding",
        lambda path: CaseAmounts(read.ranked(f"{path}.usage"), read.ranked(f"{path}.software")),
    )
    known_problems = len(read.problems)
    advance_share = read.decimal("funding.advance_share")
    if len(read.problems) == known_problems and not Decimal(0) < advance_share <= Decimal(1):
        read.problems.append("'funding.advance_share' must be a share within (0, 1]")

    targets = {code: read.decimal(f"targets.{code}") for code in TARGET_INDICATORS}

    known_problems = len(read.problems)
    envelopes_table = read.table("envelopes.regional")
    envelopes = {
        str(code): read.money(f"envelopes.regional.{code}", value=amount)
        for code, amount in envelopes_table.items()
    }
    regional_total = read.money("envelopes.regional_total")
    envelopes_sum = sum(envelopes.values(), Decimal(0))
    # Annexe 1 prints its total: a typo in one region shows up as a mismatch.
    if len(read.problems) == known_problems and envelopes_sum != regional_total:
        read.problems.append(
            f"regional envelopes add up to {envelopes_sum}, "
            f"not to envelopes.regional_total {regional_total}"
        )

    corse_overseas = read.raw("regions.corse_overseas")
    if corse_overseas is not None and not (
        isinstance(corse_overseas, list) and all(isinstance(c, str) for c in corse_overseas)
    ):
        read.problems.append("'regions.corse_overseas' must be a list of region codes")
        corse_overseas = []
    corse_overseas_regions = frozenset(corse_overseas or ())
    unknown = sorted(corse_overseas_regions - envelopes.keys()) if envelopes else []
    if unknown:
        read.problems.append(f"'regions.corse_overseas' has regions without envelope: {unknown}")

    quotas_table = read.table("pilots.regional_quotas")
    quotas = {
        str(code): read.integer(f"pilots.regional_quotas.{code}", value=quota)
        for code, quota in quotas_table.items()
    }
    national_cap = read.integer("pilots.national_cap", minimum=1)
    if sum(quotas.values()) > national_cap:
        read.problems.append(
            f"pilot regional quotas add up to {sum(quotas.values())}, above the national cap"
        )
    split = {
        str(domain): read.integer(f"pilots.split_targets.{domain}", value=share)
        for domain, share in read.table("pilots.split_targets").items()
    }
    if split and sum(split.values()) != 100:
        read.problems.append("'pilots.split_targets' must add up to 100")

    calendar = PilotsCalendar(
        **{
            name: read.day(f"pilots.calendar.{name}")
            for name in PilotsCalendar.__dataclass_fields__
        }
    )

    campaign = Campaign(
        year=read.integer("campaign.year", minimum=2000),
        instruction=read.text("campaign.instruction"),
        signed_on=read.day("campaign.signed_on"),
        rank_threshold=read.integer("funding.rank_threshold", minimum=1),
        advance_share=advance_share,
        amounts=MappingProxyType(amounts),
        small_organisations=SmallOrganisations(
            fewer_than=read.integer("small_organisations.fewer_than", minimum=1),
            fewer_than_corse_overseas=read.integer(
                "small_organisations.fewer_than_corse_overseas", minimum=1
            ),
            hardware_cap_per_establishment=read.money(
                "small_organisations.hardware_cap_per_establishment"
            ),
            amoa_flat_sum=read.money("small_organisations.amoa_flat_sum"),
        ),
        targets=MappingProxyType(targets),
        first_window_months=read.integer("measurement.first_window_months", minimum=1),
        later_window_months=read.integer("measurement.later_window_months", minimum=1),
        filing_windows=FilingWindows(
            regional=read.window("filing_windows.regional"),
            multiregional=read.window("filing_windows.multiregional"),
            national=read.window("filing_windows.national"),
        ),
        guichet_threshold=read.integer("guichet.national_threshold", minimum=1),
        minimum_project_size=read.integer("admissibility.minimum_project_size", minimum=1),
        minimum_project_size_corse_overseas=read.integer(
            "admissibility.minimum_project_size_corse_overseas", minimum=1
        ),
        engagement=Engagement(
            deadline=read.day("engagement.deadline"),
            redeployment_on=read.day("engagement.redeployment_on"),
            redeployed_deadline=read.day("engagement.redeployed_deadline"),
        ),
        indicative_duration_months=MappingProxyType(
            read.per_case("indicative_duration_months", lambda path: read.integer(path, minimum=1))
        ),
        corse_overseas_regions=corse_overseas_regions,
        regional_envelopes=MappingProxyType(envelopes),
        regional_total=regional_total,
        national_envelope=read.money("envelopes.national_call"),
        pilots=Pilots(
            instruction=read.text("pilots.instruction"),
            amount_per_pilot=read.money("pilots.amount_per_pilot"),
            budget=read.money("pilots.budget"),
            national_cap=national_cap,
            per_legal_entity=read.integer("pilots.per_legal_entity", minimum=1),
            regional_quotas=MappingProxyType(quotas),
            split_targets=MappingProxyType(split),
            calendar=calendar,
        ),
    )
    if read.problems:
        raise CampaignFileError(source, read.problems)
    return campaign


def load_campaign(year_or_path: int | str | os.PathLike[str]) -> Campaign:
    """Load a campaign by year (a file shipped in this package) or from a TOML file path."""
    year = (
        year_or_path
        if isinstance(year_or_path, int)
        else int(year_or_path)
        if isinstance(year_or_path, str) and year_or_path.isdigit()
        else None
    )
    path = CAMPAIGNS_DIR / f"{year}.toml" if year is not None else Path(str(year_or_path))
    if not path.is_file():
        raise CampaignFileError(str(path), ["no such campaign file"])
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise CampaignFileError(str(path), [f"not valid TOML: {error}"]) from error
    campaign = _parse(data, str(path))
    if year is not None and campaign.year != year:
        raise CampaignFileError(str(path), [f"'campaign.year' is {campaign.year}, expected {year}"])
    return campaign


@cache
def current_campaign() -> Campaign:
    """The campaign the service runs (2023), loaded once."""
    return load_campaign(CURRENT_YEAR)
