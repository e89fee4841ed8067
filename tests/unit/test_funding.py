"""Annexe 5 funding, annexe 3 guichet and admissibility, worked out by hand from the instruction."""

from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest

from app.campaigns import FundingCase, load_campaign
from app.campaigns.loader import CAMPAIGNS_DIR
from app.projects.funding import (
    EstablishmentLine,
    FundingInputError,
    Guichet,
    admissibility,
    compute_funding,
    filing_window,
    guichet,
    rank_establishments,
)

CAMPAIGN = load_campaign(2023)
BIG_EJ = "750000000"
ACQ, UPG, GEN = FundingCase.ACQUISITION, FundingCase.UPGRADE, FundingCase.GENERALISATION


def lines(count, *, first=1, ej=BIG_EJ, case=None, **extra):
    return [
        EstablishmentLine(f"75{n:07d}", ej, funding_case=case, **extra)
        for n in range(first, first + count)
    ]


def fund(items, *, case=ACQ, region="11", sizes=None, amoa=False, campaign=CAMPAIGN, **kw):
    return compute_funding(
        items,
        funding_case=case,
        region=region,
        legal_entity_sizes=sizes if sizes is not None else {BIG_EJ: 200},
        amoa_requested=amoa,
        campaign=campaign,
        **kw,
    )


def test_ten_acquisitions():
    funding = fund(lines(10))
    assert funding.amounts() == {
        "usage": D("70000.00"),
        "software": D("140000.00"),
        "hardware": D("0.00"),
        "amoa": D("0.00"),
        "total": D("210000.00"),
        "advance": D("105000.00"),
        "balance": D("105000.00"),
    }
    assert [x.rank for x in funding.establishments] == list(range(1, 11))


def test_sixty_acquisitions_cross_the_rank_49_boundary():
    funding = fund(lines(60))
    assert funding.usage == 49 * 7000 + 11 * 2000
    assert funding.software == 49 * 14000 + 11 * 3000
    assert funding.total == D("1084000.00")
    by_rank = {x.rank: x for x in funding.establishments}
    assert (by_rank[49].usage, by_rank[49].software) == (7000, 14000)
    assert (by_rank[50].usage, by_rank[50].software) == (2000, 3000)
    assert (funding.advance, funding.balance) == (D("542000.00"), D("542000.00"))


def test_generalisation_is_funded_like_acquisition():
    assert fund(lines(60), case=GEN).total == D("1084000.00")


@pytest.mark.parametrize(
    ("count", "usage"),
    [(10, D("50000.00")), (49, D("245000.00")), (60, D("267000.00"))],
)
def test_upgrades_get_usage_only_software_goes_through_sons(count, usage):
    funding = fund(lines(count), case=UPG)
    assert funding.usage == usage  # 5 000 € up to rank 49, 2 000 € from rank 50
    assert funding.software == 0
    assert funding.total == usage


def test_upgrades_rank_after_acquisitions_whatever_their_finess():
    # Upgrades have the smallest FINESS numbers, yet the 45 acquisitions take ranks 1..45.
    upgrades = lines(10, first=1, case=UPG)
    acquisitions = lines(45, first=100, case=ACQ)
    funding = fund(upgrades + acquisitions, case=ACQ)
    ranks = {x.finess: x.rank for x in funding.establishments}
    assert sorted(ranks[x.finess] for x in acquisitions) == list(range(1, 46))
    assert sorted(ranks[x.finess] for x in upgrades) == list(range(46, 56))
    # Upgrade ranks 46-49 at 5 000 €, 50-55 at 2 000 €.
    assert funding.usage == 45 * 7000 + 4 * 5000 + 6 * 2000
    assert funding.software == 45 * 14000
    assert funding.total == D("977000.00")


def test_generalisations_share_the_first_ranks_with_acquisitions_by_finess():
    items = [
        EstablishmentLine("750000003", BIG_EJ, UPG),
        EstablishmentLine("750000002", BIG_EJ, GEN),
        EstablishmentLine("750000001", BIG_EJ, ACQ),
    ]
    ranked = rank_establishments(items, ACQ)
    assert [(rank, line.finess) for rank, line in ranked] == [
        (1, "750000001"),
        (2, "750000002"),
        (3, "750000003"),
    ]


