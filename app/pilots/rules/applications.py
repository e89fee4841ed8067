"""Applications to the call for pilots as pure rules: who may apply, in which domain, and what
stops a selection whatever the counts.

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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from app.campaigns import Pilots
from app.fields import FieldError
from app.pilots.vocabulary import (
    Connection,
    Domain,
    Maturity,
)
from app.referential.categories import CATEGORIES, Audience
from app.referential.finess import InvalidFiness, check_finess


def french_date(day: date) -> str:
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
                f"applied on {french_date(application.applied_on)}, outside the call "
                f"({french_date(calendar.applications_open)} to "
                f"{french_date(calendar.applications_close)} included, part D)",
            )
        )
    return issues
