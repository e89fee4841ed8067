"""Dashboard filters and the caller's scope, turned into one SQL predicate on establishments."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from app.access.principal import Principal, Role
from app.access.scopes import Scope, establishments_sql
from app.clock import Month
from app.referential.geography import DEPARTMENTS


@dataclass(frozen=True)
class Filters:
    region: str | None = None
    department: str | None = None
    category: str | None = None
    vendor: str | None = None
    project: int | None = None
    start: Month | None = None  # first month shown (inclusive)
    end: Month | None = None  # last month shown (inclusive)

    def key(self) -> str:
        return "&".join(f"{k}={v}" for k, v in asdict(self).items() if v is not None)


def scope_sql(principal: Principal, filters: Filters) -> tuple[str, dict[str, Any]]:
    """WHERE clause over `e` (establishment), `pe` (project_establishment) and `p` (project):
    the caller's establishments (app.access.scopes) and the filters."""
    scope = Scope.of(principal)
    clauses = [establishments_sql(scope, finess="e.finess", region="e.region_code", project="p")]
    params: dict[str, Any] = scope.params
    for column, name in (
        ("e.region_code", "region"),
        ("e.department", "department"),
        ("e.category_code", "category"),
        ("p.vendor_siren", "vendor"),
        ("pe.project_id", "project"),
    ):
        value = getattr(filters, name)
        if value is not None:
            clauses.append(f"{column} = :{name}")
            params[name] = value
    return " AND ".join(clauses), params


def rollup_scope(principal: Principal, filters: Filters) -> str | None:
    """The rollup scope that answers these filters for this caller, or None when only the
    live aggregate can (category, vendor or project filters; a vendor's own scope)."""
    if filters.category or filters.vendor or filters.project or principal.role is Role.VENDOR:
        return None
    region = filters.region
    if filters.department:
        home = DEPARTMENTS[filters.department].region_code
        visible = principal.role is Role.NATIONAL or principal.region_code == home
        if (region and region != home) or not visible:
            return None  # the live aggregate answers (an empty or cross-region scope)
        return f"D:{filters.department}"
    if region:
        return f"R:{region}"
    if principal.role is Role.NATIONAL:
        return "N"
    return f"A:{principal.region_code}"
