"""`esms-usage person grant`: the first national team member gets access from the command
line (later grants are made from the console or the API)."""

from __future__ import annotations

import pytest

from tests.identity.conftest import Provider
from tests.test_cli import cli_database as cli_database  # a database of its own
from tests.test_cli import fetch, run

pytestmark = pytest.mark.usefixtures("trusted_provider")


def said(stderr: str) -> str:
    """The error message as one line (the command wraps it in a box)."""
    return " ".join(stderr.replace("│", " ").split())


async def test_the_first_national_member_is_granted_on_the_command_line(
    cli_database, oidc_provider: Provider
):
    args = ["person", "grant", "--issuer", oidc_provider.issuer, "--subject", "chef-projet"]
    granted = run(cli_database, *args, "--role", "national", "--email", "chef@cnsa.fr")
    assert granted.returncode == 0, granted.stderr
    grant_id = int(granted.stdout.strip())
    rows = await fetch(
        cli_database,
        """SELECT g.role, p.email, p.subject FROM access_grant g JOIN person p
           ON p.id = g.person_id WHERE g.id = $1 AND g.withdrawn_at IS NULL""",
        grant_id,
    )
    assert [tuple(r) for r in rows] == [("national", "chef@cnsa.fr", "chef-projet")]
    trail = await fetch(
        cli_database, "SELECT principal FROM audit_event WHERE action = 'grant.create'"
    )
    assert [r["principal"] for r in trail] == ["national:all:None"]

    again = run(cli_database, *args, "--role", "ars", "--region", "53")
    assert again.returncode != 0 and again.stdout == ""
    assert "withdraw it first" in said(again.stderr)
