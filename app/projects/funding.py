"""Annexe 5 funding of a project, with the annexe 3 guichet and admissibility, as pure functions.

About 400 lines, most of them the reading choices below and their rules side by side.

Reading choices where instruction DGCS/DNS/CNSA/2023/13 leaves room (all figures come from the
campaign file):

- Rank (annexe 5 A): the full amounts go "jusqu'au 49e ESSMS", the lower ones "à partir du 50e".
  Ranks count every establishment of the project, acquisitions and generalisations first, then
  upgrades, each group ordered by FINESS, so an upgrade never takes a full-rate rank from an
  acquisition. Part I A announces "conditions particulières" for mixed groups in annexe 3, but
  annexe 3 gives none: this ordering is the service's rule.
- Confort services (annexe 5 B, part II B): "l'aide est modulée au prorata du nombre d'heures
  éligibles" and the funding is "alloué que pour la première partie de leur activité", so the
  share multiplies every amount of that establishment: usage, software and hardware. The AMOA
  flat sum belongs to the project, not to an establishment, and is never prorated.
- Petits organismes gestionnaires (annexe 5 A 3): an EJ is small when it manages fewer than 15
  establishments (fewer than 8 in Corse and overseas), counted in the referential, and never
  fewer than it brings to the project. The territory is the EJ's region when given, otherwise
  the project's region. Hardware is then funded per establishment up to the cap, never above
  the quote ("modulés en fonction des devis"; no quote, no hardware) nor above the actual
  expense once known. Hardware is open to upgrades too: part I A funds, for an upgrade, "le
  développement des usages et l'éventuel financement d'équipement matériel"; only the software
  goes through SONS.
- AMOA (annexe 5 A 3): the 100 k€ flat sum "est également possible pour les regroupements
  composés d'organismes de petite taille". "Possible" means it must be requested; a
  "regroupement composé d'organismes de petite taille" means at least two EJs, every one of
  them small. One EJ alone, or a group with one EJ that is not small, gets no AMOA.
- Rounding: per-establishment amounts stay exact; each project total is rounded to the cent
  (half-up) once, `total` is the sum of the rounded parts, `advance` is `total` × the advance
  share rounded to the cent and `balance` is `total` − `advance`, so both always add up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from app.campaigns import Campaign, DateWindow, FundingCase, current_campaign
from app.fields import FieldError
from app.projects.vocabulary import Guichet

CENT = Decimal("0.01")
ONE = Decimal(1)
ZERO = Decimal(0)

__all__ = [
    "Admissibility",
    "EstablishmentFunding",
    "EstablishmentLine",
    "FundingCase",
    "FundingInputError",
    "Guichet",
    "ProjectFunding",
    "admissibility",
    "compute_funding",
    "filing_window",
    "guichet",
    "rank_establishments",
    "to_cents",
]


def to_cents(amount: Decimal) -> Decimal:
    """Round an amount in euros to the cent, half-up."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


class FundingInputError(ValueError):
    """An establishment line cannot be funded as given (bad share, negative amount...)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def _check_amount(name: str, value: object) -> None:
    if value is None:
        return
    # A float would carry binary rounding into euros: refuse it rather than convert it.
    if not isinstance(value, Decimal) or not value.is_finite():
        raise FundingInputError(name, f"{name} must be an exact decimal amount, got {value!r}")
    if value < 0:
        raise FundingInputError(name, f"{name} cannot be negative, got {value}")


@dataclass(frozen=True)
class EstablishmentLine:
    """One establishment (FINESS ET) of a funding request.

    `funding_case` defaults to the project's case. `eligible_hours_share` is the share of hours
    spent on essential-life support for establishments that also sell "confort" services
    (0 < share ≤ 1, None = all hours eligible). `hardware_quote` and `hardware_expense` only
    matter for small organisations.
    """

    finess: str
    legal_entity_finess: str
    funding_case: FundingCase | None = None
    eligible_hours_share: Decimal | None = None
    hardware_quote: Decimal | None = None
    hardware_expense: Decimal | None = None

    def __post_init__(self) -> None:
        if self.funding_case is not None:
            try:
                object.__setattr__(self, "funding_case", FundingCase(self.funding_case))
            except ValueError:
                raise FundingInputError(
                    "funding_case",
                    f"funding_case must be one of {', '.join(FundingCase)}, "
                    f"got {self.funding_case!r}",
                ) from None
        _check_amount("hardware_quote", self.hardware_quote)
        _check_amount("hardware_expense", self.hardware_expense)
        share = self.eligible_hours_share
        if share is not None:
            _check_amount("eligible_hours_share", share)
            if not ZERO < share <= ONE:
                raise FundingInputError(
                    "eligible_hours_share",
                    f"eligible_hours_share must be above 0 and at most 1, got {share}",
                )


@dataclass(frozen=True)
class EstablishmentFunding:
    """What one establishment brings to the project's flat sum (exact, not rounded)."""

    finess: str
    legal_entity_finess: str
    funding_case: FundingCase
    rank: int
    small_organisation: bool
    eligible_hours_share: Decimal
    usage: Decimal
    software: Decimal
    hardware: Decimal

    @property
    def total(self) -> Decimal:
        return self.usage + self.software + self.hardware


