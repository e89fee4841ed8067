"""Mon espace santé pilots as pure rules (instruction DNS/DGCS/CNSA/2023/120): eligibility,
selection caps, the flat sum and its evidence, deadlines, the national view, usage rows.

Every figure (national cap, regional quotas, per-EJ limit, amount, budget, domain split,
calendar) is read from the campaign's `[pilots]` table. Reading choices where the instruction
leaves room:

Eligibility (annexe 1 1), parts B 2 and B 3)
- The experiment is "circonscrit aux structures médico-sociales accompagnant les personnes
  âgées et les personnes en situation de handicap, en établissement ou à domicile": a
  structure whose FINESS category serves another audience (protection de l'enfance, inclusion
  sociale) cannot apply (`not_eligible_domain`). The domain follows from the category when the
  service knows it: home services (SSIAD, SAA, SAAS, SESSAD, SAMSAH, SAVS) are `home_care`
  ("Domicile PA et PH confondues"); every other PA or PH structure is `pa_residential` or
  `ph_residential` ("en établissement"; the split's "en hébergement uniquement" is read as
  "not at home", since ESAT or accueil de jour are eligible too). A declared domain that
  contradicts the category is refused (`domain_mismatch`); for a category the service does
  not know, the ARS's word is taken.
- Technical maturity is a condition: a Ségur-referenced DUI being installed, or software
  already able to exchange with DMP, MSSanté and the citizen messaging
  (`not_technically_ready` otherwise); DMP connection and MSSanté "effectifs ou a minima
  planifiés au moment de la candidature" (`dmp_not_planned`, `mssante_not_planned`).
- The application is dated within the national call, 01/09 to 31/10/2023 included
  (`outside_call_window`).
- These eligibility issues do not stop the ARS from recording an application (annexe 2 2)
  asks it to justify its choices for "bénéficiaires et non bénéficiaires"); they stop its
  selection. Being funded by ESMS Numérique is no obstacle: annexe 1 1) lets a pilot cumulate
  both.

Selection (annexe 1 2), parts C and D)
- At most `national_cap` (56) pilots nationally (`national_cap`); at most the region's quota
  (5 large metropolitan regions, 3 medium ones, 1 Corse and overseas: `regional_quota`); at
  most `per_legal_entity` (2) per organisme gestionnaire, counted on the FINESS EJ across all
  regions (`legal_entity_limit`). "Ce nombre reste à la main des ARS ... dans la limite de
  l'enveloppe nationale": the quota is read as a ceiling, since each ARS is funded for exactly
  that many pilots (part C). Withdrawn pilots do not count.
- A selection is dated: not in the future (`future_date`), not before the application
  (`before_application`), by the selection deadline, "au plus tard le 15 décembre 2023",
  included (`after_selection_deadline`).
- The 35/35/30 split is "proposée": never a refusal. A selection that takes its domain above
  its share of the national cap comes back with a `domain_above_target` warning.
- An application not selected may be selected later (a waiting list, e.g. after a pilot
  withdraws), within the same rules; a withdrawn pilot is not selected again.

Funding and evidence (parts B 4, B 5 and D)
- Each pilot gets the flat `amount_per_pilot` (21 000 €), paid "en une seule fois, une fois
  la période de pilote terminée" on the evidence: the convention signed and dated
  (`convention_signed`) and the ARS's receipt, attesting conformity, of the intermediate and
  final experience reports (`intermediate_report_received`, `final_report_received`). A
  payment (`paid`) is refused while a piece is missing (`missing_evidence`), before the pilot
  period ends (`before_pilot_end`) or for another amount than the flat sum
  (`not_flat_amount`). The optional bank details (RIB) are not followed.
- The steps come in order (convention, intermediate report, final report); the intermediate
  report cannot predate the pilot period (`before_pilot_start`).
- Deadlines: conventions "avant le 15 février 2024" (the day itself is late, as the ESMS
  Numérique campaign reads its "avant le 30 décembre"), intermediate report "au plus tard le
  14 juin 2024", final report "au plus tard le 15 novembre 2024" (both included). A step done
  after its deadline, or still missing once it has passed, is flagged `late`: a flag for the
  ARS, never a refusal.
- The aid is committed when the convention is signed ("les autorisations d'engagement seront
  notifiées au moment de la signature de la convention") and released if the pilot withdraws;
  each region's envelope is its quota times the flat sum (part C), within the national budget.

Mon espace santé usage (part A)
- One row per pilot and month (`YYYY-MM`) with four counts, integers ≥ 0, all required:
  `ins_qualified_identities` (persons accompanied whose INS identity is qualified in the DUI
  at the end of the month), `dmp_documents_sent` (documents sent to the DMP in the month),
  `mssante_messages_sent` (MSSanté messages between professionals in the month),
  `citizen_messages_sent` (messages sent to persons' Mon espace santé messaging in the month).
  No targets. Only completed months (Europe/Paris), not before the month the call opened.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from app.campaigns import Pilots, PilotsCalendar
from app.clock import Month
from app.extracts.rules import parse_count, parse_month
from app.fields import FieldError
from app.ingestion.outcomes import Outcome
from app.referential.categories import CATEGORIES, Audience
from app.referential.finess import InvalidFiness, check_finess

__all__ = [
    "USAGE_COUNTS",
    "Application",
    "ApplicationStatus",
    "Connection",
    "Deadline",
    "Domain",
    "DomainShare",
    "Event",
    "EventType",
    "Maturity",
    "PaymentStatus",
    "PilotFacts",
    "PilotLine",
    "PilotStanding",
    "RecordedApplication",
    "RegionLine",
    "SelectedCounts",
    "StoredUsage",
    "Summary",
    "UsageContext",
    "UsageRow",
    "check_application",
    "check_decline",
    "check_event",
    "check_selection",
    "check_usage_rows",
    "domain_of_category",
    "due_dates",
    "eligibility",
    "parse_usage_row",
    "regional_quota",
    "selection_warnings",
    "standing",
    "summarise",
    "usage_outcome",
    "usage_tuple",
]


class Domain(StrEnum):
    """The three domains of the proposed split (annexe 1 2)); keys of `split_targets`."""

    PA_RESIDENTIAL = "pa_residential"  # personnes âgées, en établissement
    PH_RESIDENTIAL = "ph_residential"  # personnes handicapées, en établissement
    HOME_CARE = "home_care"  # domicile, PA et PH confondues


DOMAIN_LABELS = {
    Domain.PA_RESIDENTIAL: "PA residential",
    Domain.PH_RESIDENTIAL: "PH residential",
    Domain.HOME_CARE: "home care",
}


class Maturity(StrEnum):
    """Technical maturity at the start of the experiment (annexe 1 1))."""

    SEGUR_DUI_INSTALLING = "segur_dui_installing"  # DUI référencé Ségur en cours d'installation
    EXCHANGE_CAPABLE = "exchange_capable"  # already exchanges with DMP, MSS, citizen messaging
    NONE = "none"


class Connection(StrEnum):
    """State of the DMP connection or of MSSanté when the establishment applies."""

    EFFECTIVE = "effective"
    PLANNED = "planned"
    NONE = "none"


class ApplicationStatus(StrEnum):
    APPLIED = "applied"
    SELECTED = "selected"
    NOT_SELECTED = "not_selected"
    WITHDRAWN = "withdrawn"  # was selected, then gave up


def _french(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def domain_of_category(category_code: str | None) -> Domain | None:
    """The pilot domain of a FINESS category; None when unknown or outside PA and PH."""
    category = CATEGORIES.get((category_code or "").strip())
    if category is None or category.audience not in (Audience.ELDERLY, Audience.DISABLED):
        return None
    if category.home_care:
        return Domain.HOME_CARE
    if category.audience is Audience.ELDERLY:
        return Domain.PA_RESIDENTIAL
    return Domain.PH_RESIDENTIAL


def _outside_pa_ph(category_code: str | None) -> str | None:
    """The category's abbreviation when the service knows it serves neither PA nor PH."""
    category = CATEGORIES.get((category_code or "").strip())
    if category is None or category.audience in (Audience.ELDERLY, Audience.DISABLED):
        return None
    return f"{category.code} {category.abbreviation}"


