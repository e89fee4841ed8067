"""Each closed list of words is typed once: the rules, the ORM columns, the API schemas and
the SQL read the same enum."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError
from sqlalchemy import select, text

from app.campaigns import FundingCase
from app.pilots.models import PilotApplication
from app.pilots.vocabulary import ApplicationStatus, Domain
from app.projects.models import Project
from app.projects.vocabulary import BalanceStatus
from app.vocabulary import sql_values


class _Shape(BaseModel):
    status: BalanceStatus


def test_a_vocabulary_is_documented_and_refused_as_its_plain_list_of_words():
    schema = _Shape.model_json_schema()["properties"]["status"]
    assert schema == {"enum": [s.value for s in BalanceStatus], "title": "Status", "type": "string"}
    assert _Shape(status="eligible").status is BalanceStatus.ELIGIBLE
    assert _Shape(status="eligible").model_dump(mode="json") == {"status": "eligible"}
    with pytest.raises(ValidationError, match="Input should be 'no_data', 'in_progress'"):
        _Shape(status="payable")


def test_sql_lists_come_from_the_vocabulary():
    assert sql_values(FundingCase) == "'acquisition', 'upgrade', 'generalisation'"


async def test_orm_columns_read_back_the_vocabulary(session, factory):
    vendor = await factory.vendor()
    project_id = await factory.project(vendor, [await factory.establishment()])
    pilot_id = await factory.pilot_application(status="selected")
    session.expunge_all()
    project = (await session.execute(select(Project).where(Project.id == project_id))).scalar_one()
    pilot = (
        await session.execute(select(PilotApplication).where(PilotApplication.id == pilot_id))
    ).scalar_one()
    assert project.funding_case is FundingCase.ACQUISITION
    assert pilot.status is ApplicationStatus.SELECTED and isinstance(pilot.domain, Domain)
    # Stored as the plain words, which the database itself checks.
    stored = await session.execute(
        text("SELECT status FROM pilot_application WHERE id = :id"), {"id": pilot_id}
    )
    assert stored.scalar_one() == "selected"
