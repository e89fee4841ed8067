"""Extract validation rules without the database: windows, coherence, warnings."""

from app.clock import Month
from app.extracts.rules import (
    Context,
    Previous,
    Stored,
    check_against_series,
    counts_tuple,
    outcome,
    parse_row,
)

COUNTS = {
    "accompanied_persons": 80,
    "eligible_persons": 75,
    "mssante_messages_sent": 60,
    "dmp_fed_persons": 55,
    "active_files": 78,
    "active_files_with_care_project": 72,
    "active_files_with_agenda_event": 74,
}
NOW = Month(2026, 11)
FINESS = "750712184"


def row(index, start, end, **counts):
    raw = {"finess": FINESS, "period_start": start, "period_end": end, **COUNTS, **counts}
    return parse_row(index, raw)


def empty(**kw):
    defaults = dict(known=True, covered=True, first_window=None, current=None, previous=None)
    return Context(**(defaults | kw))


def codes(r):
    return [e.code for e in r.errors]


def test_every_field_error_is_reported_at_once():
    r = parse_row(0, {"finess": "123", "period_start": "2025-1", "active_files": -2})
    fields = {e.field for e in r.errors}
    assert {"finess", "period_start", "period_end", "active_files", "accompanied_persons"} <= fields


def test_batch_may_carry_the_first_window_and_the_months_after_it_in_any_order():
    rows = [
        row(0, "2025-05", "2025-05"),
        row(1, "2025-01", "2025-03"),
        row(2, "2025-04", "2025-04"),
    ]
    check_against_series(rows, {0: empty(), 1: empty(), 2: empty()}, NOW)
    assert [codes(r) for r in rows] == [[], [], []]
    assert [r.first_window for r in rows] == [False, True, False]


def test_first_window_is_three_months():
    rows = [row(0, "2025-01", "2025-02")]
    check_against_series(rows, {0: empty()}, NOW)
    assert codes(rows[0]) == ["window_length"]


def test_revision_of_the_first_window_keeps_three_months():
    first = (Month(2025, 1), Month(2025, 3))
    rows = [row(0, "2025-01", "2025-03")]
    check_against_series(rows, {0: empty(first_window=first)}, NOW)
    assert codes(rows[0]) == []


def test_current_month_is_not_completed():
    rows = [row(0, "2026-09", "2026-11")]
    check_against_series(rows, {0: empty()}, NOW)
    assert codes(rows[0]) == ["period_not_completed"]


def test_outcome_created_revised_unchanged():
    sent = row(0, "2025-01", "2025-03")
    same = counts_tuple(sent.counts)
    other = counts_tuple(row(0, "2025-01", "2025-03", active_files=77).counts)
    at = (Month(2025, 1), Month(2025, 3))
    assert outcome(sent, empty()) == ("created", 1)
    assert outcome(sent, empty(current=Stored(*at, 4, False, False, same, 80))) == ("unchanged", 4)
    assert outcome(sent, empty(current=Stored(*at, 4, False, False, other, 80))) == ("revised", 5)
    # identical counts sent again after a withdrawal reinstate them as a new revision
    assert outcome(sent, empty(current=Stored(*at, 5, True, False, same, 80))) == ("revised", 6)


def test_gap_warning_counts_the_missing_months():
    previous = Previous(Month(2025, 1), Month(2025, 3), 80)
    rows = [row(0, "2025-07", "2025-07")]
    check_against_series(
        rows, {0: empty(first_window=(Month(2025, 1), Month(2025, 3)), previous=previous)}, NOW
    )
    assert [w.code for w in rows[0].warnings] == ["gap"]
    assert "3 month(s)" in rows[0].warnings[0].message


def test_unknown_and_uncovered_establishments():
    rows = [row(0, "2025-01", "2025-03"), row(1, "2025-01", "2025-03")]
    rows[1].finess = "750712192"
    check_against_series(rows, {0: empty(known=False), 1: empty(covered=False)}, NOW)
    assert codes(rows[0]) == ["unknown_finess"]
    assert codes(rows[1]) == ["not_covered"]
