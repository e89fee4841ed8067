"""Regional envelopes (annexe 1): aid committed by notified projects against each envelope.

A project commits its total aid when the ARS notifies it before the engagement deadline
("avant le 30 décembre 2023", part V B). Projects filed at the national guichet are funded
from the national call's envelope, shown on a line of their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from app.campaigns import Campaign
from app.referential.geography import REGIONS

NATIONAL = "national"


@dataclass(frozen=True)
class Commitment:
    project_id: int
    reference: str
    region: str
    guichet: str
    total: Decimal
    notified_on: date | None


@dataclass
class EnvelopeLine:
    region: str
    name: str
    envelope: Decimal
    committed: Decimal = Decimal(0)
    pending: Decimal = Decimal(0)  # not notified yet
    notified_projects: int = 0
    late: list[Commitment] = field(default_factory=list)

    @property
    def remaining(self) -> Decimal:
        return self.envelope - self.committed


def envelope_lines(
    commitments: Iterable[Commitment], campaign: Campaign, regions: Iterable[str] | None = None
) -> list[EnvelopeLine]:
    wanted = list(regions) if regions is not None else [*campaign.regional_envelopes, NATIONAL]
    lines = {
        code: EnvelopeLine(
            code,
            "Appel à projets national" if code == NATIONAL else REGIONS[code].name,
            campaign.national_envelope if code == NATIONAL else campaign.regional_envelopes[code],
        )
        for code in wanted
    }
    deadline = campaign.engagement_deadline
    for item in commitments:
        line = lines.get(NATIONAL if item.guichet == NATIONAL else item.region)
        if line is None:
            continue
        if item.notified_on is None:
            line.pending += item.total
        elif item.notified_on < deadline:
            line.committed += item.total
            line.notified_projects += 1
        else:
            line.late.append(item)
    return list(lines.values())
