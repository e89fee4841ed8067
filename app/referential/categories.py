"""The FINESS categories of the ESSMS the programme funds, read from `essms_categories.csv`.

The list is data with its source at its top (article L. 312-1 CASF, nomenclature TRE_R66):
a structure whose category is not in it is not an establishment of the programme. Labels are
the nomenclature's own, as the FINESS files print them in `libcategetab`. Weights are rough
national counts of each kind of ESSMS, used only to give synthetic referentials a realistic
mix (EHPAD first, then home services, then the disability sector).
"""

import csv
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

SOURCE = Path(__file__).with_name("essms_categories.csv")


class Audience(StrEnum):
    """Who the establishment is for; Mon espace santé pilots (instruction 2023/120) split on it."""

    ELDERLY = "PA"  # personnes âgées
    DISABLED = "PH"  # personnes handicapées
    CHILD_PROTECTION = "ASE"  # protection de l'enfance
    SOCIAL_INCLUSION = "IS"  # inclusion sociale


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    abbreviation: str
    audience: Audience
    # Services that go to people's homes, as opposed to establishments they live in or attend.
    home_care: bool
    weight: int
    label: str
    # False for codes the nomenclature closed (2018 reform of adult disability housing…):
    # still found on older or closed structures, never generated.
    in_use: bool = True


def load_categories(path: Path = SOURCE) -> dict[str, Category]:
    """The categories of the file, by code; ValueError naming the line of a malformed one."""
    with path.open(encoding="utf-8", newline="") as file:
        lines = (line for line in file if not line.startswith("#"))
        categories: dict[str, Category] = {}
        for number, row in enumerate(csv.DictReader(lines, delimiter=";"), start=2):
            try:
                category = Category(
                    code=row["code"].strip(),
                    abbreviation=row["abbreviation"].strip(),
                    audience=Audience(row["audience"].strip()),
                    home_care=row["home_care"].strip() == "1",
                    weight=int(row["weight"]),
                    label=row["label"].strip(),
                    in_use=row["in_use"].strip() == "1",
                )
            except (KeyError, ValueError, AttributeError) as exc:
                raise ValueError(f"{path.name}, data row {number}: {exc}") from exc
            if not category.code.isdigit() or category.code in categories:
                raise ValueError(f"{path.name}, data row {number}: bad or repeated code")
            categories[category.code] = category
    return categories


CATEGORIES: dict[str, Category] = load_categories()


def is_programme_category(code: str) -> bool:
    """True for the FINESS categories of the ESSMS the programme funds."""
    return code.strip() in CATEGORIES


def category_label(code: str) -> str | None:
    """Nomenclature label of a FINESS category code ("500" -> "Etablissement d'hébergement…")."""
    category = CATEGORIES.get(code.strip())
    return category.label if category else None
