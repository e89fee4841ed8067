"""Browser-test fixtures: the system's Chromium driven by Playwright (one browser for the
browser tests), and one live server per module (`esms-usage serve` on a loopback port, against a
database of the tests' embedded PostgreSQL built by the migrations)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from app import migrate
from tests.conftest import _create_database

CHROMIUM = Path(os.environ.get("ESMS_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
SERVER = Path(sys.executable).with_name("esms-usage")
NEEDS = (
    f"the browser tests need Chromium at {CHROMIUM} (Debian: apt-get install -y chromium; "
    "or set ESMS_CHROMIUM to another Chromium executable); Playwright's own browser "
    "download is not used"
)


def run_async(coroutine):
    """Run a coroutine to its end from synchronous code: in a thread of its own, since the
    synchronous Playwright keeps an event loop running in this one."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


# Module scope (the browser tests are one module): the synchronous Playwright keeps an event
# loop running while it is open, which the asynchronous tests after it cannot share.
@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not CHROMIUM.exists():
        pytest.skip(NEEDS)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        try:
            yield browser
        finally:
            browser.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, base_url: str, database_url: str, log: Path):
        self.base_url = base_url
        self.database_url = database_url
        self.log = log

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30)


@pytest.fixture(scope="module")
def live_server(pg_server: str, request) -> Iterator[LiveServer]:
    """A migrated database of its own and a real server process on it."""
    if not CHROMIUM.exists():
        pytest.skip(NEEDS)
    name = f"esms_browser_{request.module.__name__.rsplit('.', 1)[-1]}"
    url = run_async(_create_database(pg_server, name))
    run_async(migrate.upgrade(url))
    port = _free_port()
    log = ARTIFACTS / f"{name}.log"
    ARTIFACTS.mkdir(exist_ok=True)
    env = {"DATABASE_URL": url, "ESMS_LOG_LEVEL": "warning", "ESMS_ROLLUP_REFRESH_SECONDS": "0"}
    with serving(port, env, log) as base:
        yield LiveServer(base, url, log)


@contextmanager
def serving(port: int, env: dict[str, str], log: Path) -> Iterator[str]:
    """`esms-usage serve` on a loopback port with `env` added to this process's environment,
    its output in `log`; yields its base URL once /health answers, and stops it after."""
    ARTIFACTS.mkdir(exist_ok=True)
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(SERVER), "serve", "--host", "127.0.0.1", "--port", str(port), "--no-migrate"],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited:\n{log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="session", autouse=True)
def _clean_artifacts() -> None:
    """Screenshots of this run only."""
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS, ignore_errors=True)
