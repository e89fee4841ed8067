"""Every ORM class, imported once so that the metadata is complete (Alembic, tests)."""

from app.access.models import AccessToken
from app.audit.models import AuditEvent, IdempotencyKey
from app.db import Base
from app.extracts.models import ExtractRevision, LatestMeasurement, Measurement
from app.projects.models import Project, ProjectEstablishment, ProjectEvent
from app.referential.models import DepartmentRow, Establishment, RegionRow
from app.vendors.models import Vendor

__all__ = [
    "AccessToken",
    "AuditEvent",
    "Base",
    "DepartmentRow",
    "Establishment",
    "ExtractRevision",
    "IdempotencyKey",
    "LatestMeasurement",
    "Measurement",
    "Project",
    "ProjectEstablishment",
    "ProjectEvent",
    "RegionRow",
    "Vendor",
]
