"""What the benchmarks share: a throw-away migrated PostgreSQL, a real server process,
percentiles and peak memory."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx

from app import migrate
from app.db import APP_ROLE, as_role

ROOT = Path(__file__).resolve().parents[2]
SERVER = Path(sys.executable).with_name("esms-usage")


def dsn(server_url: str, database: str) -> str:
    """A plain postgresql:// URL (asyncpg, DATABASE_URL) for `database` on the server."""
    return server_url.replace("postgresql+asyncpg://", "postgresql://").replace(
        "/postgres?", f"/{database}?"
    )


async def migrated_database(server_url: str, name: str) -> str:
    """A new database on the embedded server, built by the migrations; its plain URL."""
    conn = await asyncpg.connect(dsn(server_url, "postgres"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = dsn(server_url, name)
    await migrate.upgrade(url.replace("postgresql://", "postgresql+asyncpg://"))
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, port: int, log: Path, *extra: str) -> subprocess.Popen:
    """`esms-usage serve` on the database of `url`, connected as the application role (as in
    production: migrations are the owner's, and already applied)."""
    env = {**os.environ, "DATABASE_URL": as_role(url, APP_ROLE), "ESMS_LOG_LEVEL": "warning"}
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(SERVER), "serve", "--host", "127.0.0.1", "--port", str(port), *extra],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
        )


def log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


async def wait_healthy(base_url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited ({server.returncode}):\n{log_tail(log)}")
            try:
                if (await client.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"the server did not answer /health within 60 s:\n{log_tail(log)}")


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def peak_memory_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc status")


def percentile(samples: list[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1) of a non-empty sample."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
    return ordered[rank - 1]


def run_in_workdir(run, args) -> int:
    """Print what `run(args, workdir)` returns, with a throw-away directory for its embedded
    PostgreSQL; the server is stopped and the directory deleted whatever happens."""
    from app.db import stop_embedded_postgres

    workdir = Path(tempfile.mkdtemp(prefix="esms-bench-"))
    try:
        print(asyncio.run(run(args, workdir)))
    finally:
        stop_embedded_postgres()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0
