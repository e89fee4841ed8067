"""Which structures of a FINESS file are establishments of the programme, and why not.

The programme funds the ESSMS of article L. 312-1 CASF (the categories of
`essms_categories.csv`) in the instruction's territories: every overseas one except Polynésie
française, Nouvelle-Calédonie, Saint-Pierre-et-Miquelon and Wallis-et-Futuna; Saint-Barthélemy
and Saint-Martin count under Guadeloupe (see `geography.ATTACHED_TERRITORIES`). A structure
of another category is skipped, counted under its category code, before its territory is
looked at; one outside the territories is skipped, counted under its territory's INSEE code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from app.referential.categories import CATEGORIES
from app.referential.finess import InvalidFiness, check_finess
from app.referential.finess_formats import FinessFileError, FinessRow
from app.referential.geography import OUTSIDE_TERRITORIES, programme_department


@dataclass(frozen=True, slots=True)
class FinessRecord:
    """An establishment of the programme, ready to store; `where` is its place in the file."""

    where: str
    finess: str
    legal_entity_finess: str
    name: str
    department: str  # INSEE code
    category_code: str
    category_label: str | None
    closed_on: date | None = None


class SkipReason(StrEnum):
    CATEGORY = "category"  # not an ESSMS of article L. 312-1 CASF
    TERRITORY = "territory"  # outside the instruction's territories


@dataclass(frozen=True, slots=True)
class Skipped:
    reason: SkipReason
    key: str  # the category code, or the territory's INSEE code


def select(row: FinessRow) -> FinessRecord | Skipped | FinessFileError:
    """The programme's reading of one row: a record to store, a skip, or what is wrong."""
    category = CATEGORIES.get(row.category_code)
    if category is None:
        if not row.category_code:
            return FinessFileError(row.where, "no category code")
        return Skipped(SkipReason.CATEGORY, row.category_code)
    if row.territory in OUTSIDE_TERRITORIES:
        return Skipped(SkipReason.TERRITORY, row.territory)
    department = programme_department(row.territory) if row.territory else None
    problems: list[str] = []
    if department is None:
        problems.append(
            f"département or commune {row.raw_territory!r} is not one of France's"
            if row.raw_territory
            else "no département or commune code"
        )
    numbers: dict[str, str] = {}
    for field, raw in (("FINESS ET", row.finess), ("FINESS EJ", row.legal_entity_finess)):
        try:
            numbers[field] = check_finess(raw)
        except InvalidFiness as exc:
            problems.append(f"{field}: {exc}")
    if not row.name:
        problems.append("no name")
    if problems or department is None:
        return FinessFileError(row.where, "; ".join(problems))
    return FinessRecord(
        where=row.where,
        finess=numbers["FINESS ET"],
        legal_entity_finess=numbers["FINESS EJ"],
        name=row.name,
        department=department,
        category_code=category.code,
        category_label=row.category_label or category.label,
        closed_on=row.closed_on,
    )
