"""A realistic demo dataset: synthetic referential, vendors, projects in every region with
their funding and events, and monthly extracts whose usage ramps up like a real deployment.

Some establishments never reach a target, some stop reporting, some send corrections. The
extracts follow the ingestion rules (a 3-month first window, then one month at a time) and are
written set-based (COPY), so the national scale (40 000 establishments, 36 months) loads in
about a minute.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import clock
from app.access.principal import COMMAND_LINE, Role
from app.access.repository import create_token
from app.audit import service as audit
from app.campaigns import current_campaign
from app.clock import Month
from app.dashboards import rollup
from app.db import Database, raw_connection
from app.extracts.models import COUNT_FIELDS, REVISION_FIELDS
from app.extracts.repository import rebuild_latest
from app.projects import standings as project_standings
from app.projects.funding import EstablishmentLine, compute_funding, guichet
from app.projects.models import Project, ProjectEstablishment, ProjectEvent
from app.referential.finess_file import synthetic_records
from app.referential.importer import import_records
from app.referential.models import Establishment
from app.vendors.models import Vendor

VENDOR_NAMES = (
    "Arcadis Santé Logiciels", "Médisoc Informatique", "Tilia DUI", "Horizon Médico-Social",
    "Kérys Solutions", "Aubépine Systèmes", "Datamédic Sud", "Ormeau Technologies",
    "Socle Numérique Social", "Véga Accompagnement", "Nautilus DUI", "Cèdre Informatique",
)  # fmt: skip
PROJECT_SIZE = 18  # about 2 000 projects at the national scale


@dataclass(frozen=True)
class DemoSize:
    establishments: int
    months: int


SMALL = DemoSize(establishments=600, months=24)
NATIONAL = DemoSize(establishments=40_000, months=36)


def _siren(rng: random.Random) -> str:
    from stdnum import luhn

    body = f"{rng.randrange(10_000_000, 99_999_999)}"
    return body + luhn.calc_check_digit(body)


@dataclass
class _Profile:
    """How one establishment's usage evolves: ramp-up, plateau, gaps, corrections."""

    accompanied: int
    start: int  # months after the series start when it begins reporting
    maturity: int  # months to reach the plateau
    plateau: dict[str, float]  # share reached per rate
    stops_after: int | None
    corrected: int | None


