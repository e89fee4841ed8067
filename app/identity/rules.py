"""Who may give or withdraw which grant (pure rules, SPEC §8).

The national team grants every role. An ARS may grant and withdraw `ars` and `grades` for
its own region only: the national team cannot vouch for each regional officer or GRADeS
analyst, the agency knows its staff, and each such grant lands in the region's audit trail
where the national team sees it and can withdraw it. Nobody grants to themselves, so that
every person's access was decided by someone else.
"""

from __future__ import annotations

from app.access.principal import Principal, Role

REGIONAL_ROLES = (Role.ARS, Role.GRADES)


def refusal_to_grant(
    granter: Principal, person_id: int, role: Role, region_code: str | None
) -> str | None:
    """Why `granter` may not give (or withdraw) this grant; None when it may."""
    if granter.person is not None and granter.person.id == person_id:
        return "nobody grants or withdraws their own access; ask the national team"
    if granter.role is Role.NATIONAL:
        return None
    if granter.role is Role.ARS:
        if role not in REGIONAL_ROLES:
            return f"an ARS grants only ars and grades access, not {role.value}"
        if region_code != granter.region_code:
            return f"an ARS grants access to its own region ({granter.region_code}) only"
        return None
    return "only the national team and the ARS grant access"


def sees_person(viewer: Principal, active_grant_region: str | None, has_active_grant: bool) -> bool:
    """The national team sees everyone; an ARS sees the people of its region and those who
    have no access yet (whom it may be asked to let in)."""
    if viewer.role is Role.NATIONAL:
        return True
    if viewer.role is Role.ARS:
        return not has_active_grant or active_grant_region == viewer.region_code
    return False