# -- Applications -------------------------------------------------------------------------


@dataclass(frozen=True)
class Application:
    """An application as the rules see it (the establishment's category from the referential)."""

    finess: str
    legal_entity_finess: str
    region: str
    domain: Domain
    category_code: str | None
    technical_maturity: Maturity
    dmp_connection: Connection
    mssante_connection: Connection
    applied_on: date


@dataclass(frozen=True)
class RecordedApplication:
    """What an application is recorded with, or the reasons it cannot be recorded."""

    domain: Domain | None
    legal_entity_finess: str
    errors: tuple[FieldError, ...]


def check_application(
    *,
    declared_domain: str | None,
    declared_legal_entity: str | None,
    referential_legal_entity: str,
    category_code: str | None,
    applied_on: date,
    today: date,
) -> RecordedApplication:
    """Check an application against the referential before recording it.

    The EJ is the referential's; a declared one must be the same. The domain is the
    category's when the service knows it; a declared one must agree.
    """
    errors: list[FieldError] = []
    outside = _outside_pa_ph(category_code)
    derived = domain_of_category(category_code)
    domain: Domain | None = derived
    if outside:
        errors.append(
            FieldError(
                "finess",
                "not_eligible_domain",
                f"category {outside} serves neither elderly nor disabled persons: the pilots "
                "are for PA and PH structures, residential or at home (instruction 2023/120, "
                "B 2)",
            )
        )
    elif declared_domain is None:
        if derived is None:
            errors.append(
                FieldError(
                    "domain",
                    "required",
                    f"category {category_code or 'unknown'} does not tell the domain: give "
                    "pa_residential, ph_residential or home_care",
                )
            )
    else:
        domain = Domain(declared_domain)
        if derived is not None and derived is not domain:
            errors.append(
                FieldError(
                    "domain",
                    "domain_mismatch",
                    f"the establishment's category {category_code} is {derived.value}, "
                    f"not {domain.value}",
                )
            )
    if declared_legal_entity is not None:
        try:
            number = check_finess(declared_legal_entity)
        except InvalidFiness as exc:
            errors.append(FieldError("legal_entity_finess", "invalid_finess", str(exc)))
        else:
            if number != referential_legal_entity:
                errors.append(
                    FieldError(
                        "legal_entity_finess",
                        "legal_entity_mismatch",
                        f"the referential gives {referential_legal_entity} as this "
                        f"establishment's EJ, not {number}",
                    )
                )
    if applied_on > today:
        errors.append(FieldError("applied_on", "future_date", f"{applied_on} is in the future"))
    return RecordedApplication(domain, referential_legal_entity, tuple(errors))


