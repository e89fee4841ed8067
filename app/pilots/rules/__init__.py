"""Mon espace santé pilots as pure rules (instruction DNS/DGCS/CNSA/2023/120): eligibility,
selection caps, the flat sum and its evidence, deadlines, the national view, usage rows.

Every figure (national cap, regional quotas, per-EJ limit, amount, budget, domain split,
calendar) is read from the campaign's `[pilots]` table.

The rules are split by concern: `applications` (eligibility), `selection` (cap, quotas,
calendar), `payments` (evidence, deadlines, standing) and `national` (the summary); the
pilots' usage rows are in `app.pilots.usage.rules`. Each module holds the reading choices
it makes where the instruction leaves room. They are gathered here, so that
`from app.pilots import rules` reads them all.
"""

from app.pilots.rules.applications import (
    Application,
    RecordedApplication,
    check_application,
    domain_of_category,
    eligibility,
)
from app.pilots.rules.national import DomainShare, PilotLine, RegionLine, Summary, summarise
from app.pilots.rules.payments import (
    EVIDENCE,
    REQUIRES,
    Deadline,
    Event,
    PilotFacts,
    PilotStanding,
    check_event,
    due_dates,
    first,
    standing,
)
from app.pilots.rules.selection import (
    SelectedCounts,
    check_decline,
    check_selection,
    regional_quota,
    selection_warnings,
)
from app.pilots.vocabulary import (
    DOMAIN_LABELS,
    ApplicationStatus,
    Connection,
    Domain,
    EventType,
    Maturity,
    PaymentStatus,
)

__all__ = [
    "DOMAIN_LABELS",
    "EVIDENCE",
    "REQUIRES",
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
    "Summary",
    "check_application",
    "check_decline",
    "check_event",
    "check_selection",
    "domain_of_category",
    "due_dates",
    "eligibility",
    "first",
    "regional_quota",
    "selection_warnings",
    "standing",
    "summarise",
]
