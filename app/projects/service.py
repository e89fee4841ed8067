"""Registering a project: check it (annexe 3), fund it (annexe 5), store it."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.access.principal import Principal, Role
from app.audit import service as audit
from app.campaigns import current_campaign
from app.errors import Conflict, FieldError, Forbidden, Invalid
from app.projects import repository
from app.projects.funding import (
    EstablishmentLine,
    FundingInputError,
    admissibility,
    compute_funding,
)
from app.projects.models import Project, ProjectEstablishment
from app.projects.schemas import ProjectCreate
from app.referential.finess import InvalidFiness, check_finess
from app.referential.geography import REGIONS
from app.vendors.models import Vendor


async def create_project(
    session: AsyncSession, principal: Principal, payload: ProjectCreate
) -> tuple[Project, list[dict[str, str]]]:
    if principal.role is Role.ARS and payload.region != principal.region_code:
        raise Forbidden(
            f"An ARS token registers projects of its own region ({principal.region_code})."
        )
    campaign = current_campaign()
    errors: list[FieldError] = []
    if payload.region not in REGIONS:
        errors.append(FieldError("region", "unknown_region", f"{payload.region!r} is not a region"))
    if await session.get(Vendor, payload.vendor_siren) is None:
        errors.append(
            FieldError("vendor_siren", "unknown_vendor", f"no vendor {payload.vendor_siren}")
        )
    if await repository.reference_exists(session, payload.reference):
        raise Conflict(
            f"A project with reference {payload.reference!r} already exists.",
            [FieldError("reference", "already_exists", "references are unique")],
        )

    numbers: list[str] = []
    for index, item in enumerate(payload.establishments):
        try:
            numbers.append(check_finess(item.finess))
        except InvalidFiness as exc:
            errors.append(FieldError(f"establishments[{index}].finess", "invalid_finess", str(exc)))
            numbers.append(item.finess)
    known = await repository.establishments(session, numbers)
    for index, number in enumerate(numbers):
        if number not in known and not any(
            e.field.startswith(f"establishments[{index}]") for e in errors
        ):
            errors.append(
                FieldError(
                    f"establishments[{index}].finess",
                    "unknown_finess",
                    f"{number} is not in the FINESS referential",
                )
            )
    if errors:
        raise Invalid("The project cannot be registered.", errors)

    checks = admissibility(
        numbers,
        region=payload.region,
        establishment_regions={n: known[n].region_code for n in numbers},
        submitted_on=payload.submitted_on,
        taken_finess=await repository.taken(session, numbers),
        campaign=campaign,
        joins_funded_group=payload.joins_funded_group,
    )
    if checks.errors:
        raise Invalid(
            "The request is not admissible.",
            list(checks.errors),
        )

    sizes, ej_regions = await repository.legal_entity_sizes(
        session, sorted({known[n].legal_entity_finess for n in numbers})
    )
    try:
        lines = [
            EstablishmentLine(
                finess=number,
                legal_entity_finess=known[number].legal_entity_finess,
                funding_case=item.funding_case,
                eligible_hours_share=item.eligible_hours_share,
                hardware_quote=item.hardware_quote,
            )
            for number, item in zip(numbers, payload.establishments, strict=True)
        ]
        funding = compute_funding(
            lines,
            funding_case=payload.funding_case,
            region=payload.region,
            legal_entity_sizes=sizes,
            amoa_requested=payload.amoa_requested,
            campaign=campaign,
            legal_entity_regions=ej_regions,
        )
    except FundingInputError as exc:
        raise Invalid(str(exc), [FieldError(exc.field, "invalid", str(exc))]) from exc

    warnings = [w.as_dict() for w in checks.warnings]
    project = Project(
        reference=payload.reference,
        name=payload.name,
        region_code=payload.region,
        vendor_siren=payload.vendor_siren,
        software=payload.software,
        funding_case=payload.funding_case,
        submitted_on=payload.submitted_on,
        campaign=str(campaign.year),
        guichet=checks.guichet.value,
        amoa_requested=payload.amoa_requested,
        usage=funding.usage,
        software_amount=funding.software,
        hardware=funding.hardware,
        amoa=funding.amoa,
        total=funding.total,
        advance=funding.advance,
        balance=funding.balance,
        warnings=warnings,
    )
    session.add(project)
    await session.flush()
    by_finess = {item.finess: item for item in funding.establishments}
    for number, item in zip(numbers, payload.establishments, strict=True):
        funded = by_finess[number]
        session.add(
            ProjectEstablishment(
                finess=number,
                project_id=project.id,
                funding_case=funded.funding_case.value,
                eligible_hours_share=item.eligible_hours_share,
                hardware_quote=item.hardware_quote,
                rank=funded.rank,
                usage=funded.usage,
                software_amount=funded.software,
                hardware=funded.hardware,
            )
        )
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        # Another project took one of these establishments since we checked.
        raise Conflict(
            "An establishment of this request was just registered in another project.",
            [FieldError("establishments", "already_in_project", "retry to see which one")],
        ) from exc
    await audit.record(
        session,
        principal,
        "project.create",
        "project",
        str(project.id),
        payload=payload.model_dump(mode="json"),
        region_code=payload.region,
        detail={"reference": payload.reference, "total": str(funding.total)},
    )
    return project, warnings