def eligibility(application: Application, pilots: Pilots) -> list[FieldError]:
    """Why the application cannot be selected whatever the counts (empty when eligible)."""
    issues: list[FieldError] = []
    outside = _outside_pa_ph(application.category_code)
    if outside:
        issues.append(
            FieldError(
                "domain",
                "not_eligible_domain",
                f"category {outside} serves neither elderly nor disabled persons",
            )
        )
    if application.technical_maturity is Maturity.NONE:
        issues.append(
            FieldError(
                "technical_maturity",
                "not_technically_ready",
                "a pilot installs a Ségur-referenced DUI or already exchanges with DMP, MSSanté "
                "and the citizen messaging of Mon espace santé (annexe 1 1))",
            )
        )
    for name, code, service in (
        ("dmp_connection", "dmp_not_planned", "the DMP connection"),
        ("mssante_connection", "mssante_not_planned", "MSSanté"),
    ):
        if getattr(application, name) is Connection.NONE:
            issues.append(
                FieldError(
                    name,
                    code,
                    f"{service} must be effective or at least planned when applying (annexe 1 1))",
                )
            )
    calendar = pilots.calendar
    if not calendar.applications_open <= application.applied_on <= calendar.applications_close:
        issues.append(
            FieldError(
                "applied_on",
                "outside_call_window",
                f"applied on {_french(application.applied_on)}, outside the call "
                f"({_french(calendar.applications_open)} to "
                f"{_french(calendar.applications_close)} included, part D)",
            )
        )
    return issues


