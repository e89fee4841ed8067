"""The series bounds kept in latest_measurement, and the context ingestion reads from them,
stay what the stored measurements say, whatever mix of pushes, revisions, gaps filled and
withdrawals reaches the API (a seeded random sequence, checked after every step)."""

from __future__ import annotations

import random

from app.access.principal import Principal, Role
from app.clock import Month
from app.db import raw_connection
from app.extracts import repository
from app.extracts.models import COUNT_FIELDS
from tests.test_extracts import COUNTS, extract

MONTHS = [Month(2024, 1).plus(i) for i in range(15)]
OTHER_COUNTS = {**COUNTS, "accompanied_persons": 120, "active_files": 90}


async def stored(session, numbers: list[str]) -> dict[str, list]:
    conn = await raw_connection(session)
    rows = await conn.fetch(
        f"""SELECT finess, period_start, period_end, revision, withdrawn,
                   locked_by_event_id IS NOT NULL AS locked, {", ".join(COUNT_FIELDS)}
            FROM measurement WHERE finess = ANY($1::text[]) ORDER BY period_start""",
        numbers,
    )
    series: dict[str, list] = {n: [] for n in numbers}
    for row in rows:
        series[row["finess"]].append(row)
    return series


def expected_latest(series: list) -> tuple | None:
    """(period_start, period_end, revision, accompanied_persons, first_start, first_end,
    newest_start) as derived from the stored periods; None when nothing is active."""
    active = [r for r in series if not r["withdrawn"]]
    if not active:
        return None
    newest, first = active[-1], active[0]
    return (
        newest["period_start"],
        newest["period_end"],
        newest["revision"],
        newest["accompanied_persons"],
        first["period_start"],
        first["period_end"],
        max(r["period_start"] for r in series),
    )


def expected_context(series: list, start: Month) -> tuple:
    active = [r for r in series if not r["withdrawn"]]
    first = (
        (Month.of(active[0]["period_start"]), Month.of(active[0]["period_end"])) if active else None
    )
    current = next((r for r in series if r["period_start"] == start.first_day), None)
    before = [r for r in active if r["period_start"] < start.first_day]
    return (
        first,
        None
        if current is None
        else (
            Month.of(current["period_end"]),
            current["revision"],
            current["withdrawn"],
            current["locked"],
            tuple(current[c] for c in COUNT_FIELDS),
        ),
        None
        if not before
        else (
            Month.of(before[-1]["period_start"]),
            Month.of(before[-1]["period_end"]),
            before[-1]["accompanied_persons"],
        ),
    )


def context_seen(ctx) -> tuple:
    current = ctx.current
    return (
        ctx.first_window,
        None
        if current is None
        else (current.end, current.revision, current.withdrawn, current.locked, current.counts),
        None
        if ctx.previous is None
        else (ctx.previous.start, ctx.previous.end, ctx.previous.accompanied_persons),
    )


async def check(session, vendor: str, numbers: list[str], step: int) -> None:
    series = await stored(session, numbers)
    conn = await raw_connection(session)
    latest = {
        r["finess"]: tuple(r)[1:]
        for r in await conn.fetch(
            """SELECT finess, period_start, period_end, revision, accompanied_persons,
                      first_start, first_end, newest_start
               FROM latest_measurement WHERE finess = ANY($1::text[])""",
            numbers,
        )
    }
    for finess in numbers:
        assert latest.get(finess) == expected_latest(series[finess]), (step, finess)

    probes = [(finess, month) for finess in numbers for month in MONTHS]
    contexts = await repository.load_contexts(
        session,
        list(range(len(probes))),
        [finess for finess, _ in probes],
        [month.first_day for _, month in probes],
        Principal(None, Role.VENDOR, vendor_siren=vendor),
    )
    for index, (finess, month) in enumerate(probes):
        assert context_seen(contexts[index]) == expected_context(series[finess], month), (
            step,
            finess,
            str(month),
        )


async def test_bounds_and_contexts_follow_any_sequence_of_writes(client, factory, session):
    vendor, numbers, headers = await factory.vendor_with_establishments(3)
    rng = random.Random(20261123)
    outcomes: set[str] = set()
    withdrawals = 0
    for step in range(90):
        if rng.random() < 0.25:
            series = await stored(session, numbers)
            candidates = [r for rows in series.values() for r in rows if not r["withdrawn"]]
            if candidates:
                row = rng.choice(candidates)
                answer = await client.post(
                    "/api/v1/extracts/withdrawals",
                    json={
                        "finess": row["finess"],
                        "period_start": str(Month.of(row["period_start"])),
                        "period_end": str(Month.of(row["period_end"])),
                    },
                    headers=headers,
                )
                assert answer.status_code in (201, 409), answer.text
                withdrawals += answer.status_code == 201
        else:
            rows = []
            for _ in range(rng.randint(1, 4)):
                start = rng.choice(MONTHS[:-2])
                end = start.plus(2 if rng.random() < 0.35 else 0)
                counts = OTHER_COUNTS if rng.random() < 0.3 else COUNTS
                rows.append({**extract(rng.choice(numbers), str(start), str(end)), **counts})
            answer = await client.post("/api/v1/extracts", json={"extracts": rows}, headers=headers)
            assert answer.status_code == 200, answer.text
            outcomes.update(r["outcome"] for r in answer.json()["results"])
        await check(session, vendor, numbers, step)
    # The sequence went through every kind of write.
    assert {"created", "revised", "unchanged", "rejected"} <= outcomes
    assert withdrawals >= 3


async def test_periods_withdrawn_whole_still_count_once_the_series_starts_again(
    client, factory, session
):
    """Every period withdrawn, then the first window sent again: the later withdrawn periods
    are still stored, so sending one of them again is a revision of it, not a new period."""
    vendor, numbers, headers = await factory.vendor_with_establishments(1)
    (finess,) = numbers
    rows = [
        extract(finess, "2024-01", "2024-03"),
        *(extract(finess, m, m) for m in ("2024-04", "2024-05")),
    ]
    answer = await client.post("/api/v1/extracts", json={"extracts": rows}, headers=headers)
    assert answer.json()["counts"]["created"] == 3
    for start, end in (("2024-05", "2024-05"), ("2024-04", "2024-04"), ("2024-01", "2024-03")):
        withdrawn = await client.post(
            "/api/v1/extracts/withdrawals",
            json={"finess": finess, "period_start": start, "period_end": end},
            headers=headers,
        )
        assert withdrawn.status_code == 201, withdrawn.text
    again = await client.post("/api/v1/extracts", json={"extracts": rows[:1]}, headers=headers)
    assert [(r["outcome"], r["revision"]) for r in again.json()["results"]] == [("revised", 3)]
    await check(session, vendor, numbers, step=0)
    april = await client.post(
        "/api/v1/extracts", json={"extracts": rows[1:2]}, headers=headers, params={"dry_run": True}
    )
    assert [(r["outcome"], r["revision"]) for r in april.json()["results"]] == [("revised", 3)]
