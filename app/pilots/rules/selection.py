"""The selection of pilots as pure rules: the national cap, regional quotas, the per-EJ limit
and the calendar, checked on counts read under the national lock.

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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from app.campaigns import Pilots
from app.fields import FieldError
from app.pilots.rules.applications import Application, eligibility, french_date
from app.pilots.vocabulary import (
    DOMAIN_LABELS,
    ApplicationStatus,
)


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
                f"{french_date(decided_on)} is before the application ({french_date(applied_on)})",
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
                f"selections end on {french_date(deadline)} at the latest (part D)",
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