def test_lines_without_case_take_the_projects_case():
    funding = fund(lines(2) + lines(1, first=9, case=ACQ), case=UPG)
    assert [x.funding_case for x in funding.establishments] == [ACQ, UPG, UPG]
    assert funding.usage == 7000 + 5000 + 5000
    assert funding.software == 14000


def test_confort_share_prorates_usage_and_software():
    funding = fund(
        [
            EstablishmentLine("750000001", BIG_EJ, eligible_hours_share=D("0.6")),
            EstablishmentLine("750000002", BIG_EJ),
        ]
    )
    first = funding.establishments[0]
    assert (first.usage, first.software) == (D("4200.0"), D("8400.0"))
    assert funding.total == D("12600.00") + D("21000.00")


def test_confort_share_also_prorates_hardware_but_not_amoa():
    small_a, small_b = "940000001", "940000002"
    items = [
        EstablishmentLine(
            "750000001", small_a, eligible_hours_share=D("0.6"), hardware_quote=D(25000)
        ),
        EstablishmentLine("750000002", small_b),
    ]
    funding = fund(items, sizes={small_a: 3, small_b: 3}, amoa=True)
    assert funding.establishments[0].hardware == D("12000.0")  # 20 000 € cap × 0.6
    assert funding.amoa == D("100000.00")


def test_totals_are_rounded_half_up_once_at_the_end():
    share = D("0.123455")  # 7 000 × share = 864.185, 14 000 × share = 1 728.37
    funding = fund([EstablishmentLine("750000001", BIG_EJ, eligible_hours_share=share)])
    assert funding.establishments[0].usage == D("864.185")
    assert funding.usage == D("864.19")
    assert funding.software == D("1728.37")
    assert funding.total == D("2592.56")


def test_advance_is_rounded_half_up_and_balance_is_the_rest():
    small = "750000009"
    items = [EstablishmentLine("750000001", small, hardware_quote=D("1000.01"))]
    funding = fund(items, case=UPG, sizes={small: 1})
    assert funding.total == D("6000.01")
    assert (funding.advance, funding.balance) == (D("3000.01"), D("3000.00"))


@pytest.mark.parametrize(
    ("region", "size", "small"),
    [("11", 14, True), ("11", 15, False), ("94", 7, True), ("94", 8, False), ("04", 7, True)],
)
def test_petits_organismes_thresholds_in_and_outside_corse_and_overseas(region, size, small):
    ej = "000000001"
    funding = fund(
        [EstablishmentLine("750000001", ej, hardware_quote=D(5000))],
        region=region,
        sizes={ej: size},
    )
    assert funding.small_legal_entities == ({ej} if small else set())
    assert funding.hardware == (D(5000) if small else 0)


def test_an_ej_manages_at_least_the_establishments_it_brings():
    # The referential knows 3 establishments of this EJ, but it brings 15 to the project.
    ej = "000000001"
    funding = fund(lines(15, ej=ej, hardware_quote=D(5000)), sizes={ej: 3})
    assert funding.small_legal_entities == set()
    assert funding.hardware == 0


def test_the_ej_region_decides_its_threshold_when_given():
    ej = "2A0000001"
    items = [EstablishmentLine("750000001", ej, hardware_quote=D(5000))]
    assert fund(items, sizes={ej: 10}).hardware == D(5000)
    assert fund(items, sizes={ej: 10}, legal_entity_regions={ej: "94"}).hardware == 0


@pytest.mark.parametrize(
    ("quote", "expense", "hardware"),
    [
        (D(25000), None, D(20000)),  # above the cap
        (D(12000), None, D(12000)),  # below the cap
        (D(12000), D(9000), D(9000)),  # never above the actual expense
        (D(25000), D(30000), D(20000)),  # expense above the cap
        (D(12000), D(15000), D(12000)),  # never above the quote
        (None, D(15000), D(0)),  # no quote, no hardware
    ],
)
def test_hardware_is_capped_by_cap_quote_and_expense(quote, expense, hardware):
    ej = "000000001"
    item = EstablishmentLine("750000001", ej, hardware_quote=quote, hardware_expense=expense)
    funding = fund([item], sizes={ej: 1})
    assert funding.establishments[0].hardware == hardware
    assert funding.hardware == hardware


