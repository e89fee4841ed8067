"""Which establishments and projects a caller may see; anything else answers 404."""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, false, or_, select, true

from app.access.principal import Principal, Role
from app.projects.models import Project, ProjectEstablishment
from app.referential.models import Establishment


def establishment_visible(principal: Principal) -> ColumnElement[bool]:
    """Vendor: the establishments of its projects. ARS, GRADeS: those located in the
    region or part of one of its projects. National: all."""
    if principal.role is Role.NATIONAL:
        return true()
    if principal.role is Role.VENDOR:
        return exists(
            select(1)
            .select_from(ProjectEstablishment)
            .join(Project, Project.id == ProjectEstablishment.project_id)
            .where(
                ProjectEstablishment.finess == Establishment.finess,
                Project.vendor_siren == principal.vendor_siren,
            )
        )
    if principal.region_code is None:
        return false()
    return or_(
        Establishment.region_code == principal.region_code,
        exists(
            select(1)
            .select_from(ProjectEstablishment)
            .join(Project, Project.id == ProjectEstablishment.project_id)
            .where(
                ProjectEstablishment.finess == Establishment.finess,
                Project.region_code == principal.region_code,
            )
        ),
    )


def project_visible(principal: Principal) -> ColumnElement[bool]:
    if principal.role is Role.NATIONAL:
        return true()
    if principal.role is Role.VENDOR:
        return Project.vendor_siren == principal.vendor_siren
    return Project.region_code == (principal.region_code or "")
