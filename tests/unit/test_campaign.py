"""The 2023 campaign file holds the figures of instructions 2023/13 and 2023/120, and is checked."""

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from app.campaigns import (
    TARGET_INDICATORS,
    CampaignFileError,
    FundingCase,
    current_campaign,
    load_campaign,
)
from app.campaigns.loader import CAMPAIGNS_DIR

SOURCE = (CAMPAIGNS_DIR / "2023.toml").read_text(encoding="utf-8")

# Annexe 1, as printed in the instruction.
ANNEXE_1 = {
    "84": "8348102",
    "27": "3608190",
    "53": "2636303",
    "24": "2645200",
    "94": "1517659",
    "44": "4837618",
    "01": "1152000",
    "03": "749500",
    "32": "5100588",
    "11": "10344806",
    "04": "689000",
    "02": "328500",
    "06": "1098598",
    "28": "3682476",
    "75": "5601011",
    "76": "6102173",
    "52": "2751639",
    "93": "5806637",
}


def write_variant(tmp_path: Path, old: str, new: str) -> Path:
    assert old in SOURCE, old
    path = tmp_path / "variant.toml"
    path.write_text(SOURCE.replace(old, new, 1), encoding="utf-8")
    return path


def test_annexe_5_amounts_per_establishment_and_rank_threshold():
    campaign = load_campaign(2023)
    assert campaign.rank_threshold == 49
    acquisition = campaign.amounts[FundingCase.ACQUISITION]
    assert (acquisition.usage.within, acquisition.usage.beyond) == (7000, 2000)
    assert (acquisition.software.within, acquisition.software.beyond) == (14000, 3000)
    assert campaign.amounts[FundingCase.GENERALISATION] == acquisition
    upgrade = campaign.amounts[FundingCase.UPGRADE]
    assert (upgrade.usage.within, upgrade.usage.beyond) == (5000, 2000)
    assert (upgrade.software.within, upgrade.software.beyond) == (0, 0)
    assert acquisition.usage.for_rank(49, 49) == 7000
    assert acquisition.usage.for_rank(50, 49) == 2000
    assert isinstance(acquisition.usage.within, Decimal)


def test_small_organisations_advance_and_targets():
    campaign = load_campaign(2023)
    small = campaign.small_organisations
    assert (small.fewer_than, small.fewer_than_corse_overseas) == (15, 8)
    assert small.hardware_cap_per_establishment == Decimal("20000")
    assert small.amoa_flat_sum == Decimal("100000")
    assert campaign.advance_share == Decimal("0.5")
    assert dict(campaign.targets) == {
        "mssante_rate": 70,
        "dmp_rate": 70,
        "active_files_rate": 90,
        "care_project_rate": 90,
        "agenda_rate": 90,
    }
    assert tuple(campaign.targets) == TARGET_INDICATORS
    assert (campaign.first_window_months, campaign.later_window_months) == (3, 1)


def test_calendar_guichet_and_sizes_of_annexe_3_and_part_iii():
    campaign = load_campaign(2023)
    windows = campaign.filing_windows
    assert (windows.regional.opens, windows.regional.closes) == (
        date(2023, 1, 15),
        date(2023, 9, 15),
    )
    assert windows.multiregional.closes == date(2023, 6, 15)
    assert (windows.national.opens, windows.national.closes) == (
        date(2023, 2, 15),
        date(2023, 6, 15),
    )
    assert windows.regional.contains(date(2023, 9, 15))
    assert not windows.regional.contains(date(2023, 9, 16))
    assert campaign.engagement_deadline == date(2023, 12, 30)
    assert campaign.guichet_threshold == 50
    assert campaign.minimum_size("11") == 15
    assert campaign.minimum_size("94") == 8
    assert campaign.indicative_duration_months == {
        FundingCase.UPGRADE: 9,
        FundingCase.ACQUISITION: 18,
        FundingCase.GENERALISATION: 18,
    }


