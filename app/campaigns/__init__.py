"""Campaign figures as data (one TOML file per year) and their loader."""

from app.campaigns.loader import (
    TARGET_INDICATORS,
    Campaign,
    CampaignFileError,
    CaseAmounts,
    DateWindow,
    Engagement,
    FilingWindows,
    FundingCase,
    Pilots,
    PilotsCalendar,
    RankedAmount,
    SmallOrganisations,
    current_campaign,
    load_campaign,
)

__all__ = [
    "TARGET_INDICATORS",
    "Campaign",
    "CampaignFileError",
    "CaseAmounts",
    "DateWindow",
    "Engagement",
    "FilingWindows",
    "FundingCase",
    "Pilots",
    "PilotsCalendar",
    "RankedAmount",
    "SmallOrganisations",
    "current_campaign",
    "load_campaign",
]