# -- Selection ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SelectedCounts:
    """Pilots already selected (withdrawn ones excluded) when a selection is checked."""

    national: int
    regional: int  # in the application's region
    legal_entity: int  # of the application's EJ, all regions
    domain: int  # nationally, in the application's domain


def regional_quota(region: str, pilots: Pilots) -> int:
    """Pilots a region may select (annexe 1 2)); 0 for a region the campaign does not list."""
    return pilots.regional_quotas.get(region, 0)


def _decision_dates(applied_on: date, decided_on: date, today: date) -> list[FieldError]:
    issues = []
    if decided_on > today:
        issues.append(FieldError("decided_on", "future_date", f"{decided_on} is in the future"))
    if decided_on < applied_on:
        issues.append(
            FieldError(
                "decided_on",
                "before_application",
                f"{_french(decided_on)} is before the application ({_french(applied_on)})",
            )
        )
    return issues


def check_selection(
    application: Application,
    status: ApplicationStatus,
    decided_on: date,
    selected: SelectedCounts,
    pilots: Pilots,
    today: date,
) -> list[FieldError]:
    """Every rule a selection breaks (empty when the application may be selected)."""
    if status is ApplicationStatus.SELECTED:
        return [FieldError("decision", "already_selected", "this application is already a pilot")]
    if status is ApplicationStatus.WITHDRAWN:
        return [FieldError("decision", "pilot_withdrawn", "this pilot withdrew: not again")]
    issues = eligibility(application, pilots)
    issues.extend(_decision_dates(application.applied_on, decided_on, today))
    deadline = pilots.calendar.selection_deadline
    if decided_on > deadline:
        issues.append(
            FieldError(
                "decided_on",
                "after_selection_deadline",
                f"selections end on {_french(deadline)} at the latest (part D)",
            )
        )
    if selected.national >= pilots.national_cap:
        issues.append(
            FieldError(
                "decision",
                "national_cap",
                f"{selected.national} pilots are already selected nationally: the limit is "
                f"{pilots.national_cap} (annexe 1 2))",
            )
        )
    quota = regional_quota(application.region, pilots)
    if selected.regional >= quota:
        issues.append(
            FieldError(
                "decision",
                "regional_quota",
                f"region {application.region} has selected {selected.regional} pilot(s) of its "
                f"quota of {quota} (annexe 1 2))",
            )
        )
    if selected.legal_entity >= pilots.per_legal_entity:
        issues.append(
            FieldError(
                "decision",
                "legal_entity_limit",
                f"the organisme gestionnaire {application.legal_entity_finess} already has "
                f"{selected.legal_entity} pilot(s): at most {pilots.per_legal_entity} "
                "(annexe 1 2))",
            )
        )
    return issues


def selection_warnings(
    application: Application, selected: SelectedCounts, pilots: Pilots
) -> list[FieldError]:
    """A selection that takes its domain above its proposed share of the national cap."""
    target = pilots.split_targets.get(application.domain.value)
    if target is None:
        return []
    after = selected.domain + 1
    if after * 100 <= target * pilots.national_cap:
        return []
    ceiling = Decimal(target * pilots.national_cap) / 100
    return [
        FieldError(
            "domain",
            "domain_above_target",
            f"{after} {DOMAIN_LABELS[application.domain]} pilots nationally, above the proposed "
            f"{target} % of {pilots.national_cap} ({ceiling.normalize():f}): the split is a "
            "proposal, not a limit",
        )
    ]


