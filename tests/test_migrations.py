"""Migrations that move data keep every revision and its sender: a database filled at the
previous revision of the schema reads the same history after the upgrade, and after a
downgrade."""

from __future__ import annotations

from datetime import date

import asyncpg
import pytest

from app import migrate
from tests.conftest import _create_database, _dsn

COUNTS = "accompanied_persons, eligible_persons, active_files"
# (period_start, revision, withdrawn, token_id, request_id, accompanied_persons) of every
# revision of one establishment: a period revised once, a period withdrawn.
HISTORY = [
    (date(2025, 1, 1), 1, False, 7, "r1", 80),
    (date(2025, 1, 1), 2, False, 8, "r2", 82),
    (date(2025, 4, 1), 1, False, 7, "r1", 81),
    (date(2025, 4, 1), 2, True, 9, "r3", None),
]
FINESS = "750712184"


async def history(conn: asyncpg.Connection, *tables: str) -> list[tuple]:
    union = " UNION ALL ".join(
        f"SELECT period_start, revision, withdrawn, token_id, request_id, accompanied_persons "
        f"FROM {table} WHERE finess = $1"
        for table in tables
    )
    return [tuple(r) for r in await conn.fetch(f"{union} ORDER BY 1, 2", FINESS)]


async def test_0009_keeps_each_revision_once_with_its_sender(pg_server):
    url = await _create_database(pg_server, "esms_migration_0009")
    await migrate.upgrade(url, "0008")
    conn = await asyncpg.connect(_dsn(url, "esms_migration_0009"))
    try:
        for start, revision, withdrawn, token, request, accompanied in HISTORY:
            end = date(2025, 3, 1) if start.month == 1 else start
            counts = (None, None, None) if withdrawn else (accompanied, accompanied, accompanied)
            await conn.execute(
                f"""INSERT INTO extract_revision (finess, period_start, period_end, revision,
                        withdrawn, first_window, vendor_siren, token_id, request_id, warnings,
                        {COUNTS})
                    VALUES ($1, $2, $3, $4, $5, $6, '073100000', $7, $8, '[]', $9, $10, $11)""",
                FINESS,
                start,
                end,
                revision,
                withdrawn,
                start.month == 1,
                token,
                request,
                *counts,
            )
        # measurement as the code of 0008 left it: the latest revision, whose counts a
        # withdrawal kept.
        await conn.execute(
            f"""INSERT INTO measurement (finess, period_start, period_end, revision, withdrawn,
                    first_window, vendor_siren, warnings, {COUNTS})
                VALUES ($1, '2025-01-01', '2025-03-01', 2, false, true, '073100000', '[]',
                        82, 82, 82),
                       ($1, '2025-04-01', '2025-04-01', 2, true, false, '073100000',
                        '[{{"code": "gap"}}]', 81, 81, 81)""",
            FINESS,
        )
        before = await history(conn, "extract_revision")
        assert before == HISTORY

        await migrate.upgrade(url, "0009")
        assert await history(conn, "extract_revision", "measurement") == HISTORY
        assert await history(conn, "extract_revision") == [r for r in HISTORY if r[1] == 1]
        withdrawn = await conn.fetchrow(
            f"SELECT warnings::text, {COUNTS} FROM measurement WHERE period_start = '2025-04-01'"
        )
        assert tuple(withdrawn) == ("[]", None, None, None)

        # A revision written now moves the one it replaces into the history.
        await conn.execute(
            """UPDATE measurement SET revision = 3, token_id = 10, request_id = 'r4',
                   accompanied_persons = 83 WHERE period_start = '2025-01-01'"""
        )
        assert await history(conn, "extract_revision", "measurement") == sorted(
            [*HISTORY, (date(2025, 1, 1), 3, False, 10, "r4", 83)]
        )

        await migrate.downgrade(url, "0008")
        assert await history(conn, "extract_revision") == sorted(
            [*HISTORY, (date(2025, 1, 1), 3, False, 10, "r4", 83)]
        )
    finally:
        await conn.close()


CONTROL_TABLES = [
    "control",
    "control_plan",
    "control_plan_line",
    "control_recovery_event",
    "frozen_revision_attempt",
]


async def test_0014_adds_the_control_tables_and_its_downgrade_removes_them(pg_server):
    url = await _create_database(pg_server, "esms_migration_0014")
    conn = await asyncpg.connect(_dsn(url, "esms_migration_0014"))

    async def tables() -> list[str]:
        rows = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND (tablename LIKE 'control%' OR tablename = 'frozen_revision_attempt') ORDER BY 1"
        )
        return [r["tablename"] for r in rows]

    try:
        await migrate.upgrade(url, "0014")
        assert await tables() == CONTROL_TABLES
        # a control that claims to be compliant while it found money unduly paid is refused
        # by the database too (the check comes before the foreign keys)
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                """INSERT INTO control (region_code, finess, kind, controlled_on, findings,
                       compliant, unduly_paid) VALUES ('11', $1, 'on_site', '2025-01-10',
                       'x', true, 10)""",
                FINESS,
            )
        await migrate.downgrade(url, "0013")
        assert await tables() == []
        await migrate.upgrade(url, "0014")
        assert await tables() == CONTROL_TABLES
    finally:
        await conn.close()


async def test_0016_marks_every_project_and_its_downgrade_leaves_writes_working(pg_server):
    url = await _create_database(pg_server, "esms_migration_0016")
    conn = await asyncpg.connect(_dsn(url, "esms_migration_0016"))

    async def standing_tables() -> list[str]:
        rows = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'project_standing%' ORDER BY 1"
        )
        return [r["tablename"] for r in rows]

    try:
        await migrate.upgrade(url, "0015")
        await conn.execute("INSERT INTO vendor (siren, name) VALUES ('732829320', 'Éditeur')")
        project = await conn.fetchval(
            """INSERT INTO project (reference, name, region_code, vendor_siren, software,
                   funding_case, submitted_on, campaign, amoa_requested, warnings)
               VALUES ('IDF-1', 'Projet', '11', '732829320', 'DUI', 'acquisition',
                   '2023-03-01', '2023', false, '[]') RETURNING id"""
        )
        await migrate.upgrade(url, "0016")
        # a project stored before is marked: the first list computes its standing
        assert await conn.fetchval("SELECT array_agg(project_id) FROM project_standing_stale") == [
            project
        ]
        await conn.execute(
            "INSERT INTO project_event (project_id, type, date) VALUES ($1, 'notified', "
            "'2023-06-01')",
            project,
        )
        assert await conn.fetchval("SELECT count(*) FROM project_standing_stale") == 2

        await migrate.downgrade(url, "0015")
        assert await standing_tables() == []
        await conn.execute(  # no trigger is left behind to write to a table gone
            "INSERT INTO project_event (project_id, type, date) VALUES ($1, 'started', "
            "'2023-07-01')",
            project,
        )
        await migrate.upgrade(url, "0016")
        assert await standing_tables() == ["project_standing", "project_standing_stale"]
    finally:
        await conn.close()
