"""Mon espace santé pilot rules, as tables taken from instruction DNS/DGCS/CNSA/2023/120:
eligibility (annexe 1 1)), caps and quotas (annexe 1 2)), calendar (part D), payment
evidence (part B 5), the national view (part C) and usage rows."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from app.campaigns import current_campaign
from app.clock import Month
from app.pilots.rules import (
    Application,
    ApplicationStatus,
    Connection,
    Domain,
    Event,
    Maturity,
    PaymentStatus,
    PilotFacts,
    PilotLine,
    SelectedCounts,
    check_application,
    check_decline,
    check_event,
    check_selection,
    domain_of_category,
    eligibility,
    regional_quota,
    selection_warnings,
    standing,
    summarise,
)
from app.pilots.usage.rules import (
    StoredUsage,
    UsageContext,
    check_usage_rows,
    parse_usage_row,
    usage_outcome,
)

PILOTS = current_campaign().pilots
CALENDAR = PILOTS.calendar
TODAY = date(2025, 6, 1)
NONE_SELECTED = SelectedCounts(national=0, regional=0, legal_entity=0, domain=0)
APPLICATION = Application(
    finess="750712184",
    legal_entity_finess="750000010",
    region="11",
    domain=Domain.PA_RESIDENTIAL,
    category_code="500",
    technical_maturity=Maturity.SEGUR_DUI_INSTALLING,
    dmp_connection=Connection.EFFECTIVE,
    mssante_connection=Connection.PLANNED,
    applied_on=date(2023, 9, 15),
)


def codes(issues) -> list[str]:
    return [issue.code for issue in issues]


def select(application=APPLICATION, counts=NONE_SELECTED, decided_on=date(2023, 11, 20), **kw):
    status = kw.pop("status", ApplicationStatus.APPLIED)
    return codes(check_selection(application, status, decided_on, counts, PILOTS, TODAY))


# -- Domains and eligibility --------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "domain"),
    [
        ("500", Domain.PA_RESIDENTIAL),  # EHPAD
        ("202", Domain.PA_RESIDENTIAL),  # résidence autonomie
        ("354", Domain.HOME_CARE),  # SSIAD
        ("460", Domain.HOME_CARE),  # SAA
        ("209", Domain.HOME_CARE),  # SAAS
        ("255", Domain.PH_RESIDENTIAL),  # MAS
        ("183", Domain.PH_RESIDENTIAL),  # IME
        ("246", Domain.PH_RESIDENTIAL),  # ESAT: "en établissement"
        ("182", Domain.HOME_CARE),  # SESSAD: "domicile PA et PH confondues"
        ("446", Domain.HOME_CARE),  # SAVS
        ("177", None),  # MECS: protection de l'enfance
        ("214", None),  # CHRS: inclusion sociale
        ("999", None),  # unknown to the service
        (None, None),
    ],
)
def test_domain_follows_the_finess_category(category, domain):
    assert domain_of_category(category) is domain


def recorded(**kw):
    arguments = {
        "declared_domain": None,
        "declared_legal_entity": None,
        "referential_legal_entity": "750000010",
        "category_code": "500",
        "applied_on": date(2023, 9, 15),
        "today": TODAY,
    } | kw
    return check_application(**arguments)


def test_an_application_takes_its_domain_and_ej_from_the_referential():
    result = recorded()
    assert (result.domain, result.legal_entity_finess, result.errors) == (
        Domain.PA_RESIDENTIAL,
        "750000010",
        (),
    )
    assert (
        recorded(declared_domain="pa_residential", declared_legal_entity="75 000 001 0").errors
        == ()
    )


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"declared_domain": "home_care"}, [("domain", "domain_mismatch")]),
        ({"category_code": "999"}, [("domain", "required")]),
        (
            {"category_code": "177", "declared_domain": "home_care"},
            [("finess", "not_eligible_domain")],
        ),
        (
            {"declared_legal_entity": "750712184"},
            [("legal_entity_finess", "legal_entity_mismatch")],
        ),
        ({"declared_legal_entity": "750000011"}, [("legal_entity_finess", "invalid_finess")]),
        ({"applied_on": date(2025, 6, 2)}, [("applied_on", "future_date")]),
    ],
)
def test_an_application_that_contradicts_the_referential_is_not_recorded(arguments, expected):
    assert [(e.field, e.code) for e in recorded(**arguments).errors] == expected


def test_an_unknown_category_takes_the_declared_domain():
    result = recorded(category_code="999", declared_domain="ph_residential")
    assert result.domain is Domain.PH_RESIDENTIAL and result.errors == ()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"technical_maturity": Maturity.NONE}, "not_technically_ready"),
        ({"dmp_connection": Connection.NONE}, "dmp_not_planned"),
        ({"mssante_connection": Connection.NONE}, "mssante_not_planned"),
        ({"applied_on": date(2023, 8, 31)}, "outside_call_window"),
        ({"applied_on": date(2023, 11, 1)}, "outside_call_window"),
        ({"category_code": "214"}, "not_eligible_domain"),
    ],
)
def test_eligibility_rules_of_annexe_1(change, code):
    assert codes(eligibility(replace(APPLICATION, **change), PILOTS)) == [code]


@pytest.mark.parametrize(
    "change",
    [
        {"technical_maturity": Maturity.EXCHANGE_CAPABLE},
        {"dmp_connection": Connection.PLANNED, "mssante_connection": Connection.EFFECTIVE},
        {"applied_on": date(2023, 9, 1)},  # the call's first day
        {"applied_on": date(2023, 10, 31)},  # and its last, both included
        {"category_code": None},  # unknown category: the declared domain stands
    ],
)
def test_eligible_applications(change):
    assert eligibility(replace(APPLICATION, **change), PILOTS) == []


# -- Selection ----------------------------------------------------------------------------

LARGE = ["84", "44", "32", "11", "75", "76", "93"]
MEDIUM = ["27", "53", "24", "28", "52"]
CORSE_OVERSEAS = ["94", "01", "02", "03", "04", "06"]


@pytest.mark.parametrize(("regions", "quota"), [(LARGE, 5), (MEDIUM, 3), (CORSE_OVERSEAS, 1)])
def test_regional_quota_by_region_size(regions, quota):
    for region in regions:
        assert regional_quota(region, PILOTS) == quota
        application = replace(APPLICATION, region=region)
        below = SelectedCounts(national=10, regional=quota - 1, legal_entity=0, domain=0)
        assert select(application, below) == []
        full = replace(below, regional=quota)
        assert select(application, full) == ["regional_quota"]


def test_quotas_add_up_to_the_national_cap_of_56():
    quotas = [regional_quota(code, PILOTS) for code in LARGE + MEDIUM + CORSE_OVERSEAS]
    assert sum(quotas) == PILOTS.national_cap == 56


def test_a_region_the_campaign_does_not_list_has_no_pilot():
    assert select(replace(APPLICATION, region="99")) == ["regional_quota"]


def test_national_cap():
    assert select(counts=replace(NONE_SELECTED, national=55)) == []
    assert select(counts=replace(NONE_SELECTED, national=56)) == ["national_cap"]


def test_at_most_two_pilots_per_legal_entity():
    assert select(counts=replace(NONE_SELECTED, legal_entity=1)) == []
    assert select(counts=replace(NONE_SELECTED, legal_entity=2)) == ["legal_entity_limit"]


@pytest.mark.parametrize(
    ("decided_on", "expected"),
    [
        (date(2023, 9, 15), []),  # the application's day
        (date(2023, 12, 15), []),  # "au plus tard le 15 décembre 2023", included
        (date(2023, 12, 16), ["after_selection_deadline"]),
        (date(2023, 9, 14), ["before_application"]),
        (date(2025, 6, 2), ["future_date", "after_selection_deadline"]),
    ],
)
def test_selection_dates(decided_on, expected):
    assert select(decided_on=decided_on) == expected


def test_every_broken_rule_is_named_at_once():
    application = replace(
        APPLICATION, technical_maturity=Maturity.NONE, applied_on=date(2023, 11, 5)
    )
    counts = SelectedCounts(national=56, regional=5, legal_entity=2, domain=0)
    assert select(application, counts, decided_on=date(2023, 12, 20)) == [
        "not_technically_ready",
        "outside_call_window",
        "after_selection_deadline",
        "national_cap",
        "regional_quota",
        "legal_entity_limit",
    ]


def test_a_pilot_is_selected_once_and_a_withdrawn_one_never_again():
    assert select(status=ApplicationStatus.SELECTED) == ["already_selected"]
    assert select(status=ApplicationStatus.WITHDRAWN) == ["pilot_withdrawn"]
    assert select(status=ApplicationStatus.NOT_SELECTED) == []  # from the waiting list


def test_the_split_is_a_proposal_that_only_warns():
    # 35 % of 56 is 19.6: the 20th PA residential pilot goes above it.
    at_19 = replace(NONE_SELECTED, national=40, domain=19)
    assert select(counts=at_19) == []
    warnings = selection_warnings(APPLICATION, at_19, PILOTS)
    assert codes(warnings) == ["domain_above_target"]
    assert "19.6" in warnings[0].message
    assert selection_warnings(APPLICATION, replace(at_19, domain=18), PILOTS) == []
    home = replace(APPLICATION, domain=Domain.HOME_CARE)  # 30 % of 56 is 16.8
    assert selection_warnings(home, replace(at_19, domain=16), PILOTS)
    assert not selection_warnings(home, replace(at_19, domain=15), PILOTS)


def test_a_non_selection_is_recorded_once():
    assert (
        check_decline(ApplicationStatus.APPLIED, date(2023, 9, 1), date(2023, 11, 1), TODAY) == []
    )
    assert codes(
        check_decline(ApplicationStatus.NOT_SELECTED, date(2023, 9, 1), date(2023, 11, 1), TODAY)
    ) == ["already_decided"]
    assert codes(
        check_decline(ApplicationStatus.APPLIED, date(2023, 9, 1), date(2023, 8, 1), TODAY)
    ) == ["before_application"]


# -- Payment evidence and deadlines -------------------------------------------------------

FACTS = PilotFacts(selected_on=date(2023, 11, 20), amount=Decimal("21000.00"))
CONVENTION = Event("convention_signed", date(2024, 1, 10))
INTERMEDIATE = Event("intermediate_report_received", date(2024, 6, 10))
FINAL = Event("final_report_received", date(2024, 11, 5))
EVIDENCE = [CONVENTION, INTERMEDIATE, FINAL]


def event_codes(new: Event, history: list[Event], today: date = TODAY) -> list[str]:
    return codes(check_event(new, history, FACTS, CALENDAR, today))


def test_the_flat_sum_is_paid_on_the_full_evidence():
    assert event_codes(Event("paid", date(2024, 12, 1)), EVIDENCE) == []
    assert event_codes(Event("paid", date(2024, 12, 1), Decimal("21000")), EVIDENCE) == []


@pytest.mark.parametrize(
    ("history", "missing"),
    [
        ([], ["convention_signed", "intermediate_report_received", "final_report_received"]),
        ([CONVENTION], ["intermediate_report_received", "final_report_received"]),
        ([CONVENTION, INTERMEDIATE], ["final_report_received"]),
    ],
)
def test_no_payment_without_every_piece_of_evidence(history, missing):
    issues = check_event(Event("paid", date(2024, 12, 1)), history, FACTS, CALENDAR, TODAY)
    assert codes(issues) == ["missing_evidence"] * len(missing)
    assert all(piece in issue.message for piece, issue in zip(missing, issues, strict=True))


def test_payment_once_the_pilot_period_is_over_and_in_full():
    final_early = replace(FINAL, date=date(2024, 10, 1))
    history = [CONVENTION, INTERMEDIATE, final_early]
    # "une fois la période de pilote terminée": the period ends on 15/10/2024.
    assert event_codes(Event("paid", date(2024, 10, 15)), history) == ["before_pilot_end"]
    assert event_codes(Event("paid", date(2024, 10, 16)), history) == []
    assert event_codes(Event("paid", date(2024, 12, 1), Decimal("10500.00")), EVIDENCE) == [
        "not_flat_amount"
    ]
    assert event_codes(Event("paid", date(2024, 11, 1)), EVIDENCE) == ["before_prerequisite"]


def test_steps_come_in_order():
    assert event_codes(INTERMEDIATE, []) == ["out_of_order"]
    assert event_codes(FINAL, [CONVENTION]) == ["out_of_order"]
    assert event_codes(replace(INTERMEDIATE, date=date(2024, 1, 5)), [CONVENTION]) == [
        "before_prerequisite",
        "before_pilot_start",
    ]
    assert event_codes(CONVENTION, [CONVENTION]) == ["already_recorded"]
    assert event_codes(replace(CONVENTION, date=date(2023, 11, 1)), []) == ["before_selection"]
    assert event_codes(replace(CONVENTION, date=date(2025, 6, 2)), []) == ["future_date"]
    assert event_codes(Event("convention_signed", date(2024, 1, 10), Decimal("1.00")), []) == [
        "amount_not_allowed"
    ]
    assert event_codes(Event("refund", date(2024, 1, 10)), []) == ["unknown_type"]


def test_withdrawal_frees_the_place_but_not_after_payment():
    withdrawn = Event("withdrawn", date(2024, 3, 1))
    assert event_codes(withdrawn, [CONVENTION]) == []
    assert event_codes(INTERMEDIATE, [CONVENTION, withdrawn]) == ["pilot_withdrawn"]
    paid = Event("paid", date(2024, 12, 1), Decimal("21000.00"))
    assert event_codes(withdrawn, [*EVIDENCE, paid]) == ["already_paid"]


def deadlines_of(history, today=TODAY):
    return {
        d.step: (d.due_by, d.done_on, d.late) for d in standing(history, CALENDAR, today).deadlines
    }


def test_deadlines_of_part_d():
    assert deadlines_of(EVIDENCE) == {
        # "avant le 15 février 2024": the 14th is the last day on time.
        "convention_signed": (date(2024, 2, 14), date(2024, 1, 10), False),
        "intermediate_report_received": (date(2024, 6, 14), date(2024, 6, 10), False),
        "final_report_received": (date(2024, 11, 15), date(2024, 11, 5), False),
    }


@pytest.mark.parametrize(
    ("history", "today", "late"),
    [
        ([replace(CONVENTION, date=date(2024, 2, 15))], date(2024, 3, 1), {"convention_signed"}),
        ([CONVENTION, replace(INTERMEDIATE, date=date(2024, 6, 15))], date(2024, 7, 1),
         {"intermediate_report_received"}),
        ([CONVENTION], date(2024, 6, 14), set()),  # due today: not late yet
        ([CONVENTION], date(2024, 6, 15), {"intermediate_report_received"}),  # missing, past due
        ([CONVENTION, INTERMEDIATE], date(2024, 11, 16), {"final_report_received"}),
        ([CONVENTION, INTERMEDIATE, replace(FINAL, date=date(2024, 11, 15))], TODAY, set()),
        ([CONVENTION, INTERMEDIATE, replace(FINAL, date=date(2024, 11, 18))], TODAY,
         {"final_report_received"}),
    ],
)  # fmt: skip
def test_late_steps_are_flagged_not_refused(history, today, late):
    assert {
        step for step, (_, _, is_late) in deadlines_of(history, today).items() if is_late
    } == late
    assert standing(history, CALENDAR, today).late is bool(late)
    last = history[-1]
    assert event_codes(last, history[:-1], today=max(today, last.date)) == []


@pytest.mark.parametrize(
    ("history", "today", "status"),
    [
        ([], date(2024, 1, 1), PaymentStatus.AWAITING_CONVENTION),
        ([CONVENTION], date(2024, 3, 1), PaymentStatus.IN_PILOT),
        (EVIDENCE, date(2024, 11, 6), PaymentStatus.PAYABLE),
        ([CONVENTION, INTERMEDIATE, replace(FINAL, date=date(2024, 10, 15))], date(2024, 10, 15),
         PaymentStatus.IN_PILOT),  # evidence complete, period not over
        ([*EVIDENCE, Event("paid", date(2024, 12, 1), Decimal("21000.00"))], TODAY,
         PaymentStatus.PAID),
        ([CONVENTION, Event("withdrawn", date(2024, 3, 1))], TODAY, PaymentStatus.WITHDRAWN),
    ],
)  # fmt: skip
def test_payment_status(history, today, status):
    result = standing(history, CALENDAR, today)
    assert result.status is status
    assert result.payable is (status is PaymentStatus.PAYABLE)
    assert result.committed is (status in (PaymentStatus.IN_PILOT, PaymentStatus.PAYABLE,
                                           PaymentStatus.PAID))  # fmt: skip


def test_a_withdrawn_pilot_is_never_late():
    result = standing([CONVENTION, Event("withdrawn", date(2024, 3, 1))], CALENDAR, TODAY)
    assert result.late is False and result.missing_evidence == (
        "intermediate_report_received",
        "final_report_received",
    )


# -- National and regional view -----------------------------------------------------------

FLAT = Decimal("21000.00")


def line(region, domain, history, today=TODAY):
    return PilotLine(region, domain, FLAT, standing(history, CALENDAR, today))


def test_national_view_against_cap_split_quotas_and_budget():
    paid = [*EVIDENCE, Event("paid", date(2024, 12, 1), FLAT)]
    lines = [
        line("11", "pa_residential", paid),
        line("11", "ph_residential", [CONVENTION, INTERMEDIATE]),  # final report missing: late
        line("11", "home_care", []),
        line("94", "pa_residential", [CONVENTION]),
        line("94", "ph_residential", [CONVENTION, Event("withdrawn", date(2024, 3, 1))]),
    ]
    applications = {"11": {"selected": 3, "not_selected": 2}, "94": {"withdrawn": 1, "selected": 1}}
    result = summarise(lines, applications, PILOTS)
    assert (result.selected, result.cap) == (4, 56)
    assert dict(result.applications) == {
        "applied": 0,
        "selected": 4,
        "not_selected": 2,
        "withdrawn": 1,
        "total": 7,
    }
    assert [(d.domain, d.pilots, d.share, d.target) for d in result.domains] == [
        ("pa_residential", 2, Decimal("50.0"), 35),
        ("ph_residential", 1, Decimal("25.0"), 35),
        ("home_care", 1, Decimal("25.0"), 30),
    ]
    regions = {r.region: r for r in result.regions}
    assert len(regions) == 18
    idf, corse = regions["11"], regions["94"]
    assert (idf.quota, idf.selected, idf.remaining, idf.applications) == (5, 3, 2, 5)
    assert (idf.envelope, idf.committed, idf.paid, idf.late) == (
        Decimal("105000.00"),
        Decimal("42000.00"),
        FLAT,
        2,  # the one without convention is late too (due 14/02/2024)
    )
    assert (corse.quota, corse.selected, corse.remaining, corse.committed) == (1, 1, 0, FLAT)
    assert result.budget == Decimal("1200000.00")
    assert (result.selected_amount, result.committed, result.paid) == (
        Decimal("84000.00"),
        Decimal("63000.00"),
        FLAT,
    )
    assert result.remaining == Decimal("1137000.00")
    assert dict(result.payments) == {
        "awaiting_convention": 1,
        "in_pilot": 2,
        "payable": 0,
        "paid": 1,
        "withdrawn": 1,
    }


def test_a_region_sees_its_quota_and_envelope():
    result = summarise([line("11", "pa_residential", [])], {"11": {"applied": 2}}, PILOTS, ["11"])
    assert (result.selected, result.cap, result.budget) == (1, 5, Decimal("105000.00"))
    assert [r.region for r in result.regions] == ["11"]
    assert result.domains[0].share == Decimal("100.0")


def test_no_pilot_no_share():
    result = summarise([], {}, PILOTS)
    assert all(d.share is None for d in result.domains)
    assert sum(r.envelope for r in result.regions) == Decimal("1176000.00")  # 56 x 21 000


# -- Usage rows ---------------------------------------------------------------------------

USAGE = {
    "finess": "750712184",
    "month": "2024-03",
    "ins_qualified_identities": 61,
    "dmp_documents_sent": 140,
    "mssante_messages_sent": 85,
    "citizen_messages_sent": 12,
}
PILOT = UsageContext(known=True, covered=True, pilot_id=7, withdrawn=False, current=None)


def test_usage_rows_are_typed_field_by_field():
    row = parse_usage_row(0, USAGE)
    assert (row.finess, row.month, row.errors) == ("750712184", Month(2024, 3), [])
    bad = parse_usage_row(
        1,
        USAGE
        | {
            "finess": "750712185",
            "month": "2024-13",
            "dmp_documents_sent": -1,
            "citizen_messages_sent": 1.5,
            "extra": 1,
        }
        | {"mssante_messages_sent": None},
    )
    assert sorted((e.field, e.code) for e in bad.errors) == [
        ("citizen_messages_sent", "not_integer"),
        ("dmp_documents_sent", "negative"),
        ("extra", "unknown_field"),
        ("finess", "invalid_finess"),
        ("month", "invalid_month"),
        ("mssante_messages_sent", "required"),
    ]
    csv = parse_usage_row(2, {k: str(v) for k, v in USAGE.items()}, text_cells=True)
    assert csv.errors == [] and csv.counts["dmp_documents_sent"] == 140
    assert codes(parse_usage_row(3, ["not", "a", "row"]).errors) == ["not_an_object"]


@pytest.mark.parametrize(
    ("month", "context", "expected"),
    [
        ("2024-03", PILOT, []),
        ("2025-06", PILOT, ["period_not_completed"]),  # the month in progress
        ("2023-08", PILOT, ["before_campaign"]),  # the call opened in September 2023
        ("2023-09", PILOT, []),
        ("2024-03", replace(PILOT, known=False), ["unknown_finess"]),
        ("2024-03", replace(PILOT, covered=False), ["not_covered"]),
        ("2024-03", replace(PILOT, pilot_id=None), ["not_a_pilot"]),
        ("2024-03", replace(PILOT, withdrawn=True), ["pilot_withdrawn"]),
    ],
)
def test_usage_rows_against_the_pilot_and_the_calendar(month, context, expected):
    row = parse_usage_row(0, USAGE | {"month": month})
    check_usage_rows([row], {0: context}, Month(2025, 6), Month(2023, 9))
    assert codes(row.errors) == expected


def test_usage_duplicates_in_a_batch_and_outcomes():
    rows = [parse_usage_row(0, USAGE), parse_usage_row(1, USAGE)]
    check_usage_rows(rows, {0: PILOT, 1: PILOT}, Month(2025, 6), Month(2023, 9))
    assert codes(rows[1].errors) == ["duplicate_in_batch"]
    row = rows[0]
    assert usage_outcome(row, PILOT) == ("created", 1)
    same = replace(PILOT, current=StoredUsage(2, (61, 140, 85, 12)))
    assert usage_outcome(row, same) == ("unchanged", 2)
    other = replace(PILOT, current=StoredUsage(2, (61, 141, 85, 12)))
    assert usage_outcome(row, other) == ("revised", 3)