def check_decline(
    status: ApplicationStatus, applied_on: date, decided_on: date, today: date
) -> list[FieldError]:
    """A non-selection is recorded once, for an application still waiting."""
    if status is not ApplicationStatus.APPLIED:
        return [
            FieldError("decision", "already_decided", f"this application is already {status.value}")
        ]
    return _decision_dates(applied_on, decided_on, today)


# -- Payment events -----------------------------------------------------------------------


class EventType(StrEnum):
    CONVENTION_SIGNED = "convention_signed"
    INTERMEDIATE_REPORT = "intermediate_report_received"
    FINAL_REPORT = "final_report_received"
    PAID = "paid"
    WITHDRAWN = "withdrawn"


# The evidence the payment rests on (part B 5), in the order it comes.
EVIDENCE = (EventType.CONVENTION_SIGNED, EventType.INTERMEDIATE_REPORT, EventType.FINAL_REPORT)
REQUIRES = {
    EventType.INTERMEDIATE_REPORT: EventType.CONVENTION_SIGNED,
    EventType.FINAL_REPORT: EventType.INTERMEDIATE_REPORT,
}


@dataclass(frozen=True)
class Event:
    type: str
    date: date
    amount: Decimal | None = None


@dataclass(frozen=True)
class PilotFacts:
    selected_on: date
    amount: Decimal  # the flat sum recorded at selection


def first(history: Sequence[Event], kind: str) -> Event | None:
    return next((e for e in history if e.type == kind), None)


def due_dates(calendar: PilotsCalendar) -> dict[EventType, date]:
    """The last day each piece of evidence is on time (part D)."""
    return {
        # "avant le 15 février 2024": the deadline day itself is late.
        EventType.CONVENTION_SIGNED: calendar.convention_deadline - timedelta(days=1),
        EventType.INTERMEDIATE_REPORT: calendar.intermediate_report_deadline,
        EventType.FINAL_REPORT: calendar.final_report_deadline,
    }


def check_event(
    new: Event,
    history: Sequence[Event],
    facts: PilotFacts,
    calendar: PilotsCalendar,
    today: date,
) -> list[FieldError]:
    """Why `new` cannot be recorded after `history` (empty when it can)."""
    kinds = tuple(e.value for e in EventType)
    if new.type not in kinds:
        return [FieldError("type", "unknown_type", f"type must be one of {', '.join(kinds)}")]
    kind = EventType(new.type)
    if first(history, EventType.WITHDRAWN):
        return [FieldError("type", "pilot_withdrawn", "this pilot withdrew: nothing follows")]
    if kind is EventType.WITHDRAWN and first(history, EventType.PAID):
        return [FieldError("type", "already_paid", "a paid pilot cannot withdraw")]
    issues: list[FieldError] = []
    if new.date > today:
        issues.append(FieldError("date", "future_date", f"{new.date} is in the future"))
    if new.date < facts.selected_on:
        issues.append(
            FieldError(
                "date",
                "before_selection",
                f"{_french(new.date)} is before the selection ({_french(facts.selected_on)})",
            )
        )
    if first(history, kind):
        issues.append(FieldError("type", "already_recorded", f"{kind.value} is already recorded"))
    needed = REQUIRES.get(kind)
    if needed is not None:
        prior = first(history, needed)
        if prior is None:
            issues.append(
                FieldError(
                    "type", "out_of_order", f"{kind.value} needs {needed.value} recorded first"
                )
            )
        elif new.date < prior.date:
            issues.append(
                FieldError(
                    "date",
                    "before_prerequisite",
                    f"{_french(new.date)} is before {needed.value} ({_french(prior.date)})",
                )
            )
    if kind is EventType.INTERMEDIATE_REPORT and new.date < calendar.pilot_start:
        issues.append(
            FieldError(
                "date",
                "before_pilot_start",
                f"the pilot period starts on {_french(calendar.pilot_start)} (part D)",
            )
        )
    if kind is EventType.PAID:
        issues.extend(_payment_issues(new, history, facts, calendar))
    elif new.amount is not None:
        issues.append(FieldError("amount", "amount_not_allowed", "only a payment has an amount"))
    return issues


