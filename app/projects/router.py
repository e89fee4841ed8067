"""HTTP endpoints of projects: registry and funding."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from app.access.dependencies import CurrentPrincipal
from app.db import SessionDep
from app.errors import NotFound
from app.projects import repository, service
from app.projects.models import Project
from app.projects.schemas import (
    Funding,
    IssueOut,
    ProjectCreate,
    ProjectEstablishmentRead,
    ProjectRead,
    ProjectSummary,
)
from app.schemas import Page

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])
_PROBLEM = {"content": {"application/problem+json": {}}}


def funding_of(project: Project) -> Funding | None:
    if project.total is None:
        return None
    return Funding(
        usage=project.usage,
        software=project.software_amount,
        hardware=project.hardware,
        amoa=project.amoa,
        total=project.total,
        advance=project.advance,
        balance=project.balance,
    )


async def project_read(session, project: Project) -> ProjectRead:
    lines = await repository.project_lines(session, project.id)
    return ProjectRead(
        id=project.id,
        reference=project.reference,
        name=project.name,
        region=project.region_code,
        vendor_siren=project.vendor_siren,
        software=project.software,
        funding_case=project.funding_case,
        submitted_on=project.submitted_on,
        guichet=project.guichet,
        amoa_requested=project.amoa_requested,
        funding=funding_of(project),
        warnings=[IssueOut(**w) for w in project.warnings or []],
        created_at=project.created_at,
        establishments=[
            ProjectEstablishmentRead(
                finess=line.finess,
                name=establishment.name,
                legal_entity_finess=establishment.legal_entity_finess,
                region=establishment.region_code,
                funding_case=line.funding_case,
                eligible_hours_share=line.eligible_hours_share,
                hardware_quote=line.hardware_quote,
                rank=line.rank,
                usage=line.usage,
                software=line.software_amount,
                hardware=line.hardware,
            )
            for line, establishment in lines
        ],
    )


@router.post(
    "",
    status_code=201,
    response_model=ProjectRead,
    summary="Register a funding request (project) and compute its funding",
    responses={401: _PROBLEM, 403: _PROBLEM, 409: _PROBLEM, 422: _PROBLEM},
)
async def create_project(
    payload: ProjectCreate, request: Request, session: SessionDep, principal: CurrentPrincipal
) -> ProjectRead:
    """Admissibility errors (annexe 3) refuse the request with 422; warnings (such as a
    project below the minimum size) are returned with the created project."""
    project, _ = await service.create_project(session, principal, payload, request)
    await session.refresh(project)
    return await project_read(session, project)


@router.get(
    "/{project_id}",
    response_model=ProjectRead,
    summary="One project",
    responses={401: _PROBLEM, 404: _PROBLEM},
)
async def get_project(
    project_id: int, session: SessionDep, principal: CurrentPrincipal
) -> ProjectRead:
    project = await repository.visible_project(session, principal, project_id)
    if project is None:
        raise NotFound(f"Project {project_id} not found.")
    return await project_read(session, project)


@router.get(
    "",
    response_model=Page[ProjectSummary],
    summary="Projects of the caller's scope",
    responses={401: _PROBLEM, 422: _PROBLEM},
)
async def list_projects(
    session: SessionDep,
    principal: CurrentPrincipal,
    region: Annotated[str | None, Query(max_length=2)] = None,
    vendor: Annotated[str | None, Query(max_length=9)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[ProjectSummary]:
    rows, total = await repository.list_projects(
        session, principal, region=region, vendor=vendor, limit=limit, offset=offset
    )
    return Page[ProjectSummary](
        items=[
            ProjectSummary(
                id=p.id,
                reference=p.reference,
                name=p.name,
                region=p.region_code,
                vendor_siren=p.vendor_siren,
                funding_case=p.funding_case,
                establishment_count=n,
                total=p.total,
            )
            for p, n in rows
        ],
        total=total,
        limit=limit,
        offset=offset,
    )
