"""The control signals, the risk score, the plan draw and the recovery steps, as pure rules
(instruction 2023/13, annexe 4 C)."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

import pytest

from app.campaigns import current_campaign
from app.campaigns.loader import CampaignFileError
from app.clock import Month
from app.controls import draw as plan
from app.controls.recovery import (
    RecoveryEvent,
    RecoveryEventType,
    RecoveryRefused,
    RecoveryStatus,
    check_event,
    remaining,
    status,
)
from app.controls.risk import project_risk, score
from app.controls.signals import (
    Declared,
    FrozenAttempt,
    Milestone,
    Period,
    Revision,
    SignalCode,
    signals,
)
from app.controls.thresholds import current_thresholds, parse_thresholds

TARGETS = current_campaign().targets
TH = current_thresholds()
START = Month(2024, 1)


def counts(
    accompanied=100,
    eligible=95,
    mssante=80,
    dmp=80,
    active=95,
    care=90,
    agenda=90,
) -> dict[str, int]:
    """Counts of an establishment comfortably above every target (dmp 84 %, care 94.7 %)."""
    return {
        "accompanied_persons": accompanied,
        "eligible_persons": eligible,
        "mssante_messages_sent": mssante,
        "dmp_fed_persons": dmp,
        "active_files": active,
        "active_files_with_care_project": care,
        "active_files_with_agenda_event": agenda,
    }


def honest(month: int, n: int = 0) -> dict[str, int]:
    """Counts that move a little every month, as real ones do."""
    wobble = (month * 7 + n * 3) % 5
    return counts(
        accompanied=100 + wobble,
        eligible=95 + wobble,
        mssante=80 + 2 * wobble,
        dmp=80 + wobble,
        active=95 + wobble,
        care=89 + wobble,
        agenda=88 + wobble,
    )


def series(
    make=honest, months: int = 12, start: Month = START, first_window: bool = True
) -> list[Period]:
    """A first window of 3 months, then one period a month."""
    periods = []
    month = start
    if first_window:
        periods.append(Period(month, month.plus(2), make(0)))
        month = month.plus(3)
    for step in range(1, months + 1):
        periods.append(Period(month, month, make(step)))
        month = month.plus(1)
    return periods


def codes(item: Declared, *others: Declared) -> set[SignalCode]:
    return {s.code for s in signals([item, *others], TARGETS, TH)[item.finess]}


def test_an_honest_series_raises_no_signal():
    assert codes(Declared("750000001", "750000002", "111111111", series())) == set()


def test_a_rate_at_its_target_month_after_month_is_flagged_with_its_values():
    # dmp_fed_persons 67 of 95 eligible: 70.5 %, within a point of the 70 % target
    item = Declared(
        "750000001",
        periods=series(lambda m: honest(m) | {"eligible_persons": 95, "dmp_fed_persons": 67}),
    )
    (signal,) = signals([item], TARGETS, TH)[item.finess]
    assert signal.code is SignalCode.AT_TARGET_PLATEAU
    assert signal.figures["indicator"] == "dmp_rate"
    assert set(signal.figures["values"]) == {Decimal("70.5")}
    assert "dmp_rate" in signal.reason and "consecutive months" in signal.reason


def test_the_plateau_holds_the_target_itself_but_not_one_point_above():
    def at(dmp: int):
        return lambda m: counts(accompanied=100 + m % 3, eligible=100, dmp=dmp, mssante=90)

    assert codes(Declared("750000001", periods=series(at(70)))) == {SignalCode.AT_TARGET_PLATEAU}
    assert codes(Declared("750000001", periods=series(at(71)))) == set()
    assert codes(Declared("750000001", periods=series(at(69)))) == set()


def test_a_plateau_shorter_than_the_threshold_is_not_a_signal():
    def make(m: int) -> dict[str, int]:
        # one month short of the threshold, between honest months
        near = 3 <= m < 3 + TH.plateau_months - 1
        return honest(m) | ({"eligible_persons": 95, "dmp_fed_persons": 67} if near else {})

    assert codes(Declared("750000001", periods=series(make))) == set()


def test_a_jump_to_the_targets_just_before_the_expense_statement_is_flagged():
    def make(m: int) -> dict[str, int]:
        return honest(m) if m >= 9 else honest(m) | {"dmp_fed_persons": 40}

    periods = series(make)
    jumped = periods[9].end  # the 9th month after the first window
    statement = Milestone("expense_statement", jumped.plus(1).first_day.replace(day=20))
    item = Declared("750000001", periods=periods, milestones=[statement])
    (signal,) = signals([item], TARGETS, TH)[item.finess]
    assert signal.code is SignalCode.LATE_JUMP
    assert signal.figures["milestone"] == "expense_statement"
    assert signal.figures["shortfall_months"] >= TH.jump_shortfall_months
    assert list(signal.figures["jumps"]) == ["dmp_rate"]
    # The same series with the statement a year later is a slow deployment, not a jump.
    later = dataclasses.replace(
        item, milestones=[Milestone("expense_statement", jumped.plus(12).first_day)]
    )
    assert codes(later) == set()


def test_the_same_counts_month_after_month_are_flagged():
    periods = series(lambda m: honest(m) if m < 6 else counts(), months=10)
    item = Declared("750000001", periods=periods)
    (signal,) = signals([item], TARGETS, TH)[item.finess]
    assert signal.code is SignalCode.REPEATED_COUNTS
    assert signal.months == tuple(str(p.end) for p in periods[6:])
    assert signal.figures["counts"]["accompanied_persons"] == 100


def test_a_small_establishment_with_a_stable_population_is_not_flagged_for_repeating():
    small = counts(12, 10, 8, 8, 10, 10, 10)  # the same 12 persons every month
    assert codes(Declared("750000001", periods=series(lambda m: small, months=10))) == set()


def test_identical_counts_across_establishments_of_one_vendor_are_flagged_for_each():
    copied = series(lambda m: honest(m, 0))
    first = Declared("750000001", "750000009", "111111111", copied)
    second = Declared("750000002", "750000008", "111111111", copied)
    third = Declared("750000003", "750000007", "222222222", copied)  # another vendor and EJ
    found = signals([first, second, third], TARGETS, TH)
    assert [s.code for s in found["750000001"]] == [SignalCode.SHARED_COUNTS]
    assert found["750000001"][0].figures == {
        "establishments": ["750000002"],
        "shared_by": ["vendor"],
    }
    assert [s.figures["establishments"] for s in found["750000002"]] == [["750000001"]]
    assert found["750000003"] == []


def test_identical_counts_across_one_legal_entity_are_flagged():
    copied = series(lambda m: honest(m, 0))
    first = Declared("750000001", "750000009", "111111111", copied)
    second = Declared("750000002", "750000009", "222222222", copied)
    assert codes(first, second) == {SignalCode.SHARED_COUNTS}


def test_mssante_messages_far_above_the_eligible_persons_are_flagged():
    def make(m: int) -> dict[str, int]:
        return honest(m) | ({"mssante_messages_sent": 2000} if m == 4 else {})

    item = Declared("750000001", periods=series(make))
    (signal,) = signals([item], TARGETS, TH)[item.finess]
    assert signal.code is SignalCode.MSSANTE_FAR_ABOVE
    assert signal.figures["per_eligible_per_month"] > TH.mssante_per_eligible_per_month


def test_a_first_window_is_read_per_month_for_mssante():
    # 3 months of 4 messages per eligible person and month: not above 5
    periods = series()
    periods[0] = Period(
        periods[0].start, periods[0].end, honest(0) | {"mssante_messages_sent": 12 * 95}
    )
    assert codes(Declared("750000001", periods=periods)) == set()


def test_active_files_equal_to_accompanied_persons_every_period_are_flagged():
    item = Declared(
        "750000001", periods=series(lambda m: honest(m) | {"active_files": 100 + (m * 7) % 5})
    )
    assert codes(item) == {SignalCode.ACTIVE_FILES_EQUAL_ACCOMPANIED}
    # once is not every period
    periods = series()
    periods[3] = Period(periods[3].start, periods[3].end, honest(3) | {"active_files": 100})
    assert codes(Declared("750000001", periods=periods)) == set()


def test_a_late_revision_turning_a_failing_rate_into_a_passing_one_is_flagged():
    month = Month(2024, 6)
    failing, passing = counts(dmp=40), counts()
    revisions = [
        Revision(month, month, 1, date(2024, 7, 3), failing),
        Revision(month, month, 2, date(2024, 12, 1), passing),
    ]
    item = Declared("750000001", revisions=revisions)
    (signal,) = signals([item], TARGETS, TH)[item.finess]
    assert signal.code is SignalCode.LATE_PASSING_REVISION
    (revised,) = signal.figures["revisions"]
    assert revised["days_after_period"] == 154
    assert revised["indicators"] == {"dmp_rate": [Decimal("42.1"), Decimal("84.2")]}
    # the same correction sent a week after the month is an ordinary correction
    prompt = [revisions[0], dataclasses.replace(revisions[1], received_on=date(2024, 7, 10))]
    assert codes(Declared("750000001", revisions=prompt)) == set()


def test_attempts_to_revise_a_frozen_period_are_flagged():
    attempt = FrozenAttempt(Month(2024, 6), Month(2024, 6), date(2025, 2, 1))
    item = Declared("750000001", periods=series(), frozen_attempts=[attempt])
    (signal,) = signals([item], TARGETS, TH)[item.finess]
    assert signal.code is SignalCode.FROZEN_PERIOD_REVISION
    assert signal.months == ("2024-06",)


def test_the_risk_score_counts_each_kind_once_and_is_capped():
    item = Declared(
        "750000001",
        periods=series(
            lambda m: (
                honest(m)
                | {"eligible_persons": 95, "dmp_fed_persons": 67, "mssante_messages_sent": 67}
            )
        ),
    )
    found = signals([item], TARGETS, TH)[item.finess]
    assert [s.code for s in found] == [SignalCode.AT_TARGET_PLATEAU] * 2
    assert score(found, TH.weights) == TH.weights[SignalCode.AT_TARGET_PLATEAU]
    everything = {code: 60 for code in SignalCode}
    many = [dataclasses.replace(found[0], code=code) for code in SignalCode]
    assert score(many, everything) == 100
    assert project_risk([0, 20, 45]) == project_risk([45, 0, 20])
    assert project_risk([0, 20, 45]).score == 45 and project_risk([0, 20, 45]).flagged == 2


def test_thresholds_are_campaign_data_checked_on_load():
    assert TH.per_department == 1
    with pytest.raises(CampaignFileError) as error:
        parse_thresholds({"plateau_months": 0, "weights": {"unknown": 3}}, "test.toml")
    problems = "\n".join(error.value.problems)
    assert "'controls.plateau_months' must be a whole number of at least 1" in problems
    assert "'controls.weights' names unknown signals: ['unknown']" in problems
    assert "'controls.jump_min_points' must be a positive decimal" in problems


CANDIDATES = (
    [plan.Candidate(f"7500000{n:02d}", "75", risk_score=n) for n in range(10)]
    + [plan.Candidate(f"9200000{n:02d}", "92", risk_score=0) for n in range(5)]
    + [plan.Candidate("930000001", "93", risk_score=40)]
)
DEPARTMENTS = ["75", "77", "78", "91", "92", "93", "94", "95"]


def test_a_random_draw_covers_every_departement_and_replays_from_its_seed():
    first = plan.draw(CANDIDATES, DEPARTMENTS, plan.DrawMethod.RANDOM, seed=42)
    assert [p.department for p in first.picks] == ["75", "92", "93"]
    assert first.uncovered == ("77", "78", "91", "94", "95")
    assert plan.draw(list(reversed(CANDIDATES)), DEPARTMENTS, plan.DrawMethod.RANDOM, 42) == first
    others = {
        tuple(p.finess for p in plan.draw(CANDIDATES, DEPARTMENTS, plan.DrawMethod.RANDOM, s).picks)
        for s in range(20)
    }
    assert len(others) > 5  # the seed chooses
    # anyone can check a pick: the smallest SHA-256 of "<seed>:<FINESS>" in its département
    import hashlib

    keys = {c.finess: hashlib.sha256(f"42:{c.finess}".encode()).hexdigest() for c in CANDIDATES}
    assert first.picks[0].finess == min((f for f in keys if f.startswith("75")), key=keys.get)


def test_a_risk_draw_takes_the_riskiest_and_a_mixed_one_adds_risk_to_chance():
    by_risk = plan.draw(CANDIDATES, DEPARTMENTS, plan.DrawMethod.RISK, seed=1, extra=2)
    assert [p.finess for p in by_risk.picks[:1]] == ["750000009"]
    assert [p.finess for p in by_risk.picks[3:]] == ["750000008", "750000007"]
    assert {p.reason for p in by_risk.picks[3:]} == {plan.PickReason.EXTRA_RISK}
    mixed = plan.draw(CANDIDATES, DEPARTMENTS, plan.DrawMethod.MIXED, seed=1, extra=1)
    assert {p.reason for p in mixed.picks[:3]} == {plan.PickReason.DEPARTMENT_RANDOM}
    assert mixed.picks[3].reason is plan.PickReason.EXTRA_RISK
    assert mixed.picks[3].risk_score == max(
        c.risk_score for c in CANDIDATES if c.finess not in {p.finess for p in mixed.picks[:3]}
    )


def test_recovery_is_notified_then_recovered_with_proof_until_nothing_remains():
    due = Decimal("3000.00")
    today, control = date(2025, 6, 1), date(2025, 3, 1)
    events: list[RecoveryEvent] = []

    def add(type_: str, on: date, amount: str | None = None, proof: str = "TR-1") -> None:
        event = RecoveryEvent(
            RecoveryEventType(type_), on, Decimal(amount) if amount else None, proof
        )
        kept = check_event(
            event, unduly_paid=due, controlled_on=control, events=events, today=today
        )
        events.append(dataclasses.replace(event, amount=kept))

    assert status(due, events) is RecoveryStatus.TO_NOTIFY
    with pytest.raises(RecoveryRefused) as refused:
        add("recovered", date(2025, 4, 1), "100.00")
    assert refused.value.code == "not_notified" and refused.value.conflict
    with pytest.raises(RecoveryRefused) as refused:
        add("notified", date(2025, 4, 1), proof=" ")
    assert refused.value.field == "proof_reference"
    add("notified", date(2025, 4, 1), proof="courrier 2025-117")
    with pytest.raises(RecoveryRefused) as refused:
        add("recovered", date(2025, 5, 1), "3000.01")
    assert refused.value.code == "above_remaining"
    add("recovered", date(2025, 5, 1), "1000.00")
    assert remaining(due, events) == Decimal("2000.00")
    assert status(due, events) is RecoveryStatus.NOTIFIED
    add("recovered", date(2025, 5, 20))  # what remains
    assert remaining(due, events) == 0 and status(due, events) is RecoveryStatus.RECOVERED
    with pytest.raises(RecoveryRefused) as refused:
        add("recovered", date(2025, 5, 21), "1.00")
    assert refused.value.code == "already_recovered"
    assert status(Decimal("0.00"), []) is RecoveryStatus.NONE