def _payment_issues(
    new: Event, history: Sequence[Event], facts: PilotFacts, calendar: PilotsCalendar
) -> list[FieldError]:
    issues = []
    for piece in EVIDENCE:
        done = first(history, piece)
        if done is None:
            issues.append(
                FieldError(
                    "type",
                    "missing_evidence",
                    f"the payment needs {piece.value} recorded first (part B 5)",
                )
            )
        elif new.date < done.date:
            issues.append(
                FieldError(
                    "date",
                    "before_prerequisite",
                    f"{_french(new.date)} is before {piece.value} ({_french(done.date)})",
                )
            )
    if new.date <= calendar.pilot_end:
        issues.append(
            FieldError(
                "date",
                "before_pilot_end",
                f"the flat sum is paid once the pilot period is over, after "
                f"{_french(calendar.pilot_end)} (part B 5)",
            )
        )
    if new.amount is not None and new.amount != facts.amount:
        issues.append(
            FieldError(
                "amount",
                "not_flat_amount",
                f"the flat sum of {facts.amount:.2f} € is paid in full, at once (part B 5)",
            )
        )
    return issues


class PaymentStatus(StrEnum):
    AWAITING_CONVENTION = "awaiting_convention"
    IN_PILOT = "in_pilot"  # convention signed; evidence incomplete or period not over
    PAYABLE = "payable"
    PAID = "paid"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class Deadline:
    step: str
    due_by: date  # last day on time
    done_on: date | None
    late: bool


@dataclass(frozen=True)
class PilotStanding:
    status: PaymentStatus
    payable: bool
    missing_evidence: tuple[str, ...]
    deadlines: tuple[Deadline, ...]
    committed: bool  # convention signed and not withdrawn: the aid is committed
    paid_amount: Decimal | None
    paid_on: date | None

    @property
    def late(self) -> bool:
        return any(d.late for d in self.deadlines)


def standing(history: Sequence[Event], calendar: PilotsCalendar, today: date) -> PilotStanding:
    """Where a pilot stands for its payment: status, missing evidence, late steps."""
    withdrawn = first(history, EventType.WITHDRAWN) is not None
    paid = first(history, EventType.PAID)
    deadlines = []
    for step, due in due_dates(calendar).items():
        done = first(history, step)
        late = not withdrawn and (done.date > due if done else today > due)
        deadlines.append(Deadline(step.value, due, done.date if done else None, late))
    missing = tuple(piece.value for piece in EVIDENCE if first(history, piece) is None)
    signed = first(history, EventType.CONVENTION_SIGNED) is not None
    if withdrawn:
        status = PaymentStatus.WITHDRAWN
    elif paid is not None:
        status = PaymentStatus.PAID
    elif not signed:
        status = PaymentStatus.AWAITING_CONVENTION
    elif not missing and today > calendar.pilot_end:
        status = PaymentStatus.PAYABLE
    else:
        status = PaymentStatus.IN_PILOT
    return PilotStanding(
        status=status,
        payable=status is PaymentStatus.PAYABLE,
        missing_evidence=missing,
        deadlines=tuple(deadlines),
        committed=signed and not withdrawn,
        paid_amount=paid.amount if paid else None,
        paid_on=paid.date if paid else None,
    )


# -- National and regional view -----------------------------------------------------------


@dataclass(frozen=True)
class PilotLine:
    """A selected (or withdrawn) pilot, for the summary."""

    region: str
    domain: str
    amount: Decimal
    standing: PilotStanding


@dataclass
class RegionLine:
    region: str
    quota: int
    envelope: Decimal  # quota x flat sum (part C)
    applications: int = 0
    selected: int = 0
    committed: Decimal = Decimal(0)
    paid: Decimal = Decimal(0)
    late: int = 0

    @property
    def remaining(self) -> int:
        return self.quota - self.selected


@dataclass(frozen=True)
class DomainShare:
    domain: str
    pilots: int
    share: Decimal | None  # percent of the selected pilots, one decimal; None without pilots
    target: int | None  # proposed percent


