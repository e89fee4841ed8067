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
    assert "official format, windows-1252" in result.stderr
    assert "9 created" in result.stderr and "1 skipped, 1 refused" in result.stderr
    assert "skipped by territory: 975: 1" in result.stderr
    assert "line 9: FINESS ET: FINESS 690788121" in result.stderr
    # Not a terminal: plain lines, no progress bar escape codes.
    assert "\x1b[" not in result.stderr
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
    assert "0 created, 0 updated, 9 unchanged" in again.stderr


async def test_finess_import_of_the_real_finess_plus_sample(cli_database):
    sample = DATA / "finess-plus-structures-sample-20260309.json"
    result = run(cli_database, "finess", "import", str(sample))
    assert result.returncode == 0, result.stderr
    assert "27 structures read, 13 establishments of the programme" in result.stderr
    assert "2 closed; 14 skipped, 0 refused" in result.stderr
    assert "skipped by category: 108: 3, 109: 3, 122: 1" in result.stderr
    rows = await fetch(
        cli_database,
        "SELECT finess, closed_on::text FROM establishment WHERE finess = ANY($1) ORDER BY finess",
        ["010790061", "010780906", "010780195"],
    )
    # The clinic (category 365) is not stored; the closed SESSAD is, with its date.
    assert [tuple(r) for r in rows] == [("010780906", None), ("010790061", "1994-09-02")]
    again = run(cli_database, "finess", "import", str(sample))
    assert "0 created, 0 updated, 13 unchanged, 0 closed" in again.stderr


async def test_a_truncated_file_writes_nothing(cli_database, tmp_path):
    raw = (DATA / "finess-plus-structures-sample-20260309.json").read_bytes()
    cut = tmp_path / "structures.json"
    cut.write_bytes(raw[: raw.index(b'"numFinessEge" : "010780906"')])
    before = await fetch(cli_database, "SELECT count(*), max(updated_at) FROM establishment")
    result = run(cli_database, "finess", "import", str(cut))
    assert result.returncode == 1
    assert "nothing was written: pmej[16]: the JSON is truncated" in result.stderr
    after = await fetch(cli_database, "SELECT count(*), max(updated_at) FROM establishment")
    assert after == before


async def test_finess_synth_writes_the_same_format(cli_database, tmp_path):
    out = tmp_path / "synth.csv"
    result = run(cli_database, "finess", "synth", "--count", "300", "--out", str(out))
    assert result.returncode == 0, result.stderr
    lines = out.read_bytes().decode(ENCODING).splitlines()
    assert lines[0].startswith("finess;etalab;")
    assert sum(1 for line in lines if line.startswith("structureet;")) == 300
    imported = run(cli_database, "finess", "import", str(out))
    assert "300 created" in imported.stderr and "0 refused" in imported.stderr


async def test_finess_synth_of_the_finess_plus_flow_imports(cli_database, tmp_path):
    out = tmp_path / "structures.json"
    result = run(
        cli_database, "finess", "synth", "--count", "400", "--out", str(out),
        "--format", "finess-plus", "--other-structures", "0.5", "--seed", "9",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    imported = run(cli_database, "finess", "import", str(out))
    assert imported.returncode == 0, imported.stderr
    assert "finess-plus format, utf-8" in imported.stderr
    assert "400 establishments of the programme: 400 created" in imported.stderr
    refused = run(cli_database, "finess", "synth", "--count", "1", "--out", str(out),
                  "--format", "xml")  # fmt: skip
    assert refused.returncode == 2 and "--format must be one of" in refused.stderr


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