@dataclass(frozen=True)
class ProjectFunding:
    """The project's single flat aid (annexe 5 A) and its advance / balance split (annexe 5 C)."""

    establishments: tuple[EstablishmentFunding, ...]
    small_legal_entities: frozenset[str]
    amoa_eligible: bool
    usage: Decimal
    software: Decimal
    hardware: Decimal
    amoa: Decimal
    total: Decimal
    advance: Decimal
    balance: Decimal

    def amounts(self) -> dict[str, Decimal]:
        """The seven project figures, keyed as in the API's `funding` object."""
        names = ("usage", "software", "hardware", "amoa", "total", "advance", "balance")
        return {name: getattr(self, name) for name in names}


def _case_of(line: EstablishmentLine, project_case: FundingCase) -> FundingCase:
    return FundingCase(line.funding_case or project_case)


def rank_establishments(
    lines: Iterable[EstablishmentLine], project_case: FundingCase | str
) -> tuple[tuple[int, EstablishmentLine], ...]:
    """Rank from 1: acquisitions and generalisations first, then upgrades, each by FINESS."""
    case = FundingCase(project_case)
    ordered = sorted(
        lines, key=lambda line: (_case_of(line, case) is FundingCase.UPGRADE, line.finess)
    )
    return tuple(enumerate(ordered, start=1))


def _small_legal_entities(
    lines: Sequence[EstablishmentLine],
    region: str,
    legal_entity_sizes: Mapping[str, int],
    legal_entity_regions: Mapping[str, str],
    campaign: Campaign,
) -> frozenset[str]:
    in_project = Counter(line.legal_entity_finess for line in lines)
    small = set()
    for legal_entity, count in in_project.items():
        # The referential may lag behind the request: an EJ manages at least what it brings.
        size = max(legal_entity_sizes.get(legal_entity, 0), count)
        territory = legal_entity_regions.get(legal_entity, region)
        if size < campaign.small_organisation_threshold(territory):
            small.add(legal_entity)
    return frozenset(small)


def _hardware(line: EstablishmentLine, campaign: Campaign) -> Decimal:
    if line.hardware_quote is None:
        return ZERO
    ceilings = [campaign.small_organisations.hardware_cap_per_establishment, line.hardware_quote]
    if line.hardware_expense is not None:
        ceilings.append(line.hardware_expense)
    return min(ceilings)


def compute_funding(
    lines: Sequence[EstablishmentLine],
    *,
    funding_case: FundingCase | str,
    region: str,
    legal_entity_sizes: Mapping[str, int],
    amoa_requested: bool,
    campaign: Campaign,
    legal_entity_regions: Mapping[str, str] | None = None,
) -> ProjectFunding:
    """Compute a project's aid from its establishments (annexe 5 A and B, advance of C).

    `legal_entity_sizes` maps each EJ FINESS to the number of establishments it manages in the
    referential; `region` is the INSEE code of the project's region; `legal_entity_regions`
    optionally gives an EJ's own region when it differs (national projects).
    """
    project_case = FundingCase(funding_case)
    repeated = sorted(finess for finess, n in Counter(x.finess for x in lines).items() if n > 1)
    if repeated:
        raise FundingInputError(
            "establishments", f"establishments appear more than once: {', '.join(repeated)}"
        )
    small = _small_legal_entities(
        lines, region, legal_entity_sizes, legal_entity_regions or {}, campaign
    )

    funded = []
    for rank, line in rank_establishments(lines, project_case):
        case = _case_of(line, project_case)
        amounts = campaign.amounts[case]
        share = line.eligible_hours_share if line.eligible_hours_share is not None else ONE
        is_small = line.legal_entity_finess in small
        hardware = _hardware(line, campaign) if is_small else ZERO
        funded.append(
            EstablishmentFunding(
                finess=line.finess,
                legal_entity_finess=line.legal_entity_finess,
                funding_case=case,
                rank=rank,
                small_organisation=is_small,
                eligible_hours_share=share,
                usage=amounts.usage.for_rank(rank, campaign.rank_threshold) * share,
                software=amounts.software.for_rank(rank, campaign.rank_threshold) * share,
                hardware=hardware * share,
            )
        )

    legal_entities = {line.legal_entity_finess for line in lines}
    amoa_eligible = amoa_requested and len(legal_entities) >= 2 and legal_entities <= small
    usage = to_cents(sum((x.usage for x in funded), ZERO))
    software = to_cents(sum((x.software for x in funded), ZERO))
    hardware = to_cents(sum((x.hardware for x in funded), ZERO))
    amoa = to_cents(campaign.small_organisations.amoa_flat_sum) if amoa_eligible else to_cents(ZERO)
    total = usage + software + hardware + amoa
    advance = to_cents(total * campaign.advance_share)
    return ProjectFunding(
        establishments=tuple(funded),
        small_legal_entities=small,
        amoa_eligible=amoa_eligible,
        usage=usage,
        software=software,
        hardware=hardware,
        amoa=amoa,
        total=total,
        advance=advance,
        balance=total - advance,
    )


