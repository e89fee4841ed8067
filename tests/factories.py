"""Small factories for test data, written straight to the test's transaction."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession
from stdnum import luhn

from app.access import repository as tokens
from app.access.principal import Role
from app.projects.models import Project, ProjectEstablishment, ProjectEvent
from app.referential.finess import make_finess
from app.referential.geography import DEPARTMENTS
from app.referential.models import Establishment
from app.vendors.models import Vendor

_serials = itertools.count(1000)


def valid_siren(n: int) -> str:
    body = f"{n:08d}"
    return body + luhn.calc_check_digit(body)


class Factory:
    def __init__(self, session: AsyncSession, client: httpx.AsyncClient):
        self.session = session
        self.client = client

    async def vendor(self, name: str = "Éditeur DUI", siren: str | None = None) -> str:
        siren = siren or valid_siren(next(_serials))
        self.session.add(Vendor(siren=siren, name=name))
        await self.session.flush()
        return siren

    async def establishment(
        self,
        department: str = "75",
        *,
        legal_entity: str | None = None,
        category: str = "500",
        name: str | None = None,
    ) -> str:
        finess = make_finess(department, next(_serials))
        self.session.add(
            Establishment(
                finess=finess,
                name=name or f"EHPAD {finess}",
                legal_entity_finess=legal_entity or make_finess(department, next(_serials)),
                department=department,
                region_code=DEPARTMENTS[department].region_code,
                category_code=category,
                category_label="EHPAD" if category == "500" else None,
            )
        )
        await self.session.flush()
        return finess

    async def project(
        self,
        vendor: str,
        establishments: list[str],
        region: str = "11",
        funding_case: str = "acquisition",
        **fields: Any,
    ) -> int:
        project = Project(
            reference=fields.pop("reference", f"P-{next(_serials)}"),
            name=fields.pop("name", "Projet DUI"),
            region_code=region,
            vendor_siren=vendor,
            software="DUI Soft",
            funding_case=funding_case,
            submitted_on=fields.pop("submitted_on", date(2023, 3, 1)),
            **fields,
        )
        self.session.add(project)
        await self.session.flush()
        for rank, finess in enumerate(establishments, start=1):
            self.session.add(
                ProjectEstablishment(
                    finess=finess, project_id=project.id, funding_case=funding_case, rank=rank
                )
            )
        await self.session.flush()
        return project.id

    async def paid(self, project_id: int, amount: str, on: date = date(2023, 6, 1)) -> None:
        """The ARS paid the project's advance of `amount` euros."""
        self.session.add(
            ProjectEvent(
                project_id=project_id, type="advance_paid", date=on, amount=Decimal(amount)
            )
        )
        await self.session.flush()

    async def token(
        self, role: str, *, vendor: str | None = None, region: str | None = None, **kw: Any
    ) -> dict[str, str]:
        token, _ = await tokens.create_token(
            self.session, Role(role), vendor_siren=vendor, region_code=region, **kw
        )
        await self.session.flush()
        return {"Authorization": f"Bearer {token}"}

    async def vendor_with_establishments(
        self, count: int = 1, department: str = "75", region: str = "11"
    ) -> tuple[str, list[str], dict[str, str]]:
        """A vendor, `count` establishments in one of its projects, and its token headers."""
        vendor = await self.vendor()
        numbers = [await self.establishment(department) for _ in range(count)]
        await self.project(vendor, numbers, region=region)
        return vendor, numbers, await self.token("vendor", vendor=vendor)

    async def pilot_application(
        self,
        finess: str | None = None,
        *,
        department: str = "75",
        status: str = "applied",
        legal_entity: str | None = None,
        category: str = "500",
        domain: str | None = None,
        applied_on: date = date(2023, 9, 15),
        decided_on: date | None = None,
        **fields: Any,
    ) -> int:
        """A Mon espace santé pilot application written straight to the database, for an
        existing establishment or a new one; `selected` or `withdrawn` makes it a pilot."""
        # Imported here so that the pilot helpers stay in one block at the end of the file.
        from app.campaigns import current_campaign
        from app.pilots.models import PilotApplication
        from app.pilots.rules import domain_of_category

        campaign = current_campaign()
        finess = finess or await self.establishment(
            department, legal_entity=legal_entity, category=category
        )
        establishment = await self.session.get(Establishment, finess)
        assert establishment is not None
        derived = domain_of_category(establishment.category_code)
        row = PilotApplication(
            campaign=str(campaign.year),
            finess=finess,
            legal_entity_finess=establishment.legal_entity_finess,
            region_code=establishment.region_code,
            domain=domain or (derived.value if derived else "pa_residential"),
            technical_maturity=fields.pop("technical_maturity", "segur_dui_installing"),
            dmp_connection=fields.pop("dmp_connection", "effective"),
            mssante_connection=fields.pop("mssante_connection", "planned"),
            applied_on=applied_on,
            status=status,
            decided_on=decided_on or (None if status == "applied" else date(2023, 11, 20)),
            amount=campaign.pilots.amount_per_pilot
            if status in ("selected", "withdrawn")
            else None,
            **fields,
        )
        self.session.add(row)
        await self.session.flush()
        return row.id
