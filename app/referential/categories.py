"""FINESS establishment categories (nomenclature TRE_R66) of the ESSMS the programme funds.

Labels are the nomenclature's own, as the FINESS extraction prints them in `libcategetab`.
Weights are rough national counts of each kind of ESSMS, used only to give synthetic
referentials a realistic mix (EHPAD first, then home services, then the disability sector).
"""

from dataclasses import dataclass
from enum import StrEnum


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
    # False for codes the nomenclature closed (2018 reform of adult disability housing):
    # still found in older files, never generated.
    in_use: bool = True


_PA, _PH = Audience.ELDERLY, Audience.DISABLED
_HOME, _PLACE = True, False

_CATEGORIES = (
    # Personnes âgées
    Category("500", "EHPAD", _PA, _PLACE, 7400,
             "Etablissement d'hébergement pour personnes âgées dépendantes"),
    Category("202", "Résidence autonomie", _PA, _PLACE, 1500, "Résidences autonomie"),
    Category("207", "Accueil de jour", _PA, _PLACE, 300, "Centre de Jour pour Personnes Agées"),
    Category("354", "SSIAD", _PA, _HOME, 2100,
             "Service de Soins Infirmiers A Domicile (S.S.I.A.D)"),
    # SAAS and SAA are the 2023 reform's names of the former SPASAD and SAAD.
    Category("209", "SAAS", _PA, _HOME, 600, "Service autonomie aide et soins (SAAS)"),
    Category("460", "SAA", _PA, _HOME, 3500, "Service autonomie aide (SAA)"),
    # Personnes handicapées, children
    Category("183", "IME", _PH, _PLACE, 1200, "Institut Médico-Educatif (I.M.E.)"),
    Category("182", "SESSAD", _PH, _HOME, 1500,
             "Service d'Éducation Spéciale et de Soins à Domicile"),
    Category("186", "ITEP", _PH, _PLACE, 450,
             "Institut Thérapeutique Éducatif et Pédagogique (I.T.E.P.)"),
    Category("188", "EEAP", _PH, _PLACE, 200,
             "Etablissement pour Enfants ou Adolescents Polyhandicapés"),
    Category("192", "IEM", _PH, _PLACE, 130, "Institut d'éducation motrice"),
    Category("189", "CMPP", _PH, _PLACE, 300, "Centre Médico-Psycho-Pédagogique (C.M.P.P.)"),
    Category("190", "CAMSP", _PH, _PLACE, 350,
             "Centre Action Médico-Sociale Précoce (C.A.M.S.P.)"),
    # Personnes handicapées, adults
    Category("246", "ESAT", _PH, _PLACE, 1400,
             "Etablissement et Service d'Aide par le Travail (E.S.A.T.)"),
    Category("255", "MAS", _PH, _PLACE, 700, "Maison d'Accueil Spécialisée (M.A.S.)"),
    Category("448", "EAM", _PH, _PLACE, 1000,
             "Etab.Acc.Médicalisé en tout ou partie personnes handicapées"),
    Category("449", "EANM", _PH, _PLACE, 1700,
             "Etab.Accueil Non Médicalisé pour personnes handicapées"),
    Category("445", "SAMSAH", _PH, _HOME, 400,
             "Service d'accompagnement médico-social adultes handicapés"),
    Category("446", "SAVS", _PH, _HOME, 1200,
             "Service d'Accompagnement à la Vie Sociale (S.A.V.S.)"),
    # Closed in 2018, replaced by EAM (448) and EANM (449).
    Category("437", "FAM", _PH, _PLACE, 0,
             "Foyer d'Accueil Médicalisé pour Adultes Handicapés (F.A.M.)", in_use=False),
    Category("252", "Foyer d'hébergement", _PH, _PLACE, 0,
             "Foyer Hébergement Adultes Handicapés", in_use=False),
    Category("253", "Foyer polyvalent", _PH, _PLACE, 0,
             "Foyer d'Accueil Polyvalent pour Adultes Handicapés", in_use=False),
    Category("382", "Foyer de vie", _PH, _PLACE, 0,
             "Foyer de Vie pour Adultes Handicapés", in_use=False),
    # Protection de l'enfance and inclusion sociale, also ESSMS of article L. 312-1 CASF.
    Category("177", "MECS", Audience.CHILD_PROTECTION, _PLACE, 900,
             "Maison d'Enfants à Caractère Social"),
    Category("214", "CHRS", Audience.SOCIAL_INCLUSION, _PLACE, 700,
             "Centre Hébergement & Réinsertion Sociale (C.H.R.S.)"),
)  # fmt: skip

CATEGORIES: dict[str, Category] = {category.code: category for category in _CATEGORIES}


def category_label(code: str) -> str | None:
    """Nomenclature label of a FINESS category code ("500" -> "Etablissement d'hébergement…")."""
    category = CATEGORIES.get(code.strip())
    return category.label if category else None
