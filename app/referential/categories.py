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
    label: str
    abbreviation: str
    audience: Audience
    # Services that go to people's homes, as opposed to establishments they live in or attend.
    home_care: bool
    weight: int
    # False for codes the nomenclature closed (2018 reform of adult disability housing):
    # still found in older files, never generated.
    in_use: bool = True


_PA, _PH = Audience.ELDERLY, Audience.DISABLED

_CATEGORIES = (
    # Personnes âgées
    Category(
        "500",
        "Etablissement d'hébergement pour personnes âgées dépendantes",
        "EHPAD",
        _PA,
        False,
        7400,
    ),
    Category("202", "Résidences autonomie", "Résidence autonomie", _PA, False, 1500),
    Category("207", "Centre de Jour pour Personnes Agées", "Accueil de jour", _PA, False, 300),
    Category("354", "Service de Soins Infirmiers A Domicile (S.S.I.A.D)", "SSIAD", _PA, True, 2100),
    # SAAS and SAA are the 2023 reform's names of the former SPASAD and SAAD.
    Category("209", "Service autonomie aide et soins (SAAS)", "SAAS", _PA, True, 600),
    Category("460", "Service autonomie aide (SAA)", "SAA", _PA, True, 3500),
    # Personnes handicapées, children
    Category("183", "Institut Médico-Educatif (I.M.E.)", "IME", _PH, False, 1200),
    Category(
        "182", "Service d'Éducation Spéciale et de Soins à Domicile", "SESSAD", _PH, True, 1500
    ),
    Category(
        "186",
        "Institut Thérapeutique Éducatif et Pédagogique (I.T.E.P.)",
        "ITEP",
        _PH,
        False,
        450,
    ),
    Category(
        "188",
        "Etablissement pour Enfants ou Adolescents Polyhandicapés",
        "EEAP",
        _PH,
        False,
        200,
    ),
    Category("192", "Institut d'éducation motrice", "IEM", _PH, False, 130),
    Category("189", "Centre Médico-Psycho-Pédagogique (C.M.P.P.)", "CMPP", _PH, False, 300),
    Category("190", "Centre Action Médico-Sociale Précoce (C.A.M.S.P.)", "CAMSP", _PH, False, 350),
    # Personnes handicapées, adults
    Category(
        "246",
        "Etablissement et Service d'Aide par le Travail (E.S.A.T.)",
        "ESAT",
        _PH,
        False,
        1400,
    ),
    Category("255", "Maison d'Accueil Spécialisée (M.A.S.)", "MAS", _PH, False, 700),
    Category(
        "448",
        "Etab.Acc.Médicalisé en tout ou partie personnes handicapées",
        "EAM",
        _PH,
        False,
        1000,
    ),
    Category(
        "449", "Etab.Accueil Non Médicalisé pour personnes handicapées", "EANM", _PH, False, 1700
    ),
    Category(
        "445",
        "Service d'accompagnement médico-social adultes handicapés",
        "SAMSAH",
        _PH,
        True,
        400,
    ),
    Category(
        "446", "Service d'Accompagnement à la Vie Sociale (S.A.V.S.)", "SAVS", _PH, True, 1200
    ),
    # Closed in 2018 and replaced by EAM (448) and EANM (449).
    Category(
        "437",
        "Foyer d'Accueil Médicalisé pour Adultes Handicapés (F.A.M.)",
        "FAM",
        _PH,
        False,
        0,
        in_use=False,
    ),
    Category(
        "252",
        "Foyer Hébergement Adultes Handicapés",
        "Foyer d'hébergement",
        _PH,
        False,
        0,
        in_use=False,
    ),
    Category(
        "253",
        "Foyer d'Accueil Polyvalent pour Adultes Handicapés",
        "Foyer polyvalent",
        _PH,
        False,
        0,
        in_use=False,
    ),
    Category(
        "382",
        "Foyer de Vie pour Adultes Handicapés",
        "Foyer de vie",
        _PH,
        False,
        0,
        in_use=False,
    ),
    # Protection de l'enfance and inclusion sociale, also ESSMS of article L. 312-1 CASF.
    Category(
        "177",
        "Maison d'Enfants à Caractère Social",
        "MECS",
        Audience.CHILD_PROTECTION,
        False,
        900,
    ),
    Category(
        "214",
        "Centre Hébergement & Réinsertion Sociale (C.H.R.S.)",
        "CHRS",
        Audience.SOCIAL_INCLUSION,
        False,
        700,
    ),
)

CATEGORIES: dict[str, Category] = {category.code: category for category in _CATEGORIES}


def category_label(code: str) -> str | None:
    """Nomenclature label of a FINESS category code ("500" -> "Etablissement d'hébergement…")."""
    category = CATEGORIES.get(code.strip())
    return category.label if category else None
