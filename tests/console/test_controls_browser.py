"""In a real browser (Chromium) against a real server: an ARS officer draws the year's control
plan, records a control that finds an overpayment, and sees the amount to recover in the
region home."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.access.principal import Role
from app.access.repository import create_token
from app.db import Database, make_engine
from app.referential.finess import make_finess
from app.referential.geography import departments_of_region
from app.referential.models import Establishment
from tests.conftest import _create_database, _dsn
from tests.factories import valid_siren

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SERVER = Path(sys.executable).with_name("esms-usage")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed")


async def _seed(url: str) -> tuple[str, list[str]]:
    """A funded project of Île-de-France with one establishment per département; the token
    of an ARS officer of the region."""
    from app.projects.models import Project, ProjectEstablishment
    from app.vendors.models import Vendor

    database = Database(make_engine(url, 1))
    try:
        async with database.sessions() as session, session.begin():
            siren = valid_siren(770_001)
            session.add(Vendor(siren=siren, name="Éditeur DUI"))
            numbers = []
            for serial, department in enumerate(departments_of_region("11"), start=1):
                finess = make_finess(department.code, 770_000 + serial)
                numbers.append(finess)
                session.add(
                    Establishment(
                        finess=finess,
                        name=f"EHPAD des Tilleuls {department.code}",
                        legal_entity_finess=make_finess(department.code, 771_000 + serial),
                        department=department.code,
                        region_code="11",
                        category_code="500",
                    )
                )
            await session.flush()
            project = Project(
                reference="IDF-2023-900",
                name="Groupement",
                region_code="11",
                vendor_siren=siren,
                software="DUI",
                funding_case="acquisition",
                submitted_on=date(2023, 3, 1),
            )
            session.add(project)
            await session.flush()
            session.add_all(
                ProjectEstablishment(
                    finess=n, project_id=project.id, funding_case="acquisition", rank=i
                )
                for i, n in enumerate(numbers, start=1)
            )
            token, _ = await create_token(session, Role.ARS, region_code="11", name="Agent")
    finally:
        await database.dispose()
    return token, numbers


def _start(port: int, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [str(SERVER), "serve", "--host", "127.0.0.1", "--port", str(port), "--no-migrate"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@pytest.fixture(scope="module")
async def served(pg_server: str) -> AsyncIterator[tuple[str, str, list[str]]]:
    """`esms-usage serve` on loopback over its own migrated database, stopped at the end."""
    url = await _create_database(pg_server, "esms_controls_browser")
    from app import migrate

    await migrate.upgrade(url)
    token, numbers = await _seed(url)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": _dsn(url, "esms_controls_browser"),
        "ESMS_LOG_LEVEL": "warning",
        "ESMS_ROLLUP_REFRESH_SECONDS": "0",
    }
    server = _start(port, env)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=2) as client:
            for _ in range(300):
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None:
                    raise RuntimeError("the server exited")
                await asyncio.sleep(0.1)
        yield base, token, numbers
    finally:
        _stop(server)
        conn = await asyncpg.connect(_dsn(pg_server, "postgres"))
        try:
            await conn.execute('DROP DATABASE IF EXISTS "esms_controls_browser" WITH (FORCE)')
        finally:
            await conn.close()


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield browser
        finally:
            await browser.close()


async def test_an_ars_officer_draws_the_plan_records_an_overpayment_and_sees_it_to_recover(
    served, chromium
):
    base, token, numbers = served
    context = await chromium.new_context(base_url=base, locale="fr-FR")
    page = await context.new_page()
    # Nothing refused on the way: no policy violation, no failed load (the browser's own
    # favicon request aside: the console has none).
    errors: list[str] = []
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    try:
        await page.goto("/console/connexion")
        await page.fill("#jeton", token)
        await page.click("button[type=submit]")
        await page.wait_for_url("**/console/regions/11")
        funding = page.locator("table.figures-table tbody td").nth(4)
        assert (await funding.inner_text()).replace("\u202f", " ") == "0,00\u00a0€"

        await page.click("text=Plan de contrôle de l'année")
        await page.select_option("#p-methode", "random")
        await page.fill("#p-graine", "20250101")
        await page.click("text=Tirer le plan")
        await page.wait_for_selector("text=identique")
        rows = page.locator("table tbody tr")
        assert await rows.count() == len(numbers)  # one per département of Île-de-France

        await rows.first.locator("text=Enregistrer un contrôle").click()
        drawn = await page.input_value("#c-finess")
        assert drawn in numbers
        await page.select_option("#c-nature", "on_site")
        await page.fill("#c-constats", "Matériel facturé mais absent de l'établissement")
        await page.check("#c-non")
        await page.fill("#c-indu", "2 500,00")
        await page.click("text=Enregistrer le contrôle")
        await page.wait_for_selector("text=À notifier")
        assert "2\u202f500,00\u00a0€" in await page.inner_text("dl.facts")

        await page.fill("#r-preuve", "Courrier AR 2025-117")
        await page.click("text=Enregistrer l'étape")
        await page.wait_for_selector("text=Notifié, en cours de récupération")

        await page.click("text=Ma région")
        await page.wait_for_url("**/console/regions/11")
        funding = page.locator("table.figures-table tbody td").nth(4)
        assert await funding.inner_text() == "2\u202f500,00\u00a0€"
        assert errors == []
    finally:
        await context.close()