def test_no_hardware_for_an_organisation_that_is_not_small():
    funding = fund(lines(10, hardware_quote=D(5000)))
    assert funding.hardware == 0


def test_hardware_is_open_to_upgrades_of_small_organisations():
    ej = "000000001"
    funding = fund(
        [EstablishmentLine("750000001", ej, hardware_quote=D(8000))], case=UPG, sizes={ej: 1}
    )
    assert funding.total == D("13000.00")


def test_amoa_for_a_requested_group_made_only_of_small_organisations():
    a, b = "000000001", "000000002"
    items = lines(7, ej=a) + lines(8, first=100, ej=b)
    sizes = {a: 7, b: 8}
    funding = fund(items, sizes=sizes, amoa=True)
    assert funding.amoa_eligible
    assert funding.amoa == D("100000.00")
    assert funding.total == 15 * 21000 + 100000
    assert funding.advance == (15 * 21000 + 100000) // 2


def test_no_amoa_unless_requested():
    a, b = "000000001", "000000002"
    funding = fund(lines(7, ej=a) + lines(8, first=100, ej=b), sizes={a: 7, b: 8})
    assert funding.amoa == 0


def test_no_amoa_when_one_member_is_not_small():
    a, b = "000000001", "000000002"
    items = lines(7, ej=a) + lines(8, first=100, ej=b)
    funding = fund(items, sizes={a: 7, b: 15}, amoa=True)
    assert funding.small_legal_entities == {a}
    assert funding.amoa == 0


def test_no_amoa_for_a_single_organisation():
    ej = "000000001"
    funding = fund(lines(10, ej=ej), sizes={ej: 10}, amoa=True)
    assert funding.small_legal_entities == {ej}
    assert funding.amoa == 0


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("eligible_hours_share", {"eligible_hours_share": D(0)}),
        ("eligible_hours_share", {"eligible_hours_share": D("1.2")}),
        ("hardware_quote", {"hardware_quote": 5000.0}),
        ("hardware_expense", {"hardware_expense": D(-1)}),
        ("funding_case", {"funding_case": "purchase"}),
    ],
)
def test_unusable_lines_are_refused(field, kwargs):
    with pytest.raises(FundingInputError) as refused:
        EstablishmentLine("750000001", BIG_EJ, **kwargs)
    assert refused.value.field == field


def test_a_share_of_one_changes_nothing_and_a_case_may_be_a_string():
    item = EstablishmentLine("750000001", BIG_EJ, "upgrade", eligible_hours_share=D(1))
    assert item.funding_case is UPG
    assert fund([item]).total == D("5000.00")


def test_an_establishment_twice_is_refused():
    with pytest.raises(FundingInputError, match="750000001"):
        fund(lines(1) + lines(1))


def test_a_second_campaign_file_changes_amounts_without_code(tmp_path: Path):
    source = (CAMPAIGNS_DIR / "2023.toml").read_text(encoding="utf-8")
    variant = (
        source.replace("year = 2023", "year = 2024")
        .replace("rank_threshold = 49", "rank_threshold = 5")
        .replace('usage = { within = "7000.00"', 'usage = { within = "8000.00"')
        .replace('advance_share = "0.5"', 'advance_share = "0.3"')
        .replace(
            'hardware_cap_per_establishment = "20000.00"',
            'hardware_cap_per_establishment = "1000.00"',
        )
    )
    path = tmp_path / "2024.toml"
    path.write_text(variant, encoding="utf-8")
    campaign = load_campaign(path)
    funding = fund(lines(10), campaign=campaign)
    assert funding.usage == 5 * 8000 + 5 * 2000
    assert funding.software == 5 * 14000 + 5 * 3000
    assert funding.total == D("135000.00")
    assert funding.advance == D("40500.00")
    ej = "000000001"
    small = fund(
        [EstablishmentLine("750000001", ej, hardware_quote=D(5000))],
        sizes={ej: 1},
        campaign=campaign,
    )
    assert small.hardware == D(1000)


@pytest.mark.parametrize(
    ("regions", "expected"),
    [
        (["11"] * 10 + ["84"] * 39, Guichet.REGIONAL),  # fewer than 50, several regions
        (["11"] * 49, Guichet.REGIONAL),
        (["11"] * 50, Guichet.REGIONAL),  # 50 or more in one region
        (["11"] * 120, Guichet.REGIONAL),
        (["11"] * 49 + ["84"], Guichet.NATIONAL),  # 50 or more across regions
        (["94"] * 30 + ["93"] * 30, Guichet.NATIONAL),
    ],
)
def test_guichet_of_annexe_3(regions, expected):
    assert guichet(regions, CAMPAIGN) == expected
    assert guichet(regions) == expected.value


