"""The esms-usage command, run as a separate process against a real database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from app.access.principal import hash_token
from app.referential.finess_file import ENCODING
from tests.conftest import _create_database, _dsn

DATA = Path(__file__).resolve().parent / "data"
CLI = str(Path(sys.executable).with_name("esms-usage"))


@pytest.fixture(scope="module")
async def cli_database(pg_server: str) -> str:
    """A database of its own: the command commits for real."""
    url = await _create_database(pg_server, "esms_cli")
    return url.replace("postgresql+asyncpg://", "postgresql://")


def run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )


async def fetch(url: str, query: str, *args):
    conn = await asyncpg.connect(_dsn(url, url.split("/")[3].split("?")[0]))
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def test_token_create_prints_only_the_token(cli_database):
    result = run(
        cli_database, "token", "create", "--role", "ars", "--region", "53", "--name", "ARS"
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n" and token.startswith("esms_")
    rows = await fetch(
        cli_database,
        "SELECT role, region_code FROM access_token WHERE token_hash = $1",
        hash_token(token),
    )
    assert [tuple(r) for r in rows] == [("ars", "53")]
    refused = run(cli_database, "token", "create", "--role", "vendor")
    assert refused.returncode != 0 and refused.stdout == ""
    assert "vendor_siren" in refused.stderr


async def test_finess_import_of_the_official_format(cli_database):
    result = run(cli_database, "finess", "import", str(DATA / "finess_sample.csv"))
    assert result.returncode == 0, result.stderr
    assert "9 created" in result.stderr and "3 refused" in result.stderr
    assert "line 9" in result.stderr and "line 13" in result.stderr
    rows = await fetch(
        cli_database,
        "SELECT finess, name, department, region_code, category_code FROM establishment "
        "WHERE finess = ANY($1) ORDER BY finess",
        ["750482135", "970411872", "2A0000123"],
    )
    assert [tuple(r) for r in rows] == [
        ("2A0000123", rows[0]["name"], "2A", "94", "255"),
        ("750482135", "EHPAD Les Érables", "75", "11", "500"),
        ("970411872", rows[2]["name"], "974", "04", "460"),
    ]
    again = run(cli_database, "finess", "import", str(DATA / "finess_sample.csv"))
    assert "0 created" in again.stderr and "9 unchanged" in again.stderr


async def test_finess_synth_writes_the_same_format(cli_database, tmp_path):
    out = tmp_path / "synth.csv"
    result = run(cli_database, "finess", "synth", "--count", "300", "--out", str(out))
    assert result.returncode == 0, result.stderr
    lines = out.read_bytes().decode(ENCODING).splitlines()
    assert lines[0].startswith("finess;etalab;")
    assert sum(1 for line in lines if line.startswith("structureet;")) == 300
    imported = run(cli_database, "finess", "import", str(out))
    assert "300 created" in imported.stderr and "0 refused" in imported.stderr


def test_a_command_prints_only_what_it_is_for(tmp_path):
    """On the embedded server, with XDG_RUNTIME_DIR unset (a container, a cron job): no
    dependency's warning, only the token on stdout and nothing on stderr."""
    unset = ("XDG_RUNTIME_DIR", "DATABASE_URL", "ESMS_RESOLVED_DATABASE_URL", "PYTHONWARNINGS")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env |= {"ESMS_DATA_DIR": str(tmp_path / "data"), "HOME": str(tmp_path)}
    result = subprocess.run(
        [CLI, "token", "create", "--role", "national"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("esms_") and result.stdout.count("\n") == 1
