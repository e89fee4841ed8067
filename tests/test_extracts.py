"""Extract ingestion through the API on the real database: every hard error, every
warning, revisions, the first window, dry run, atomic mode, CSV, scope."""

from __future__ import annotations

from app.clock import Month

COUNTS = {
    "accompanied_persons": 80,
    "eligible_persons": 75,
    "mssante_messages_sent": 60,
    "dmp_fed_persons": 55,
    "active_files": 78,
    "active_files_with_care_project": 72,
    "active_files_with_agenda_event": 74,
}


def extract(finess: str, start: str, end: str, **counts) -> dict:
    return {"finess": finess, "period_start": start, "period_end": end, **COUNTS, **counts}


async def push(client, headers, *rows, **params):
    response = await client.post(
        "/api/v1/extracts", json={"extracts": list(rows)}, headers=headers, params=params
    )
    assert response.status_code == 200, response.text
    return response.json()


def only_errors(summary) -> list[tuple[str, str]]:
    return [(e["field"], e["code"]) for e in summary["results"][0]["errors"]]


async def test_first_window_then_months_are_created(client, factory):
    _, (finess,), headers = await factory.vendor_with_establishments()
    summary = await push(
        client,
        headers,
        extract(finess, "2025-01", "2025-03"),
        extract(finess, "2025-04", "2025-04"),
        extract(finess, "2025-05", "2025-05"),
    )
    assert summary["status"] == "ok"
    assert summary["counts"] == {
        "created": 3,
        "revised": 0,
        "unchanged": 0,
        "rejected": 0,
        "skipped": 0,
    }
    assert [r["revision"] for r in summary["results"]] == [1, 1, 1]

    series = await client.get(f"/api/v1/establishments/{finess}/measurements", headers=headers)
    items = series.json()["items"]
    assert [(i["period_start"], i["period_end"], i["first_window"]) for i in items] == [
        ("2025-01", "2025-03", True),
        ("2025-04", "2025-04", False),
        ("2025-05", "2025-05", False),
    ]


async def test_first_measure_must_cover_three_months(client, factory):
    _, (finess,), headers = await factory.vendor_with_establishments()
    summary = await push(client, headers, extract(finess, "2025-01", "2025-01"))
    assert summary["status"] == "rejected"
    assert only_errors(summary) == [("period_end", "window_length")]
    assert "exactly 3" in summary["results"][0]["errors"][0]["message"]


async def test_later_measures_cover_one_month_after_the_first_window(client, factory):
    _, (finess,), headers = await factory.vendor_with_establishments()
    await push(client, headers, extract(finess, "2025-01", "2025-03"))
    two_months = await push(client, headers, extract(finess, "2025-04", "2025-05"))
    assert only_errors(two_months) == [("period_end", "window_length")]
    before = await push(client, headers, extract(finess, "2024-12", "2024-12"))
    assert only_errors(before) == [("period_start", "before_first_window")]
    inside = await push(client, headers, extract(finess, "2025-02", "2025-02"))
    assert only_errors(inside) == [("period_start", "before_first_window")]


async def test_period_not_completed_is_refused(client, factory):
    _, (finess,), headers = await factory.vendor_with_establishments()
    current = Month.current()
    summary = await push(client, headers, extract(finess, str(current.plus(-2)), str(current)))
    assert only_errors(summary) == [("period_end", "period_not_completed")]
    # the last completed month is accepted
    ok = await push(client, headers, extract(finess, str(current.plus(-3)), str(current.plus(-1))))
    assert ok["status"] == "ok"