def test_filing_window_depends_on_guichet_and_regions():
    assert filing_window(["11"] * 3, CAMPAIGN)[0] == "regional"
    assert filing_window(["11", "84"], CAMPAIGN)[0] == "multiregional"
    assert filing_window(["11"] * 25 + ["84"] * 25, CAMPAIGN)[0] == "national"


def check(numbers, *, region="11", regions=None, on=date(2023, 3, 1), taken=(), **kw):
    return admissibility(
        numbers,
        region=region,
        establishment_regions=regions or {},
        submitted_on=on,
        taken_finess=set(taken),
        campaign=CAMPAIGN,
        **kw,
    )


def finesses(count, first=1):
    return [f"75{n:07d}" for n in range(first, first + count)]


@pytest.mark.parametrize(
    ("on", "receivable"),
    [
        (date(2023, 1, 14), False),
        (date(2023, 1, 15), True),
        (date(2023, 9, 15), True),
        (date(2023, 9, 16), False),
    ],
)
def test_regional_call_is_open_from_15_january_to_15_september(on, receivable):
    result = check(finesses(20), on=on)
    assert result.window == "regional"
    assert result.admissible is receivable
    if not receivable:
        assert [(e.code, e.field) for e in result.errors] == [
            ("outside_filing_window", "submitted_on")
        ]


def test_multiregional_request_at_an_ars_closes_on_15_june():
    numbers = finesses(20)
    regions = {n: ("11" if i < 10 else "84") for i, n in enumerate(numbers)}
    assert check(numbers, regions=regions, on=date(2023, 6, 15)).admissible
    late = check(numbers, regions=regions, on=date(2023, 6, 16))
    assert late.guichet == Guichet.REGIONAL
    assert late.window == "multiregional"
    assert [e.code for e in late.errors] == ["outside_filing_window"]
    assert "16/06/2023" in late.errors[0].message


@pytest.mark.parametrize(
    ("on", "receivable"),
    [
        (date(2023, 2, 14), False),
        (date(2023, 2, 15), True),
        (date(2023, 6, 15), True),
        (date(2023, 6, 16), False),
    ],
)
def test_national_call_is_open_from_15_february_to_15_june(on, receivable):
    numbers = finesses(60)
    regions = {n: ("11" if i < 30 else "84") for i, n in enumerate(numbers)}
    result = check(numbers, regions=regions, on=on)
    assert result.guichet == Guichet.NATIONAL
    assert result.admissible is receivable


def test_an_establishment_already_in_another_project_is_an_error():
    numbers = finesses(20)
    result = check(numbers, taken={numbers[3]})
    assert [(e.code, e.field) for e in result.errors] == [
        ("already_in_project", "establishments[3].finess")
    ]
    assert numbers[3] in result.errors[0].message


def test_an_establishment_listed_twice_is_an_error():
    numbers = [*finesses(20), "750000001"]
    result = check(numbers)
    assert [(e.code, e.field) for e in result.errors] == [
        ("duplicate_establishment", "establishments[20].finess")
    ]


def test_an_empty_request_is_an_error():
    assert [e.code for e in check([]).errors] == ["no_establishments"]


@pytest.mark.parametrize(
    ("count", "region", "warned"),
    [(14, "11", True), (15, "11", False), (7, "94", True), (8, "94", False), (7, "03", True)],
)
def test_fewer_than_15_establishments_or_8_in_corse_and_overseas_is_a_warning(
    count, region, warned
):
    result = check(finesses(count), region=region)
    assert result.admissible
    assert [(w.code, w.field) for w in result.warnings] == (
        [("below_minimum_size", "establishments")] if warned else []
    )


def test_joining_an_already_funded_group_lifts_the_size_warning():
    assert check(finesses(3), joins_funded_group=True).warnings == ()


def test_issues_render_as_code_field_message():
    issue = check(finesses(3)).warnings[0]
    assert set(issue.as_dict()) == {"code", "field", "message"}
