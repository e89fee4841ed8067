"""The closed lists of words of the pilots (instruction DNS/DGCS/CNSA/2023/120), typed once
for the rules, the ORM columns, the schemas and the SQL."""

from __future__ import annotations

from app.vocabulary import Vocabulary


class Domain(Vocabulary):
    """The three domains of the proposed split (annexe 1 2)); keys of `split_targets`."""

    PA_RESIDENTIAL = "pa_residential"  # personnes âgées, en établissement
    PH_RESIDENTIAL = "ph_residential"  # personnes handicapées, en établissement
    HOME_CARE = "home_care"  # domicile, PA et PH confondues


DOMAIN_LABELS = {
    Domain.PA_RESIDENTIAL: "PA residential",
    Domain.PH_RESIDENTIAL: "PH residential",
    Domain.HOME_CARE: "home care",
}


class Maturity(Vocabulary):
    """Technical maturity at the start of the experiment (annexe 1 1))."""

    SEGUR_DUI_INSTALLING = "segur_dui_installing"  # DUI référencé Ségur en cours d'installation
    EXCHANGE_CAPABLE = "exchange_capable"  # already exchanges with DMP, MSS, citizen messaging
    NONE = "none"


class Connection(Vocabulary):
    """State of the DMP connection or of MSSanté when the establishment applies."""

    EFFECTIVE = "effective"
    PLANNED = "planned"
    NONE = "none"


class ApplicationStatus(Vocabulary):
    APPLIED = "applied"
    SELECTED = "selected"
    NOT_SELECTED = "not_selected"
    WITHDRAWN = "withdrawn"  # was selected, then gave up


# The applications that are pilots: selected, or selected and withdrawn since.
PILOT_STATUSES = (ApplicationStatus.SELECTED, ApplicationStatus.WITHDRAWN)


class EventType(Vocabulary):
    CONVENTION_SIGNED = "convention_signed"
    INTERMEDIATE_REPORT = "intermediate_report_received"
    FINAL_REPORT = "final_report_received"
    PAID = "paid"
    WITHDRAWN = "withdrawn"


class PaymentStatus(Vocabulary):
    AWAITING_CONVENTION = "awaiting_convention"
    IN_PILOT = "in_pilot"  # convention signed; evidence incomplete or period not over
    PAYABLE = "payable"
    PAID = "paid"
    WITHDRAWN = "withdrawn"