def _profile(rng: random.Random, months: int, category: str | None) -> _Profile:
    size = {"500": 85, "354": 55, "183": 60, "246": 70, "460": 120}.get(category or "", 45)
    plateau = {
        "mssante": rng.uniform(0.75, 1.6),
        "dmp": rng.uniform(0.72, 0.95),
        "active": rng.uniform(0.92, 1.0),
        "care": rng.uniform(0.91, 1.0),
        "agenda": rng.uniform(0.91, 1.0),
    }
    if rng.random() < 0.12:  # never reaches one of its targets
        key = rng.choice(list(plateau))
        plateau[key] = (
            rng.uniform(0.45, 0.68) if key in ("mssante", "dmp") else rng.uniform(0.6, 0.88)
        )
    return _Profile(
        accompanied=max(8, int(rng.gauss(size, size * 0.25))),
        start=rng.randrange(0, max(1, months // 4)),
        maturity=rng.randrange(4, 16),
        plateau=plateau,
        stops_after=rng.randrange(months // 2, months) if rng.random() < 0.05 else None,
        corrected=rng.randrange(0, months) if rng.random() < 0.04 else None,
    )


def _counts(
    rng: random.Random, profile: _Profile, step: int, window: int
) -> tuple[int | None, ...]:
    ramp = min(1.0, 0.3 + 0.7 * step / profile.maturity)
    accompanied = max(1, int(profile.accompanied * rng.uniform(0.97, 1.03)) + (window - 1) * 2)
    eligible = max(1, int(accompanied * rng.uniform(0.9, 1.0)))
    share = {k: min(v * ramp, 1.0 if k != "mssante" else 3.0) for k, v in profile.plateau.items()}
    active = min(accompanied, round(accompanied * share["active"]))
    return (
        accompanied,
        eligible,
        round(eligible * share["mssante"] * window),
        min(eligible, round(eligible * share["dmp"])),
        active,
        min(active, round(active * share["care"])),
        min(active, round(active * share["agenda"])),
        rng.randrange(0, 30) if rng.random() < 0.3 else None,
        rng.randrange(0, 10) if rng.random() < 0.15 else None,
    )


def _series(rng: random.Random, profile: _Profile, first: Month, months: int):
    """(start, end, first_window, counts) of every period an establishment reports."""
    begin = first.plus(profile.start)
    last = first.plus(months - 1)
    if begin.plus(2) > last:
        return
    yield begin, begin.plus(2), True, _counts(rng, profile, 2, 3)
    month, step = begin.plus(3), 3
    while month <= last:
        if profile.stops_after is not None and step > profile.stops_after:
            return
        if rng.random() >= 0.01:  # an occasional missing month
            yield month, month, False, _counts(rng, profile, step, 1)
        month, step = month.plus(1), step + 1


async def load_demo(
    database: Database, national: bool = False, seed: int = 7, size: DemoSize | None = None
) -> str:
    """Load the dataset into an empty database and return a summary with demo tokens."""
    size = size or (NATIONAL if national else SMALL)
    rng = random.Random(seed)
    campaign = current_campaign()
    async with database.sessions() as session:
        if (await session.execute(select(Project.id).limit(1))).first() is not None:
            return "esms-usage: demo data already loaded"

    report = await import_records(database, synthetic_records(size.establishments, seed))
    async with database.sessions() as session, session.begin():
        vendors = [_siren(rng) for _ in VENDOR_NAMES]
        session.add_all(Vendor(siren=s, name=n) for s, n in zip(vendors, VENDOR_NAMES, strict=True))
        await session.flush()
        rows = (
            (
                await session.execute(
                    select(Establishment).order_by(
                        Establishment.region_code,
                        Establishment.legal_entity_finess,
                        Establishment.finess,
                    )
                )
            )
            .scalars()
            .all()
        )
        sizes: dict[str, int] = defaultdict(int)
        for row in rows:
            sizes[row.legal_entity_finess] += 1

        by_region: dict[str, list[Establishment]] = defaultdict(list)
        for row in rows:
            by_region[row.region_code].append(row)
        project_rows: list[dict[str, Any]] = []
        lines: list[list[dict[str, Any]]] = []
        project_vendor: list[str] = []
        for region, members in sorted(by_region.items()):
            # About one establishment in ten is not (yet) part of a funded project.
            members = [m for m in members if rng.random() < 0.9]
            for index in range(0, len(members), PROJECT_SIZE):
                group = members[index : index + PROJECT_SIZE]
                case = rng.choices(["acquisition", "upgrade", "generalisation"], [7, 2, 1])[0]
                funding = compute_funding(
                    [EstablishmentLine(m.finess, m.legal_entity_finess) for m in group],
                    funding_case=case,
                    region=region,
                    legal_entity_sizes=sizes,
                    amoa_requested=False,
                    campaign=campaign,
                )
                vendor = rng.choice(vendors)
                project_vendor.append(vendor)
                project_rows.append(
                    {
                        "reference": f"{region}-2023-{len(project_rows) + 1:05d}",
                        "name": f"Déploiement DUI {group[0].name[:40]}",
                        "region_code": region,
                        "vendor_siren": vendor,
                        "software": f"{VENDOR_NAMES[vendors.index(vendor)]} DUI",
                        "funding_case": case,
                        "submitted_on": date(2023, 2, 1) + timedelta(days=rng.randrange(0, 200)),
                        "campaign": str(campaign.year),
                        "guichet": guichet([region] * len(group), campaign).value,
                        "amoa_requested": False,
                        "usage": funding.usage,
                        "software_amount": funding.software,
                        "hardware": funding.hardware,
                        "amoa": funding.amoa,
                        "total": funding.total,
                        "advance": funding.advance,
                        "balance": funding.balance,
                        "warnings": [],
                    }
                )
                lines.append(
                    [
                        {
                            "finess": f.finess,
                            "funding_case": f.funding_case.value,
                            "rank": f.rank,
                            "usage": f.usage,
                            "software_amount": f.software,
                            "hardware": f.hardware,
                        }
                        for f in funding.establishments
                    ]
                )
        ids = (
            (
                await session.execute(
                    insert(Project).returning(Project.id, sort_by_parameter_order=True),
                    project_rows,
                )
            )
            .scalars()
            .all()
        )
        await session.execute(
            insert(ProjectEstablishment),
            [
                line | {"project_id": pid}
                for pid, group in zip(ids, lines, strict=True)
                for line in group
            ],
        )
        await session.execute(insert(ProjectEvent), _events(rng, ids, project_rows))

        first = Month.current().plus(-size.months)
        category = {row.finess: row.category_code for row in rows}
        written = await _write_extracts(
            session,
            rng,
            [
                (line["finess"], vendor)
                for vendor, group in zip(project_vendor, lines, strict=True)
                for line in group
            ],
            category,
            first,
            size.months,
        )
        decided = await _decide_balances(session, rng, ids)
        await audit.record(
            session,
            COMMAND_LINE,
            "demo.load",
            "dataset",
            str(seed),
            detail={"projects": len(ids), "measurements": written},
        )
        national_token = await create_token(session, Role.NATIONAL, name="démo national")
        ars = await create_token(session, Role.ARS, region_code="11", name="démo ARS IDF")
        grades = await create_token(session, Role.GRADES, region_code="11", name="démo GRADeS IDF")
        vendor_token = await create_token(
            session, Role.VENDOR, vendor_siren=vendors[0], name=f"démo {VENDOR_NAMES[0]}"
        )
    await rollup.refresh_stale(database)  # the dashboards' rollups, ready for the first read
    async with database.sessions() as session, session.begin():
        await project_standings.refresh(session, clock.today())  # the projects' standings too
    return "\n".join(
        [
            f"esms-usage: demo loaded: {report.created} establishments, {len(ids)} projects, "
            f"{written} monthly measurements over {size.months} months, "
            f"{decided} balance decisions",
            f"  national token: {national_token[0]}",
            f"  ARS Île-de-France token: {ars[0]}",
            f"  GRADeS Île-de-France token: {grades[0]}",
            f"  vendor {VENDOR_NAMES[0]} ({vendors[0]}) token: {vendor_token[0]}",
        ]
    )


def _events(
    rng: random.Random, ids: Sequence[int], projects: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    events = []
    for pid, project in zip(ids, projects, strict=True):
        submitted = project["submitted_on"]
        notified = submitted + timedelta(days=rng.randrange(30, 300))
        if notified >= date(2023, 12, 30) and rng.random() < 0.8:
            notified = date(2023, 12, 15)
        convention = notified + timedelta(days=rng.randrange(15, 60))
        events += [
            {"project_id": pid, "type": "notified", "date": notified},
            {"project_id": pid, "type": "convention_signed", "date": convention},
            {"project_id": pid, "type": "started", "date": convention + timedelta(days=10)},
            {
                "project_id": pid,
                "type": "advance_paid",
                "date": convention + timedelta(days=30),
                "amount": project["advance"],
            },
        ]
        if rng.random() < 0.35:
            declared = (project["total"] * Decimal(rng.uniform(0.7, 1.05))).quantize(
                Decimal("0.01")
            )
            events.append(
                {
                    "project_id": pid,
                    "type": "expense_statement",
                    "date": convention + timedelta(days=rng.randrange(300, 600)),
                    "amount": declared,
                }
            )
    return events


async def _decide_balances(session: AsyncSession, rng: random.Random, ids: Sequence[int]) -> int:
    """Half of the projects that qualify get their balance decided (and most of them paid)."""
    from app.projects.payments import standings
    from app.projects.repository import lock_latest_measurements

    projects = (await session.execute(select(Project).where(Project.id.in_(ids)))).scalars().all()
    decided = 0
    today = Month.current().first_day
    for standing in await standings(session, list(projects), today):
        if not standing.compliance.qualifies_for_balance or rng.random() < 0.5:
            continue
        pid = standing.project.id
        day = today - timedelta(days=rng.randrange(20, 60))
        event_id = (
            await session.execute(
                insert(ProjectEvent).returning(ProjectEvent.id),
                {
                    "project_id": pid,
                    "type": "balance_decision",
                    "date": day,
                    "amount": standing.compliance.balance_due,
                },
            )
        ).scalar_one()
        await lock_latest_measurements(session, pid, event_id)
        if rng.random() < 0.7:
            await session.execute(
                insert(ProjectEvent),
                {
                    "project_id": pid,
                    "type": "balance_paid",
                    "date": day + timedelta(days=15),
                    "amount": standing.compliance.balance_due,
                },
            )
        decided += 1
    return decided


async def _write_extracts(session, rng, members, category, first: Month, months: int) -> int:
    """COPY every establishment's series: the current revision of each period into
    measurement, the revisions it superseded (a corrected month) into extract_revision."""
    conn = await raw_connection(session)
    measurement_rows, revision_rows = [], []
    for finess, vendor in members:
        profile = _profile(rng, months, category.get(finess))
        for start, end, first_window, counts in _series(rng, profile, first, months):
            base = (finess, start.first_day, end.first_day)
            received = end.plus(1).first_day
            revision = 1
            if profile.corrected is not None and start == first.plus(profile.corrected):
                wrong = (counts[0] + 7, *counts[1:])
                revision_rows.append((*base, 1, False, first_window, vendor, "[]", *wrong))
                revision = 2
            measurement_rows.append(
                (*base, revision, False, first_window, vendor, received, "[]", *counts)
            )
    columns = REVISION_FIELDS[:7]  # finess … vendor_siren
    await conn.copy_records_to_table(
        "measurement",
        records=measurement_rows,
        columns=(*columns, "received_at", "warnings", *COUNT_FIELDS),
    )
    await conn.copy_records_to_table(
        "extract_revision", records=revision_rows, columns=(*columns, "warnings", *COUNT_FIELDS)
    )
    await rebuild_latest(conn)
    await conn.execute("ANALYZE measurement; ANALYZE extract_revision; ANALYZE latest_measurement")
    return len(measurement_rows)