@dataclass(frozen=True)
class Summary:
    selected: int
    cap: int  # national cap, or the quotas of the regions shown
    applications: Mapping[str, int]  # per application status, and "total"
    domains: tuple[DomainShare, ...]
    regions: tuple[RegionLine, ...]
    budget: Decimal  # national budget, or the envelopes of the regions shown
    selected_amount: Decimal
    committed: Decimal
    paid: Decimal
    payments: Mapping[str, int]  # per payment status
    late: int

    @property
    def remaining(self) -> Decimal:
        return self.budget - self.committed


def _percent(part: int, whole: int) -> Decimal | None:
    if whole == 0:
        return None
    return (Decimal(part * 100) / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def summarise(
    lines: Iterable[PilotLine],
    applications: Mapping[str, Mapping[str, int]],
    pilots: Pilots,
    regions: Sequence[str] | None = None,
) -> Summary:
    """The national view (regions None) or that of some regions: pilots against the cap and
    quotas, the domain split against its targets, the budget committed and paid.

    `applications` maps each region to its number of applications per status.
    """
    wanted = list(regions) if regions is not None else list(pilots.regional_quotas)
    by_region = {
        code: RegionLine(
            code,
            regional_quota(code, pilots),
            regional_quota(code, pilots) * pilots.amount_per_pilot,
        )
        for code in wanted
    }
    statuses: Counter[str] = Counter()
    for code, line in by_region.items():
        for status, count in applications.get(code, {}).items():
            line.applications += count
            statuses[status] += count
    payments: Counter[str] = Counter()
    domains: Counter[str] = Counter()
    selected_amount = Decimal(0)
    for pilot in lines:
        line = by_region.get(pilot.region)
        if line is None:
            continue
        payments[pilot.standing.status.value] += 1
        if pilot.standing.status is PaymentStatus.WITHDRAWN:
            continue
        line.selected += 1
        domains[pilot.domain] += 1
        selected_amount += pilot.amount
        if pilot.standing.committed:
            line.committed += pilot.amount
        if pilot.standing.paid_amount is not None:
            line.paid += pilot.standing.paid_amount
        if pilot.standing.late:
            line.late += 1
    selected = sum(line.selected for line in by_region.values())
    shares = tuple(
        DomainShare(
            domain.value,
            domains[domain.value],
            _percent(domains[domain.value], selected),
            pilots.split_targets.get(domain.value),
        )
        for domain in Domain
    )
    national = regions is None
    return Summary(
        selected=selected,
        cap=pilots.national_cap if national else sum(line.quota for line in by_region.values()),
        applications={
            **{status.value: statuses[status.value] for status in ApplicationStatus},
            "total": sum(statuses.values()),
        },
        domains=shares,
        regions=tuple(by_region.values()),
        budget=pilots.budget
        if national
        else sum((line.envelope for line in by_region.values()), Decimal(0)),
        selected_amount=selected_amount,
        committed=sum((line.committed for line in by_region.values()), Decimal(0)),
        paid=sum((line.paid for line in by_region.values()), Decimal(0)),
        payments={status.value: payments[status.value] for status in PaymentStatus},
        late=sum(line.late for line in by_region.values()),
    )


# -- Mon espace santé usage ---------------------------------------------------------------

USAGE_COUNTS = (
    "ins_qualified_identities",
    "dmp_documents_sent",
    "mssante_messages_sent",
    "citizen_messages_sent",
)
_USAGE_FIELDS = frozenset(("finess", "month", *USAGE_COUNTS))


@dataclass(slots=True)
class UsageRow:
    """One row of a usage batch once parsed."""

    index: int
    finess: str | None
    month: Month | None
    counts: dict[str, int | None]
    raw_finess: Any = None
    raw_month: Any = None
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[FieldError] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StoredUsage:
    revision: int
    counts: tuple[int | None, ...]


@dataclass(frozen=True, slots=True)
class UsageContext:
    """What the database says about one usage row."""

    known: bool  # in the FINESS referential
    covered: bool  # within the sender's scope (vendor: its projects; ARS: its region)
    pilot_id: int | None  # the establishment's pilot in the campaign, selected or withdrawn
    withdrawn: bool
    current: StoredUsage | None  # what is stored for that pilot and month


def usage_tuple(counts: Mapping[str, int | None]) -> tuple[int | None, ...]:
    return tuple(counts.get(name) for name in USAGE_COUNTS)


def parse_usage_row(index: int, raw: Any, text_cells: bool = False) -> UsageRow:
    """Type-check one row; every problem is reported with its field (counts and months are
    read by the same helpers as the annexe 2 extracts)."""
    if not isinstance(raw, Mapping):
        row = UsageRow(index, None, None, {})
        row.errors.append(FieldError("usage", "not_an_object", "each usage row must be an object"))
        return row
    errors: list[FieldError] = [
        FieldError(str(name), "unknown_field", f"{name!r} is not a field of a usage row")
        for name in raw
        if name not in _USAGE_FIELDS
    ]
    finess: str | None = None
    raw_finess = raw.get("finess")
    if raw_finess is None or raw_finess == "":
        errors.append(FieldError("finess", "required", "finess is required"))
    elif not isinstance(raw_finess, str):
        errors.append(FieldError("finess", "invalid_finess", "finess must be a string"))
    else:
        try:
            finess = check_finess(raw_finess)
        except InvalidFiness as exc:
            errors.append(FieldError("finess", "invalid_finess", str(exc)))
    month = parse_month("month", raw.get("month"), errors)
    counts = {name: parse_count(name, raw.get(name), errors, text_cells) for name in USAGE_COUNTS}
    return UsageRow(
        index,
        finess,
        month,
        counts,
        raw_finess=raw_finess,
        raw_month=raw.get("month"),
        errors=errors,
    )


def check_usage_rows(
    rows: Sequence[UsageRow],
    contexts: Mapping[int, UsageContext],
    current: Month,
    earliest: Month,
) -> None:
    """Apply the rules that need the database: the pilot, the sender's scope, the month.

    `current` is the month in progress (not completed); `earliest` the first month accepted.
    """
    seen: dict[tuple[str, Month], int] = {}
    for row in rows:
        if row.errors or row.finess is None or row.month is None:
            continue
        key = (row.finess, row.month)
        if key in seen:
            row.errors.append(
                FieldError(
                    "month",
                    "duplicate_in_batch",
                    f"the same pilot and month are already at index {seen[key]}",
                )
            )
            continue
        seen[key] = row.index
        ctx = contexts[row.index]
        if not ctx.known:
            row.errors.append(
                FieldError(
                    "finess", "unknown_finess", f"{row.finess} is not in the FINESS referential"
                )
            )
            continue
        if not ctx.covered:
            row.errors.append(
                FieldError(
                    "finess", "not_covered", f"{row.finess} is not an establishment of your scope"
                )
            )
            continue
        if ctx.pilot_id is None:
            row.errors.append(
                FieldError("finess", "not_a_pilot", f"{row.finess} is not a Mon espace santé pilot")
            )
            continue
        if ctx.withdrawn:
            row.errors.append(
                FieldError("finess", "pilot_withdrawn", f"the pilot {row.finess} withdrew")
            )
        if row.month >= current:
            row.errors.append(
                FieldError(
                    "month",
                    "period_not_completed",
                    f"{row.month} is not a completed month yet (months complete at their end, "
                    "Europe/Paris)",
                )
            )
        elif row.month < earliest:
            row.errors.append(
                FieldError(
                    "month",
                    "before_campaign",
                    f"{row.month} precedes the call for pilots (opened {earliest})",
                )
            )


def usage_outcome(row: UsageRow, ctx: UsageContext) -> tuple[Outcome, int]:
    """Predicted outcome and revision of a valid row: created, revised or unchanged."""
    stored = ctx.current
    if stored is None:
        return Outcome.CREATED, 1
    if stored.counts == usage_tuple(row.counts):
        return Outcome.UNCHANGED, stored.revision
    return Outcome.REVISED, stored.revision + 1