async def test_each_count_rule_names_its_field(client, factory):
    _, (finess,), headers = await factory.vendor_with_establishments()
    cases = [
        ({"eligible_persons": 81}, ("eligible_persons", "exceeds_accompanied_persons")),
        ({"dmp_fed_persons": 76}, ("dmp_fed_persons", "exceeds_eligible_persons")),
        ({"active_files": 81}, ("active_files", "exceeds_accompanied_persons")),
        (
            {"active_files_with_care_project": 79},
            ("active_files_with_care_project", "exceeds_active_files"),
        ),
        (
            {"active_files_with_agenda_event": 79},
            ("active_files_with_agenda_event", "exceeds_active_files"),
        ),
        ({"active_files": -1}, ("active_files", "negative")),
        ({"active_files": 3.5}, ("active_files", "not_integer")),
        ({"active_files": "12"}, ("active_files", "not_integer")),
        ({"active_files": True}, ("active_files", "not_integer")),
        ({"active_files": None}, ("active_files", "required")),
        ({"active_file": 3}, ("active_file", "unknown_field")),
        ({"period_start": "2025-13"}, ("period_start", "invalid_month")),
    ]
    for counts, expected in cases:
        summary = await push(client, headers, extract(finess, "2025-01", "2025-03", **counts))
        assert expected in only_errors(summary), (counts, summary["results"][0]["errors"])
        assert summary["counts"]["rejected"] == 1
    # nothing of a refused row is stored
    series = await client.get(f"/api/v1/establishments/{finess}/measurements", headers=headers)
    assert series.json()["items"] == []


async def test_mssante_may_exceed_eligible_persons(client, factory):
    _, (finess,), headers = await factory.vendor_with_establishments()
    summary = await push(
        client, headers, extract(finess, "2025-01", "2025-03", mssante_messages_sent=300)
    )
    assert summary["status"] == "ok"


async def test_bad_unknown_and_foreign_finess(client, factory):
    _, (_finess,), headers = await factory.vendor_with_establishments()
    _other_vendor, (foreign,), _ = await factory.vendor_with_establishments()
    unregistered = await factory.establishment("75")
    summary = await push(
        client,
        headers,
        extract("750712185", "2025-01", "2025-03"),
        extract("750712184", "2025-01", "2025-03"),
        extract(foreign, "2025-01", "2025-03"),
        extract(unregistered, "2025-01", "2025-03"),
    )
    codes = [[(e["field"], e["code"]) for e in r["errors"]] for r in summary["results"]]
    assert codes == [
        [("finess", "invalid_finess")],
        [("finess", "unknown_finess")],
        [("finess", "not_covered")],
        [("finess", "not_covered")],
    ]
    assert "check digit" in summary["results"][0]["errors"][0]["message"]


async def test_finess_with_spaces_is_normalised(client, factory):
    _, (finess,), headers = await factory.vendor_with_establishments()
    spaced = f"{finess[:2]} {finess[2:5]} {finess[5:8]} {finess[8]}"
    summary = await push(client, headers, extract(spaced, "2025-01", "2025-03"))
    assert summary["results"][0]["finess"] == finess
    assert summary["status"] == "ok"


async def test_revisions_unchanged_and_history(client, factory):
    vendor, (finess,), headers = await factory.vendor_with_establishments()
    first = await push(client, headers, extract(finess, "2025-01", "2025-03"))
    same = await push(client, headers, extract(finess, "2025-01", "2025-03"))
    assert same["results"][0]["outcome"] == "unchanged"
    assert same["results"][0]["revision"] == 1
    revised = await push(client, headers, extract(finess, "2025-01", "2025-03", active_files=76))
    assert revised["results"][0]["outcome"] == "revised"
    assert revised["results"][0]["revision"] == 2
    assert first["results"][0]["revision"] == 1

    series = await client.get(f"/api/v1/establishments/{finess}/measurements", headers=headers)
    (item,) = series.json()["items"]
    assert item["revision"] == 2 and item["counts"]["active_files"] == 76

    history = await client.get(f"/api/v1/establishments/{finess}/revisions", headers=headers)
    items = history.json()["items"]
    assert [(i["revision"], i["counts"]["active_files"]) for i in items] == [(1, 78), (2, 76)]
    assert all(i["vendor_siren"] == vendor and i["sent_by_token"] for i in items)


