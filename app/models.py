"""Every ORM class, imported once so that the metadata is complete (Alembic, tests)."""

from app.access.models import AccessToken, RateWindow
from app.audit.models import AuditEvent, IdempotencyKey
from app.console.models import ConsoleSession
from app.controls.models import (
    Control,
    ControlPlan,
    ControlPlanLine,
    ControlRecoveryEvent,
    FrozenRevisionAttempt,
)
from app.dashboards.models import DashboardCache
from app.db import Base
from app.extracts.models import ExtractRevision, LatestMeasurement, Measurement
from app.identity.models import AccessGrant, ConsoleSignIn, Person, SignInAttempt
from app.pilots.models import PilotApplication, PilotEvent, PilotUsage, PilotUsageRevision
from app.projects.models import Project, ProjectEstablishment, ProjectEvent
from app.referential.models import DepartmentRow, Establishment, RegionRow
from app.vendors.models import Vendor

__all__ = [
    "AccessGrant",
    "AccessToken",
    "AuditEvent",
    "Base",
    "ConsoleSession",
    "ConsoleSignIn",
    "Control",
    "ControlPlan",
    "ControlPlanLine",
    "ControlRecoveryEvent",
    "DashboardCache",
    "DepartmentRow",
    "Establishment",
    "ExtractRevision",
    "FrozenRevisionAttempt",
    "IdempotencyKey",
    "LatestMeasurement",
    "Measurement",
    "Person",
    "PilotApplication",
    "PilotEvent",
    "PilotUsage",
    "PilotUsageRevision",
    "Project",
    "ProjectEstablishment",
    "ProjectEvent",
    "RateWindow",
    "RegionRow",
    "SignInAttempt",
    "Vendor",
]