def guichet(establishment_regions: Iterable[str], campaign: Campaign | None = None) -> Guichet:
    """Annexe 3 A: under 50 establishments, or 50+ in one region, file at the ARS; else national.

    `establishment_regions` holds one region code per establishment of the request.
    """
    campaign = campaign or current_campaign()
    regions = list(establishment_regions)
    if len(regions) >= campaign.guichet_threshold and len(set(regions)) > 1:
        return Guichet.NATIONAL
    return Guichet.REGIONAL


def filing_window(
    establishment_regions: Iterable[str], campaign: Campaign | None = None
) -> tuple[str, DateWindow]:
    """The call a request falls under (part III): `regional`, `multiregional` or `national`."""
    campaign = campaign or current_campaign()
    regions = list(establishment_regions)
    windows = campaign.filing_windows
    if guichet(regions, campaign) is Guichet.NATIONAL:
        return "national", windows.national
    if len(set(regions)) > 1:
        return "multiregional", windows.multiregional
    return "regional", windows.regional


@dataclass(frozen=True)
class Admissibility:
    """Annexe 3 C checks of a request: errors make it non-receivable, warnings are for the ARS."""

    guichet: Guichet
    window: str
    errors: tuple[FieldError, ...] = field(default=())
    warnings: tuple[FieldError, ...] = field(default=())

    @property
    def admissible(self) -> bool:
        return not self.errors


def _french(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def admissibility(
    finess: Sequence[str],
    *,
    region: str,
    establishment_regions: Mapping[str, str],
    submitted_on: date,
    taken_finess: Collection[str],
    campaign: Campaign,
    joins_funded_group: bool = False,
) -> Admissibility:
    """Check a request's receivability (annexe 3 C, calendar of part III).

    `finess` lists the request's establishments in request order (error fields point at
    `establishments[i].finess`); `establishment_regions` maps each FINESS to its region, the
    project's `region` standing in for any missing; `taken_finess` holds the establishments
    already in another project. The size minimum (annexe 3 C 5) is a warning because "les ARS
    apprécieront ces minima"; the lower Corse-and-overseas minimum applies when every
    establishment is located there.
    """
    errors: list[FieldError] = []
    warnings: list[FieldError] = []
    if not finess:
        errors.append(
            FieldError(
                "establishments", "no_establishments", "A request needs at least one establishment."
            )
        )

    seen: set[str] = set()
    for index, number in enumerate(finess):
        where = f"establishments[{index}].finess"
        if number in seen:
            errors.append(
                FieldError(
                    where,
                    "duplicate_establishment",
                    f"Establishment {number} is listed twice in this request.",
                )
            )
        elif number in taken_finess:
            errors.append(
                FieldError(
                    where,
                    "already_in_project",
                    f"Establishment {number} is already part of another project: an "
                    "establishment can be funded only once by ESMS Numérique (annexe 3 C 2).",
                )
            )
        seen.add(number)

    unique = list(dict.fromkeys(finess))
    regions = [establishment_regions.get(number, region) for number in unique]
    desk = guichet(regions, campaign)
    window_name, window = filing_window(regions, campaign)
    if not window.contains(submitted_on):
        label = {
            "regional": "the regional call",
            "multiregional": "multi-regional requests filed at an ARS",
            "national": "the national call",
        }[window_name]
        errors.append(
            FieldError(
                "submitted_on",
                "outside_filing_window",
                f"Filed on {_french(submitted_on)}, outside the dates for {label} "
                f"({_french(window.opens)} to {_french(window.closes)} included): "
                "the request is not receivable (part III, annexe 3 C 3).",
            )
        )

    remote = bool(regions) and all(campaign.is_corse_or_overseas(code) for code in regions)
    minimum = (
        campaign.minimum_project_size_corse_overseas if remote else campaign.minimum_project_size
    )
    if unique and len(unique) < minimum and not joins_funded_group:
        where_text = " in Corse and overseas" if remote else ""
        warnings.append(
            FieldError(
                "establishments",
                "below_minimum_size",
                f"The request has {len(unique)} establishment(s); annexe 3 C 5 expects at "
                f"least {minimum}{where_text}, unless the project joins a group already funded "
                "by ESMS Numérique. The ARS decides whether to accept it.",
            )
        )
    return Admissibility(
        guichet=desk, window=window_name, errors=tuple(errors), warnings=tuple(warnings)
    )
