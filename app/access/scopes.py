"""Who sees what, defined once: which regions, establishments, projects and pilots a caller
may see (anything else answers 404).

- `national`: everything.
- `vendor`: the establishments of its projects and those projects; of the pilots, only those
  whose establishment is in one of its projects, and only to push and read back their usage;
  no region.
- `ars` and `grades`: their region; the projects registered in it; the establishments located
  in it *or* part of one of its projects (a project may fund an establishment located in a
  neighbouring region); the pilots of their region only.
- A token missing the vendor or region its role needs sees nothing.

Pilots are the one place where an ARS does not follow its projects elsewhere, and it is
meant: the call for pilots is regional (instruction DNS/DGCS/CNSA/2023/120, annexe 1 2)):
each region has its quota and its envelope, and the ARS of the pilot's region records the
application, selects, pays and follows it. An establishment of a project of region A located
in region B is seen by the ARS of A as an establishment, but if it is a pilot, it is a pilot
of B: the ARS of A neither reads it nor pushes its usage (`not_covered`); the ARS of B does.
A pilot's region is the one its application was recorded in; an establishment that is not a
pilot is placed by its own region.

Each rule is written once, as SQL text over the columns the caller names, with named
parameters (`:scope_vendor`, `:scope_region`; `Scope.params`). The same text serves raw SQL
(`*_sql`, or `positional` for asyncpg's `$n`) and SQLAlchemy (`*_visible`, a `text()`
clause over the mapped table's own columns), so this module imports no model: the domains
import it, never the other way round.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, text

from app.access.principal import Principal, Role


@dataclass(frozen=True, slots=True)
class Scope:
    """A caller's reach: everything, a vendor's projects, or a region (with its projects)."""

    everything: bool = False
    vendor: str | None = None
    region: str | None = None

    @classmethod
    def of(cls, principal: Principal) -> Scope:
        if principal.role is Role.NATIONAL:
            return cls(everything=True)
        if principal.role is Role.VENDOR:
            return cls(vendor=principal.vendor_siren or "")  # no SIREN: no project matches
        return cls(region=principal.region_code or "")  # no region: none matches

    @property
    def params(self) -> dict[str, Any]:
        if self.vendor is not None:
            return {"scope_vendor": self.vendor}
        if self.region is not None:
            return {"scope_region": self.region}
        return {}

    def sees_region(self, region: str) -> bool:
        return self.everything or (self.region is not None and self.region == region)


def _in_projects(finess: str, where: str) -> str:
    return (
        "EXISTS (SELECT FROM project_establishment scope_pe "
        "JOIN project scope_p ON scope_p.id = scope_pe.project_id "
        f"WHERE scope_pe.finess = {finess} AND {where})"
    )


def establishments_sql(
    scope: Scope, *, finess: str, region: str, project: str | None = None
) -> str:
    """Establishments: `finess` and `region` are the caller's SQL for an establishment's
    number and region. `project`: the alias of the establishment's project when the query
    already joins it (an establishment is in one project at most), else a subquery looks."""
    if scope.everything:
        return "true"
    if scope.vendor is not None:
        if project is not None:
            return f"{project}.vendor_siren = :scope_vendor"
        return _in_projects(finess, "scope_p.vendor_siren = :scope_vendor")
    if project is not None:
        return f"({region} = :scope_region OR {project}.region_code = :scope_region)"
    return (
        f"({region} = :scope_region OR "
        f"{_in_projects(finess, 'scope_p.region_code = :scope_region')})"
    )


def projects_sql(scope: Scope, *, project: str) -> str:
    """Projects, `project` being the alias (or table name) of the project row."""
    if scope.everything:
        return "true"
    if scope.vendor is not None:
        return f"{project}.vendor_siren = :scope_vendor"
    return f"{project}.region_code = :scope_region"


def pilots_sql(scope: Scope, *, finess: str, region: str) -> str:
    """Pilots (applications, their payments and usage): `region` is the pilot's region (see
    the module docstring: no following of projects elsewhere)."""
    if scope.everything:
        return "true"
    if scope.vendor is not None:
        return _in_projects(finess, "scope_p.vendor_siren = :scope_vendor")
    return f"{region} = :scope_region"


def _clause(sql: str, scope: Scope) -> ColumnElement[bool]:
    params = {k: v for k, v in scope.params.items() if f":{k}" in sql}
    # A text clause stands where SQLAlchemy takes a boolean expression.
    return text(sql).bindparams(**params)  # type: ignore[return-value]


def establishment_visible(principal: Principal) -> ColumnElement[bool]:
    """The establishments rule over the `establishment` table, for SQLAlchemy queries."""
    scope = Scope.of(principal)
    sql = establishments_sql(
        scope, finess="establishment.finess", region="establishment.region_code"
    )
    return _clause(sql, scope)


def project_visible(principal: Principal) -> ColumnElement[bool]:
    """The projects rule over the `project` table, for SQLAlchemy queries."""
    scope = Scope.of(principal)
    return _clause(projects_sql(scope, project="project"), scope)


def pilot_visible(principal: Principal) -> ColumnElement[bool]:
    """The pilots rule over the `pilot_application` table, for SQLAlchemy queries."""
    scope = Scope.of(principal)
    sql = pilots_sql(
        scope, finess="pilot_application.finess", region="pilot_application.region_code"
    )
    return _clause(sql, scope)


_NAMED = re.compile(r"(?<![:\w]):(scope_vendor|scope_region)\b")


def positional(sql: str, scope: Scope, first: int) -> tuple[str, list[Any]]:
    """The same SQL for asyncpg: the scope's named parameters become `$first`, `$first + 1`…
    (returned in that order, to append to the query's own arguments)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${first + names.index(match.group(1))}"

    converted = _NAMED.sub(number, sql)
    return converted, [scope.params[name] for name in names]