async def test_warnings_are_stored_and_reported(client, factory):
    _, (finess,), headers = await factory.vendor_with_establishments()
    zero = {k: 0 for k in COUNTS}
    summary = await push(
        client,
        headers,
        extract(finess, "2025-01", "2025-03", accompanied_persons=100, eligible_persons=80),
        extract(finess, "2025-04", "2025-04", accompanied_persons=151, eligible_persons=80),
        extract(finess, "2025-07", "2025-07", **zero),
    )
    assert summary["status"] == "ok"
    warnings = [[w["code"] for w in r["warnings"]] for r in summary["results"]]
    assert warnings == [
        [],
        ["accompanied_persons_jump"],
        ["zero_accompanied_persons", "gap", "accompanied_persons_jump"],
    ]
    assert "2 month(s)" in summary["results"][2]["warnings"][1]["message"]
    series = await client.get(f"/api/v1/establishments/{finess}/measurements", headers=headers)
    assert [w["code"] for w in series.json()["items"][1]["warnings"]] == [
        "accompanied_persons_jump"
    ]


async def test_warnings_compare_with_the_stored_month_before(client, factory):
    """Across batches: the latest month stored, the one before a withdrawn month, and for a
    revision of the past the month before it, not the latest."""
    _, (finess,), headers = await factory.vendor_with_establishments()
    hundred = {"accompanied_persons": 100, "eligible_persons": 80}
    await push(
        client,
        headers,
        extract(finess, "2025-01", "2025-03", **hundred),
        extract(finess, "2025-04", "2025-04", **hundred),
        extract(finess, "2025-05", "2025-05", **hundred),
    )

    def warnings(summary):
        return [(w["code"], w["message"]) for w in summary["results"][0]["warnings"]]

    june = await push(
        client, headers, extract(finess, "2025-06", "2025-06", accompanied_persons=160)
    )
    assert warnings(june) == [
        (
            "accompanied_persons_jump",
            "accompanied_persons changed by 60% since 2025-05 (100 to 160)",
        )
    ]
    withdrawn = await client.post(
        "/api/v1/extracts/withdrawals",
        json={"finess": finess, "period_start": "2025-06", "period_end": "2025-06"},
        headers=headers,
    )
    assert withdrawn.status_code == 201
    august = await push(client, headers, extract(finess, "2025-08", "2025-08", **hundred))
    assert warnings(august) == [
        ("gap", "no extract received for the 2 month(s) between 2025-05 and 2025-08")
    ]
    small = {"accompanied_persons": 40, "eligible_persons": 30, "dmp_fed_persons": 20}
    files = {"active_files": 30, "active_files_with_care_project": 20}
    april = await push(
        client,
        headers,
        extract(finess, "2025-04", "2025-04", **small, **files, active_files_with_agenda_event=20),
    )
    assert april["results"][0]["outcome"] == "revised"
    assert warnings(april) == [
        ("accompanied_persons_jump", "accompanied_persons changed by 60% since 2025-03 (100 to 40)")
    ]


async def test_fifty_percent_change_exactly_is_not_a_jump(client, factory):
    _, (finess,), headers = await factory.vendor_with_establishments()
    summary = await push(
        client,
        headers,
        extract(finess, "2025-01", "2025-03", accompanied_persons=200),
        extract(finess, "2025-04", "2025-04", accompanied_persons=300),
        extract(finess, "2025-05", "2025-05", accompanied_persons=149),
    )
    assert [[w["code"] for w in r["warnings"]] for r in summary["results"]] == [
        [],
        [],
        ["accompanied_persons_jump"],
    ]


async def test_dry_run_stores_nothing(client, factory):
    _, (finess,), headers = await factory.vendor_with_establishments()
    summary = await push(client, headers, extract(finess, "2025-01", "2025-03"), dry_run="true")
    assert summary["dry_run"] is True
    assert summary["results"][0]["outcome"] == "created"
    series = await client.get(f"/api/v1/establishments/{finess}/measurements", headers=headers)
    assert series.json()["items"] == []


