"""The 18 regions of annexe 1 (instruction DGCS/DNS/CNSA/2023/13) and their 101 départements.

Codes are INSEE's: regions on two characters ("11", "01"), départements on two ("01", "2A")
or three ("971") characters. The FINESS extraction file has its own two-character codes for
the overseas départements ("9A" for Guadeloupe...): `department_from_finess_file` maps them.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    name: str
    # "Corse et outre-mer" get lower thresholds (8 establishments instead of 15, one pilot).
    corsica_or_overseas: bool


@dataclass(frozen=True, slots=True)
class Department:
    code: str
    name: str
    region_code: str


_REGIONS = (
    Region("11", "Île-de-France", False),
    Region("24", "Centre-Val de Loire", False),
    Region("27", "Bourgogne-Franche-Comté", False),
    Region("28", "Normandie", False),
    Region("32", "Hauts-de-France", False),
    Region("44", "Grand Est", False),
    Region("52", "Pays de la Loire", False),
    Region("53", "Bretagne", False),
    Region("75", "Nouvelle-Aquitaine", False),
    Region("76", "Occitanie", False),
    Region("84", "Auvergne-Rhône-Alpes", False),
    Region("93", "Provence-Alpes-Côte d'Azur", False),
    Region("94", "Corse", True),
    Region("01", "Guadeloupe", True),
    Region("02", "Martinique", True),
    Region("03", "Guyane", True),
    Region("04", "La Réunion", True),
    Region("06", "Mayotte", True),
)

REGIONS: dict[str, Region] = {region.code: region for region in _REGIONS}

# (code, name, region code), in INSEE order: Corsica's 2A and 2B sit where 20 used to be.
_DEPARTMENTS = (
    ("01", "Ain", "84"),
    ("02", "Aisne", "32"),
    ("03", "Allier", "84"),
    ("04", "Alpes-de-Haute-Provence", "93"),
    ("05", "Hautes-Alpes", "93"),
    ("06", "Alpes-Maritimes", "93"),
    ("07", "Ardèche", "84"),
    ("08", "Ardennes", "44"),
    ("09", "Ariège", "76"),
    ("10", "Aube", "44"),
    ("11", "Aude", "76"),
    ("12", "Aveyron", "76"),
    ("13", "Bouches-du-Rhône", "93"),
    ("14", "Calvados", "28"),
    ("15", "Cantal", "84"),
    ("16", "Charente", "75"),
    ("17", "Charente-Maritime", "75"),
    ("18", "Cher", "24"),
    ("19", "Corrèze", "75"),
    ("2A", "Corse-du-Sud", "94"),
    ("2B", "Haute-Corse", "94"),
    ("21", "Côte-d'Or", "27"),
    ("22", "Côtes-d'Armor", "53"),
    ("23", "Creuse", "75"),
    ("24", "Dordogne", "75"),
    ("25", "Doubs", "27"),
    ("26", "Drôme", "84"),
    ("27", "Eure", "28"),
    ("28", "Eure-et-Loir", "24"),
    ("29", "Finistère", "53"),
    ("30", "Gard", "76"),
    ("31", "Haute-Garonne", "76"),
    ("32", "Gers", "76"),
    ("33", "Gironde", "75"),
    ("34", "Hérault", "76"),
    ("35", "Ille-et-Vilaine", "53"),
    ("36", "Indre", "24"),
    ("37", "Indre-et-Loire", "24"),
    ("38", "Isère", "84"),
    ("39", "Jura", "27"),
    ("40", "Landes", "75"),
    ("41", "Loir-et-Cher", "24"),
    ("42", "Loire", "84"),
    ("43", "Haute-Loire", "84"),
    ("44", "Loire-Atlantique", "52"),
    ("45", "Loiret", "24"),
    ("46", "Lot", "76"),
    ("47", "Lot-et-Garonne", "75"),
    ("48", "Lozère", "76"),
    ("49", "Maine-et-Loire", "52"),
    ("50", "Manche", "28"),
    ("51", "Marne", "44"),
    ("52", "Haute-Marne", "44"),
    ("53", "Mayenne", "52"),
    ("54", "Meurthe-et-Moselle", "44"),
    ("55", "Meuse", "44"),
    ("56", "Morbihan", "53"),
    ("57", "Moselle", "44"),
    ("58", "Nièvre", "27"),
    ("59", "Nord", "32"),
    ("60", "Oise", "32"),
    ("61", "Orne", "28"),
    ("62", "Pas-de-Calais", "32"),
    ("63", "Puy-de-Dôme", "84"),
    ("64", "Pyrénées-Atlantiques", "75"),
    ("65", "Hautes-Pyrénées", "76"),
    ("66", "Pyrénées-Orientales", "76"),
    ("67", "Bas-Rhin", "44"),
    ("68", "Haut-Rhin", "44"),
    ("69", "Rhône", "84"),
    ("70", "Haute-Saône", "27"),
    ("71", "Saône-et-Loire", "27"),
    ("72", "Sarthe", "52"),
    ("73", "Savoie", "84"),
    ("74", "Haute-Savoie", "84"),
    ("75", "Paris", "11"),
    ("76", "Seine-Maritime", "28"),
    ("77", "Seine-et-Marne", "11"),
    ("78", "Yvelines", "11"),
    ("79", "Deux-Sèvres", "75"),
    ("80", "Somme", "32"),
    ("81", "Tarn", "76"),
    ("82", "Tarn-et-Garonne", "76"),
    ("83", "Var", "93"),
    ("84", "Vaucluse", "93"),
    ("85", "Vendée", "52"),
    ("86", "Vienne", "75"),
    ("87", "Haute-Vienne", "75"),
    ("88", "Vosges", "44"),
    ("89", "Yonne", "27"),
    ("90", "Territoire de Belfort", "27"),
    ("91", "Essonne", "11"),
    ("92", "Hauts-de-Seine", "11"),
    ("93", "Seine-Saint-Denis", "11"),
    ("94", "Val-de-Marne", "11"),
    ("95", "Val-d'Oise", "11"),
    ("971", "Guadeloupe", "01"),
    ("972", "Martinique", "02"),
    ("973", "Guyane", "03"),
    ("974", "La Réunion", "04"),
    ("976", "Mayotte", "06"),
)

DEPARTMENTS: dict[str, Department] = {
    code: Department(code, name, region_code) for code, name, region_code in _DEPARTMENTS
}

# The FINESS CSV files write overseas départements with their own codes. 9E is
# Saint-Pierre-et-Miquelon and 9J Wallis-et-Futuna: in FINESS, but not in the programme.
FINESS_DEPARTMENT_CODES: dict[str, str] = {
    "9A": "971",
    "9B": "972",
    "9C": "973",
    "9D": "974",
    "9F": "976",
}
FINESS_TERRITORY_CODES: dict[str, str] = {"9E": "975", "9J": "986"}

# Overseas territories the instruction leaves out ("à l'exception de la Polynésie française,
# de la Nouvelle-Calédonie, de Saint Pierre et Miquelon, et de Wallis et Futuna"), with the
# other INSEE codes of territories that have no ARS of the programme (TAAF, Clipperton).
OUTSIDE_TERRITORIES: dict[str, str] = {
    "975": "Saint-Pierre-et-Miquelon",
    "984": "Terres australes et antarctiques françaises",
    "986": "Wallis-et-Futuna",
    "987": "Polynésie française",
    "988": "Nouvelle-Calédonie",
    "989": "Clipperton",
}
# Saint-Barthélemy (977) and Saint-Martin (978) are not excluded by the instruction, are
# followed by the ARS de Guadeloupe, and FINESS files their structures under Guadeloupe
# (9A, numbers 9701…): they belong to département 971 and region 01 here.
ATTACHED_TERRITORIES: dict[str, str] = {"977": "971", "978": "971"}


def region_of_department(code: str) -> str:
    """INSEE region code of a département given by its INSEE code; KeyError if unknown."""
    return DEPARTMENTS[code].region_code


def is_corsica_or_overseas(region_code: str) -> bool:
    """True for Corse (94) and the five overseas regions; KeyError for an unknown region."""
    return REGIONS[region_code].corsica_or_overseas


def departments_of_region(region_code: str) -> list[Department]:
    """The départements of a region, in INSEE order; KeyError for an unknown region."""
    if region_code not in REGIONS:
        raise KeyError(region_code)
    return [d for d in DEPARTMENTS.values() if d.region_code == region_code]


def department_from_finess_file(code: str) -> str | None:
    """INSEE code of the `departement` field of a FINESS file row, or None if not a programme one.

    Accepts FINESS's own overseas codes ("9D" -> "974"), INSEE codes ("974", "2a") and
    numbers that lost their leading zero in a spreadsheet ("1" -> "01").
    """
    code = code.strip().upper()
    if code in FINESS_DEPARTMENT_CODES:
        return FINESS_DEPARTMENT_CODES[code]
    if len(code) == 1 and code.isdigit():
        code = "0" + code
    return code if code in DEPARTMENTS else None


def territory_of_commune(code: str) -> str | None:
    """INSEE code of the département or overseas territory of an INSEE commune code.

    "01053" -> "01", "2A004" -> "2A", "97411" -> "974", "98613" -> "986"; None when the
    code is not a commune code (five characters).
    """
    code = code.strip().upper()
    if len(code) != 5 or not (code.isdigit() or (code[:2] in ("2A", "2B") and code[2:].isdigit())):
        return None
    return code[:3] if code.startswith(("97", "98")) else code[:2]


def territory_from_finess_file(code: str) -> str | None:
    """INSEE code of the `departement` field of a FINESS CSV row ("9D" -> "974", "9J" ->
    "986", "1" -> "01"), whether in the programme or not; None when it is no such code."""
    code = code.strip().upper()
    if code in FINESS_DEPARTMENT_CODES:
        return FINESS_DEPARTMENT_CODES[code]
    if code in FINESS_TERRITORY_CODES:
        return FINESS_TERRITORY_CODES[code]
    if len(code) == 1 and code.isdigit():
        code = "0" + code
    if code in DEPARTMENTS or code in OUTSIDE_TERRITORIES or code in ATTACHED_TERRITORIES:
        return code
    return None


def programme_department(territory: str) -> str | None:
    """The programme's département (INSEE code) of a territory code, None outside it."""
    if territory in DEPARTMENTS:
        return territory
    return ATTACHED_TERRITORIES.get(territory)