def test_annexe_1_envelopes_add_up_to_67_million():
    campaign = load_campaign(2023)
    assert {code: str(int(amount)) for code, amount in campaign.regional_envelopes.items()} == (
        ANNEXE_1
    )
    assert sum(campaign.regional_envelopes.values()) == Decimal("67000000")
    assert campaign.regional_total == Decimal("67000000")
    assert campaign.national_envelope == Decimal("16700000")
    assert campaign.corse_overseas_regions == {"94", "01", "02", "03", "04", "06"}
    assert campaign.small_organisation_threshold("06") == 8
    assert campaign.small_organisation_threshold("84") == 15


def test_mon_espace_sante_pilots_of_instruction_2023_120():
    pilots = load_campaign(2023).pilots
    assert pilots.amount_per_pilot == Decimal("21000")
    assert pilots.national_cap == 56
    assert pilots.per_legal_entity == 2
    quotas = pilots.regional_quotas
    assert {code for code, quota in quotas.items() if quota == 5} == {
        "84",
        "44",
        "32",
        "11",
        "75",
        "76",
        "93",
    }
    assert {code for code, quota in quotas.items() if quota == 3} == {"27", "53", "24", "28", "52"}
    assert {code for code, quota in quotas.items() if quota == 1} == {
        "94",
        "01",
        "02",
        "03",
        "04",
        "06",
    }
    assert sum(quotas.values()) == 56
    assert dict(pilots.split_targets) == {
        "pa_residential": 35,
        "ph_residential": 35,
        "home_care": 30,
    }
    assert pilots.amount_per_pilot * pilots.national_cap <= pilots.budget
    calendar = pilots.calendar
    assert (calendar.applications_open, calendar.applications_close) == (
        date(2023, 9, 1),
        date(2023, 10, 31),
    )
    assert calendar.selection_deadline == date(2023, 12, 15)
    assert calendar.convention_deadline == date(2024, 2, 15)
    assert (calendar.pilot_start, calendar.pilot_end) == (date(2024, 2, 15), date(2024, 10, 15))
    assert calendar.intermediate_report_deadline == date(2024, 6, 14)
    assert calendar.final_report_deadline == date(2024, 11, 15)


def test_current_campaign_is_2023_and_loaded_once():
    assert current_campaign().year == 2023
    assert current_campaign() is current_campaign()


def test_load_by_year_text_or_path_gives_the_same_figures():
    assert load_campaign("2023") == load_campaign(CAMPAIGNS_DIR / "2023.toml")


def test_campaign_is_frozen():
    campaign = load_campaign(2023)
    with pytest.raises(AttributeError):
        campaign.rank_threshold = 10  # type: ignore[misc]
    with pytest.raises(TypeError):
        campaign.targets["dmp_rate"] = Decimal(0)  # type: ignore[index]


def test_a_missing_figure_is_refused_with_its_name(tmp_path):
    path = write_variant(tmp_path, 'hardware_cap_per_establishment = "20000.00"\n', "")
    with pytest.raises(CampaignFileError) as refused:
        load_campaign(path)
    assert "missing figure 'small_organisations.hardware_cap_per_establishment'" in str(
        refused.value
    )


def test_every_missing_figure_is_listed_at_once(tmp_path):
    path = write_variant(tmp_path, 'agenda_rate = "90"\n', "")
    path.write_text(path.read_text().replace("later_window_months = 1\n", ""))
    with pytest.raises(CampaignFileError) as refused:
        load_campaign(path)
    assert set(refused.value.problems) == {
        "missing figure 'targets.agenda_rate'",
        "missing figure 'measurement.later_window_months'",
    }


def test_money_written_as_a_float_is_refused(tmp_path):
    path = write_variant(tmp_path, 'amoa_flat_sum = "100000.00"', "amoa_flat_sum = 100000.0")
    with pytest.raises(CampaignFileError, match="amoa_flat_sum' must be a quoted decimal string"):
        load_campaign(path)


def test_envelopes_that_do_not_add_up_are_refused(tmp_path):
    path = write_variant(tmp_path, '"06" = "1098598.00"', '"06" = "1098599.00"')
    with pytest.raises(CampaignFileError, match=r"add up to 67000001\.00"):
        load_campaign(path)


def test_unknown_file_is_refused(tmp_path):
    with pytest.raises(CampaignFileError, match="no such campaign file"):
        load_campaign(tmp_path / "2031.toml")
    with pytest.raises(CampaignFileError, match="no such campaign file"):
        load_campaign(1999)