async def test_atomic_batch_is_all_or_nothing(client, factory):
    _, (a, b), headers = await factory.vendor_with_establishments(2)
    summary = await push(
        client,
        headers,
        extract(a, "2025-01", "2025-03"),
        extract(b, "2025-01", "2025-03", eligible_persons=90),
        atomic="true",
    )
    assert summary["status"] == "rejected"
    assert [r["outcome"] for r in summary["results"]] == ["skipped", "rejected"]
    assert summary["counts"]["created"] == 0
    series = await client.get(f"/api/v1/establishments/{a}/measurements", headers=headers)
    assert series.json()["items"] == []
    # without atomic, the valid row is stored
    partial = await push(
        client,
        headers,
        extract(a, "2025-01", "2025-03"),
        extract(b, "2025-01", "2025-03", eligible_persons=90),
    )
    assert partial["status"] == "partial"
    assert [r["outcome"] for r in partial["results"]] == ["created", "rejected"]


async def test_csv_batch(client, factory):
    _, (a, b), headers = await factory.vendor_with_establishments(2)
    header = "finess,period_start,period_end," + ",".join(COUNTS) + ",eprescriptions_imported"
    body = "\n".join(
        [
            header,
            f"{a},2025-01,2025-03," + ",".join(str(v) for v in COUNTS.values()) + ",4",
            f"{b},2025-01,2025-03,80,75,60,55,78,abc,74,",
        ]
    )
    response = await client.post(
        "/api/v1/extracts", content=body.encode(), headers={**headers, "Content-Type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    summary = response.json()
    assert [r["outcome"] for r in summary["results"]] == ["created", "rejected"]
    assert summary["results"][1]["errors"][0]["field"] == "active_files_with_care_project"
    series = await client.get(f"/api/v1/establishments/{a}/measurements", headers=headers)
    assert series.json()["items"][0]["indicators"]["eprescription_count"]["value"] == 4


async def test_csv_cells_with_other_digits_are_refused_not_crashed(client, factory):
    _, (a,), headers = await factory.vendor_with_establishments()
    header = "finess,period_start,period_end," + ",".join(COUNTS)
    values = [str(v) for v in COUNTS.values()]
    body = "\n".join(
        [
            header,
            f"{a},2025-01,2025-03," + ",".join(["\u00b2", *values[1:]]),  # a superscript two
            f"{a[:7]}\u0663{a[8]},2025-01,2025-03," + ",".join(values),  # an Arabic-Indic three
        ]
    )
    response = await client.post(
        "/api/v1/extracts", content=body.encode(), headers={**headers, "Content-Type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [(r["outcome"], r["errors"][0]["code"]) for r in results] == [
        ("rejected", "not_integer"),
        ("rejected", "invalid_finess"),
    ]
    assert "nine digits" in results[1]["errors"][0]["message"]


async def test_duplicate_rows_in_one_batch(client, factory):
    _, (finess,), headers = await factory.vendor_with_establishments()
    summary = await push(
        client,
        headers,
        extract(finess, "2025-01", "2025-03"),
        extract(finess, "2025-01", "2025-03"),
    )
    assert [r["outcome"] for r in summary["results"]] == ["created", "rejected"]
    assert summary["results"][1]["errors"][0]["code"] == "duplicate_in_batch"


async def test_withdrawal_is_recorded_not_deleted(client, factory):
    _, (finess,), headers = await factory.vendor_with_establishments()
    await push(
        client,
        headers,
        extract(finess, "2025-01", "2025-03"),
        extract(finess, "2025-04", "2025-04"),
    )
    refused = await client.post(
        "/api/v1/extracts/withdrawals",
        json={"finess": finess, "period_start": "2025-01", "period_end": "2025-03"},
        headers=headers,
    )
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    done = await client.post(
        "/api/v1/extracts/withdrawals",
        json={"finess": finess, "period_start": "2025-04", "period_end": "2025-04"},
        headers=headers,
    )
    assert done.status_code == 201 and done.json()["revision"] == 2
    series = await client.get(f"/api/v1/establishments/{finess}/measurements", headers=headers)
    assert [i["period_start"] for i in series.json()["items"]] == ["2025-01"]
    history = await client.get(f"/api/v1/establishments/{finess}/revisions", headers=headers)
    assert [
        (i["period_start"], i["revision"], i["withdrawn"]) for i in history.json()["items"]
    ] == [("2025-01", 1, False), ("2025-04", 1, False), ("2025-04", 2, True)]
    # sending it again after a withdrawal creates a new revision
    again = await push(client, headers, extract(finess, "2025-04", "2025-04"))
    assert again["results"][0]["outcome"] == "revised" and again["results"][0]["revision"] == 3


async def test_locked_period_is_refused(client, factory, session):
    from sqlalchemy import update

    from app.extracts.models import Measurement

    _, (finess,), headers = await factory.vendor_with_establishments()
    await push(client, headers, extract(finess, "2025-01", "2025-03"))
    await session.execute(
        update(Measurement).where(Measurement.finess == finess).values(locked_by_event_id=1)
    )
    await session.flush()
    summary = await push(client, headers, extract(finess, "2025-01", "2025-03", active_files=77))
    assert only_errors(summary) == [("period_start", "period_locked")]


async def test_batch_limits_answer_413(client, factory):
    _, (finess,), headers = await factory.vendor_with_establishments()
    rows = [extract(finess, "2025-01", "2025-03")] * 10_001
    response = await client.post("/api/v1/extracts", json={"extracts": rows}, headers=headers)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    big = b'{"extracts": [' + b" " * (21 * 1024 * 1024) + b"]}"
    response = await client.post(
        "/api/v1/extracts", content=big, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 413


async def test_malformed_bodies_are_clear_400s(client, factory):
    _, _, headers = await factory.vendor_with_establishments()
    bad_json = await client.post(
        "/api/v1/extracts",
        content=b"{not json",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert bad_json.status_code == 400
    assert bad_json.json()["errors"][0]["code"] == "invalid_json"
    wrong_shape = await client.post("/api/v1/extracts", json=[1, 2], headers=headers)
    assert wrong_shape.status_code == 422
    assert wrong_shape.json()["errors"][0]["field"] == "extracts"


async def test_only_vendors_push_and_tokens_are_required(client, factory):
    _, (finess,), _ = await factory.vendor_with_establishments()
    ars = await factory.token("ars", region="11")
    response = await client.post(
        "/api/v1/extracts", json={"extracts": [extract(finess, "2025-01", "2025-03")]}, headers=ars
    )
    assert response.status_code == 403
    anonymous = await client.post("/api/v1/extracts", json={"extracts": []})
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"


async def test_idempotency_key_replays_the_first_answer(client, factory):
    _, (finess,), headers = await factory.vendor_with_establishments()
    body = {"extracts": [extract(finess, "2025-01", "2025-03")]}
    keyed = {**headers, "Idempotency-Key": "batch-42"}
    first = await client.post("/api/v1/extracts", json=body, headers=keyed)
    replay = await client.post("/api/v1/extracts", json=body, headers=keyed)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json() == first.json()
    assert replay.json()["results"][0]["outcome"] == "created"
    other = {"extracts": [extract(finess, "2025-01", "2025-03", active_files=1)]}
    refused = await client.post("/api/v1/extracts", json=other, headers=keyed)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "reused"


async def test_series_and_history_keep_the_periods_that_overlap_from_to(client, factory):
    _, (finess,), headers = await factory.vendor_with_establishments()
    await push(
        client,
        headers,
        extract(finess, "2025-01", "2025-03"),
        extract(finess, "2025-04", "2025-04"),
        extract(finess, "2025-05", "2025-05"),
    )
    await push(client, headers, extract(finess, "2025-04", "2025-04", active_files=77))

    async def starts(path: str, **params) -> list[tuple[str, int]]:
        answer = await client.get(
            f"/api/v1/establishments/{finess}/{path}", headers=headers, params=params
        )
        assert answer.status_code == 200, answer.text
        return [(i["period_start"], i["revision"]) for i in answer.json()["items"]]

    assert await starts("measurements", **{"from": "2025-04"}) == [("2025-04", 2), ("2025-05", 1)]
    assert await starts("measurements", to="2025-02") == [("2025-01", 1)]  # Jan-Mar overlaps
    assert (await starts("measurements", **{"from": "2025-02"}))[0] == ("2025-01", 1)
    assert await starts("revisions", **{"from": "2025-04", "to": "2025-04"}) == [
        ("2025-04", 1),
        ("2025-04", 2),
    ]
    assert await starts("revisions", to="2025-03") == [("2025-01", 1)]
