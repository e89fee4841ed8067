"""Synthetic FINESS files in the three formats operators download (see `finess_formats`).

- official: the etalab extraction, ISO-8859-1, a metadata line then `structureet` rows;
- reexposition: the header-row CSV, UTF-8, 35 columns;
- finess-plus: the ANS FINESS+ JSON flow, legal entities (`pmej`) with their establishments
  (`ege`), a few of them closed (`etatObjet` I and `dateFermeture`).

Overseas départements use FINESS's own codes in the CSV files (9A Guadeloupe… 9F Mayotte)
and INSEE commune codes in FINESS+. Optionally, structures the programme does not fund
(pharmacies, hospitals, clinics) are mixed in, as in the real files. Writing streams, so a
file of a million establishments costs no more memory than one of ten.
"""

import csv
import math
import os
import random
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from itertools import accumulate

import orjson
from stdnum import luhn

from app.referential.categories import CATEGORIES, Audience, Category
from app.referential.finess import make_finess, serial_capacity
from app.referential.finess_formats import (
    OFFICIAL_ENCODING,
    REEXPOSITION_FIELDS,
    STRUCTUREET_FIELDS,
    FinessFormat,
)
from app.referential.geography import DEPARTMENTS, FINESS_DEPARTMENT_CODES, region_of_department
from app.referential.selection import FinessRecord

ENCODING = OFFICIAL_ENCODING


# --- Synthetic extraction ---------------------------------------------------------------

# Population in thousands (INSEE, about 2020), the weight of each département in a synthetic
# file: the number of ESSMS follows population closely enough for demos and benchmarks.
_POPULATION = {
    "01": 657, "02": 531, "03": 335, "04": 165, "05": 141, "06": 1094, "07": 329, "08": 270,
    "09": 153, "10": 310, "11": 375, "12": 279, "13": 2043, "14": 695, "15": 144, "16": 352,
    "17": 655, "18": 302, "19": 240, "2A": 160, "2B": 182, "21": 534, "22": 600, "23": 116,
    "24": 413, "25": 543, "26": 516, "27": 599, "28": 431, "29": 915, "30": 748, "31": 1415,
    "32": 191, "33": 1623, "34": 1176, "35": 1079, "36": 219, "37": 610, "38": 1271,
    "39": 259, "40": 413, "41": 329, "42": 765, "43": 227, "44": 1429, "45": 680, "46": 174,
    "47": 331, "48": 76, "49": 818, "50": 495, "51": 566, "52": 172, "53": 307, "54": 733,
    "55": 184, "56": 759, "57": 1046, "58": 204, "59": 2608, "60": 829, "61": 279,
    "62": 1466, "63": 662, "64": 682, "65": 229, "66": 479, "67": 1140, "68": 767,
    "69": 1875, "70": 235, "71": 551, "72": 566, "73": 436, "74": 826, "75": 2165,
    "76": 1255, "77": 1421, "78": 1448, "79": 374, "80": 570, "81": 389, "82": 260,
    "83": 1076, "84": 561, "85": 685, "86": 438, "87": 372, "88": 364, "89": 335, "90": 141,
    "91": 1301, "92": 1624, "93": 1644, "94": 1407, "95": 1249, "971": 384, "972": 364,
    "973": 281, "974": 861, "976": 279,
}  # fmt: skip

_PLACES = (
    "Les Érables", "Les Tilleuls", "Les Chênes", "Les Charmilles", "La Roseraie",
    "Le Clos Fleuri", "Les Jardins d'Automne", "La Maison du Lac", "Le Moulin", "Saint-Joseph",
    "Notre-Dame", "Sainte-Thérèse", "Bellevue", "Les Glycines", "Les Lilas", "Les Mimosas",
    "Les Peupliers", "Les Acacias", "Le Verger", "La Source", "Les Hêtres", "L'Orée du Bois",
    "Le Val Fleuri", "Les Cèdres", "Les Marronniers", "La Clairière", "Les Prés Verts",
    "Le Castel", "La Châtaigneraie", "Les Hirondelles", "Jean Moulin", "Simone Veil",
    "Marie Curie", "Louis Pasteur", "Victor Hugo", "George Sand", "Émile Zola", "Pierre Loti",
    "Jules Verne", "Frédéric Mistral", "Les Bruyères", "Le Phare", "L'Arc-en-Ciel",
    "Les Tournesols", "Le Bocage", "La Colline", "Les Vignes", "Le Belvédère",
    "Les Coquelicots", "Les Étangs",
)  # fmt: skip
_COMMUNES = (
    "Beaumont", "Villeneuve", "Saint-Martin", "Châteauneuf", "Montfort", "Fontaine",
    "Neuville", "Belleville", "Saint-Germain", "Sainte-Marie", "Saint-Pierre", "La Chapelle",
    "Villefranche", "Beaulieu", "Rochefort", "Chaumont", "Montreuil", "Vernon", "Écully",
    "Bréville", "Saint-André", "Valence", "Marigny", "Lussac", "Corbières", "Aubière",
)  # fmt: skip
_STREET_TYPES = ("R", "R", "R", "AV", "BD", "CHE", "RTE", "PL", "ALL", "IMP")
_STREETS = (
    "DE LA REPUBLIQUE", "JEAN JAURES", "DU GENERAL DE GAULLE", "VICTOR HUGO", "DES ECOLES",
    "DE LA GARE", "PASTEUR", "DU MOULIN", "DES TILLEULS", "DE L'EGLISE", "DU STADE",
    "DE LA LIBERATION", "DU 8 MAI 1945", "SAINT-JEAN", "DES PRES", "DU CHATEAU",
)  # fmt: skip

# categagretab of each category. Verified against real extractions for 4401 (EHPAD) and
# 4106 (CMPP); the others follow the nomenclature's agrégats (TRE_R65) by their meaning.
_AGGREGATES = {
    "4101": "Etab.Educ.Spéciale pour Déficients Mentaux et Handicapés",
    "4102": "Etab.Educ Spéciale pour Enfants Trouble Conduite et Comport",
    "4103": "Etablissements d'Education Spéciale pour Handicapés Moteurs",
    "4106": "Services à Domicile ou Ambulatoires pour Handicapés",
    "4301": "Etab. et Services d'Hébergement pour Adultes Handicapés",
    "4302": "Etab.et Services de Travail Protégé pour Adultes Handicapés",
    "4305": "Services de Maintien à Domicile pour Handicapés",
    "4401": "Etablissements d'Hébergement pour Personnes Âgées",
    "4402": "Services de Maintien à Domicile pour Personnes Âgées",
    "4501": "Etablissements de l'Aide Sociale à l'Enfance",
    "4601": "Etablissements pour Adultes et Familles en Difficulté",
    "4605": "Etablissements et services multi-clientèles",
}
_CATEGORY_AGGREGATE = {
    "500": "4401", "202": "4401", "207": "4401", "354": "4402", "209": "4605", "460": "4605",
    "183": "4101", "188": "4101", "186": "4102", "192": "4103", "182": "4106", "189": "4106",
    "190": "4106", "246": "4302", "255": "4301", "448": "4301", "449": "4301", "437": "4301",
    "252": "4301", "253": "4301", "382": "4301", "445": "4305", "446": "4305", "177": "4501",
    "214": "4601",
}  # fmt: skip
# NAF code (APE) of the activity, left empty on part of the rows as in the real file.
_CATEGORY_APE = {
    "500": "8710A", "202": "8730A", "207": "8810A", "354": "8810A", "209": "8810A",
    "460": "8810A", "183": "8891B", "188": "8710B", "186": "8891B", "192": "8891B",
    "182": "8891B", "189": "8891B", "190": "8891B", "246": "8810C", "255": "8710C",
    "448": "8710C", "449": "8790B", "445": "8810B", "446": "8810B", "177": "8790A",
    "214": "8790B",
}  # fmt: skip
# Tariff mode (codemft;libmft): values found in real extractions.
_MFT_EHPAD = ("40", "ARS/PCD, Tarif global, habilité aide sociale, recours PUI")
_MFT_DEPARTMENT = ("08", "Président du Conseil Départemental")
_MFT_UNKNOWN = ("99", "Indéterminé")
_DEPARTMENT_FUNDED = frozenset({"202", "460", "449", "446", "177"})
# Telephone prefixes: metropolitan zone by region, overseas by département.
_PHONE_ZONE = {
    "11": "01", "24": "02", "28": "02", "52": "02", "53": "02", "27": "03", "32": "03",
    "44": "03", "84": "04", "93": "04", "94": "04", "75": "05", "76": "05",
}  # fmt: skip
_OVERSEAS_PHONE = {"971": "0590", "972": "0596", "973": "0594", "974": "0262", "976": "0269"}
_FILE_DEPARTMENT_CODE = {insee: finess for finess, insee in FINESS_DEPARTMENT_CODES.items()}
_METADATA_LINE = "finess;etalab;1;2024-01-31"
_POOL_SIZE = 512
_FIRST_OPENING = date(1970, 1, 1)
_LAST_UPDATE = date(2024, 1, 31)


def _upper_ascii(text: str) -> str:
    """As the file writes département names: "Côte-d'Or" -> "COTE-D'OR"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()


_FILE_DEPARTMENT_NAME = {code: _upper_ascii(d.name) for code, d in DEPARTMENTS.items()}
_FILE_COMMUNES = tuple(_upper_ascii(commune) for commune in _COMMUNES)


def _department_quotas(count: int) -> dict[str, int]:
    """How many establishments each département gets: by population, every one at least once."""
    codes = list(DEPARTMENTS)
    floor = 1 if count >= len(codes) else 0
    spread = count - floor * len(codes)
    total = sum(_POPULATION.values())
    exact = {code: spread * _POPULATION[code] / total for code in codes}
    quotas = {code: floor + math.floor(share) for code, share in exact.items()}
    # Largest remainders get the few establishments that rounding down left over.
    left = count - sum(quotas.values())
    by_remainder = sorted(codes, key=lambda code: exact[code] - math.floor(exact[code]))
    for code in by_remainder[len(by_remainder) - left :]:
        quotas[code] += 1
    return quotas


class _Serials:
    """Distinct, scattered FINESS serials for one département, in constant memory.

    A full-period linear congruential sequence over each block of serials (those keeping
    position 3 at 0 first): numbers look random, yet none repeats before the block is used up.
    """

    def __init__(self, department: str, rng: random.Random) -> None:
        self.department = department
        self.block = serial_capacity(department) // 10  # a power of ten
        # Hull-Dobell: full period mod 10^k needs an increment prime to 10 and a
        # multiplier = 1 mod 20 (divisible by 2, 5 and 4 once decremented).
        self.multiplier = 1 + 20 * rng.randrange(1, self.block // 20)
        self.increment = rng.choice((1, 3, 7, 9)) + 10 * rng.randrange(self.block // 10)
        self.state = rng.randrange(self.block)
        self.issued = 0

    def next_number(self) -> str:
        self.state = (self.multiplier * self.state + self.increment) % self.block
        serial = (self.issued // self.block) * self.block + self.state
        self.issued += 1
        return make_finess(self.department, serial)


# Chances of managing 1, 2, 3, 4 or 5 establishments, for the EJs that manage few.
_SMALL_EJ_WEIGHTS = (50, 20, 12, 10, 8)


def _ej_size(rng: random.Random) -> int:
    """How many establishments a legal entity (EJ) manages.

    Most are single associations or public bodies with a handful; a few groups or big
    associations run dozens, which puts organisations on both sides of the "petit organisme
    gestionnaire" threshold (15, or 8 in Corse and overseas).
    """
    draw = rng.random()
    if draw < 0.80:
        return rng.choices(range(1, 6), _SMALL_EJ_WEIGHTS)[0]
    if draw < 0.90:
        return rng.randint(6, 9)
    if draw < 0.98:
        return rng.randint(10, 40)
    return rng.randint(50, 150)


def _establishment_name(rng: random.Random, category: Category) -> str:
    # Home services are named after the area they cover, establishments after their house.
    if category.home_care:
        return f"{category.abbreviation} de {rng.choice(_COMMUNES)}"
    return f"{category.abbreviation} {rng.choice(_PLACES)}"


def synthetic_records(count: int, seed: int = 0) -> Iterator[FinessRecord]:
    """`count` made-up but valid establishments, the same ones for the same seed.

    Départements weighted by population (all 101 present from 101 establishments on),
    categories by their national frequency, each legal entity (EJ) a valid FINESS number
    of the same département managing 1 to 150 establishments. `line` is the line each
    record takes in the file `write_synthetic_finess_file` writes.
    """
    if count < 0:
        raise ValueError("count must be >= 0")
    quotas = _department_quotas(count)
    for department, quota in quotas.items():
        # Each establishment and each EJ takes a serial: at most two per establishment.
        if 2 * quota > serial_capacity(department):
            raise ValueError(f"count {count} is too large for synthetic FINESS numbering")
    return _generate(quotas, random.Random(seed))


def _generate(quotas: dict[str, int], rng: random.Random) -> Iterator[FinessRecord]:
    in_use = [c for c in CATEGORIES.values() if c.in_use and c.weight > 0]
    audiences = list(Audience)
    audience_weights = [sum(c.weight for c in in_use if c.audience is a) for a in audiences]
    audience_cum = list(accumulate(audience_weights))
    by_audience = {a: [c for c in in_use if c.audience is a] for a in audiences}
    category_cum = {a: list(accumulate(c.weight for c in cs)) for a, cs in by_audience.items()}

    line = 1  # the metadata line
    for department, quota in quotas.items():
        if quota == 0:
            continue
        serials = _Serials(department, rng)
        remaining = quota
        while remaining:
            size = min(_ej_size(rng), remaining)
            remaining -= size
            legal_entity = serials.next_number()
            # An organisation works for one public: a group of EHPAD, an association of IME
            # and ESAT...
            audience = rng.choices(audiences, cum_weights=audience_cum)[0]
            for _ in range(size):
                category = rng.choices(by_audience[audience], cum_weights=category_cum[audience])[0]
                line += 1
                yield FinessRecord(
                    where=f"line {line}",
                    finess=serials.next_number(),
                    legal_entity_finess=legal_entity,
                    name=_establishment_name(rng, category),
                    department=department,
                    category_code=category.code,
                    category_label=category.label,
                )


def _digits(rng: random.Random, count: int) -> str:
    return f"{rng.randrange(10**count):0{count}d}"


def _luhn_number(rng: random.Random, prefix: str, length: int) -> str:
    """A number with a valid Luhn key, as SIREN and SIRET have."""
    body = prefix + _digits(rng, length - len(prefix) - 1)
    return body + luhn.calc_check_digit(body)


@cache
def _nics_by_checksum() -> tuple[tuple[str, ...], ...]:
    """NICs (the five digits a SIRET adds to its SIREN), grouped by their own Luhn checksum.

    A Luhn checksum is a sum of per-digit terms, so SIREN + NIC is valid when the NIC's
    checksum cancels the SIREN's: one check per EJ instead of one per establishment.
    """
    buckets: list[list[str]] = [[] for _ in range(10)]
    for nic in range(10, 2_000):  # ~200 per bucket, more than the largest EJ needs
        buckets[luhn.checksum(f"{nic:05d}")].append(f"{nic:05d}")
    return tuple(tuple(bucket) for bucket in buckets)


def _postcode(rng: random.Random, department: str) -> str:
    if department == "2A":
        return f"20{rng.randrange(0, 20) * 10:03d}"
    if department == "2B":
        return f"20{rng.randrange(20, 30) * 10:03d}"
    if len(department) == 3:
        return f"{department}{rng.randrange(0, 10) * 10:02d}"
    return f"{department}{rng.randrange(0, 100) * 10:03d}"


def _localities(rng: random.Random, department: str) -> list[tuple[str, str]]:
    """A few (commune code, "postcode COMMUNE") of a département for its rows to share."""
    localities = []
    for _ in range(_POOL_SIZE // 16):
        if len(department) == 3:
            commune_code = f"{department[2]}{rng.randrange(1, 35):02d}"
        else:
            commune_code = f"{rng.randrange(1, 700):03d}"
        routing = f"{_postcode(rng, department)} {rng.choice(_FILE_COMMUNES)}"
        localities.append((commune_code, routing))
    return localities


def _street(rng: random.Random) -> tuple[str, str, str, str]:
    """numvoie, typvoie, voie, lieuditbp."""
    number = str(rng.randint(1, 250)) if rng.random() < 0.85 else ""
    box = f"BP {rng.randint(1, 400)}" if rng.random() < 0.05 else ""
    return number, rng.choice(_STREET_TYPES), rng.choice(_STREETS), box


def _dates(rng: random.Random) -> tuple[str, str, str]:
    """dateouv, dateautor (authorised before opening), datemaj."""
    opened = _FIRST_OPENING + timedelta(days=rng.randrange(19_000))
    authorised = opened - timedelta(days=rng.randrange(400))
    updated = opened + timedelta(days=rng.randrange((_LAST_UPDATE - opened).days + 1))
    return opened.isoformat(), authorised.isoformat(), updated.isoformat()


# Structures FINESS lists that the programme does not fund, mixed into synthetic files as in
# the real ones: (code, label, categagretab, its label, APE, tariff mode, weight). Values
# found in the réexposition sample.
@dataclass(frozen=True, slots=True)
class _Other:
    label: str
    aggregate: str
    aggregate_label: str
    ape: str
    tariff: tuple[str, str]  # codemft, libmft
    weight: int


_OTHER = {
    "620": _Other("Pharmacie d'Officine", "3201", "Commerce de Biens à Usage Médicaux", "",
                  ("01", "Etablissement Tarif Libre"), 6),
    "355": _Other("Centre Hospitalier (C.H.)", "1102", "Centres Hospitaliers", "8610Z",
                  ("03", "ARS établissements Publics de santé dotation globale"), 1),
    "128": _Other("Etablissement de Soins Chirurgicaux", "1110",
                  "Etablissements de Soins de Courte Durée", "8610Z",
                  ("07", "ARS établissements de santé non financés dotation globale"), 1),
}  # fmt: skip
_OTHER_NAMES = {"620": "PHARMACIE {}", "355": "CENTRE HOSPITALIER {}", "128": "CLINIQUE {}"}


def _with_other_structures(
    records: Iterable[FinessRecord], share: float, rng: random.Random
) -> Iterator[FinessRecord]:
    """The records, and after each legal entity's about `share` times as many structures of
    other categories, each its own legal entity, numbered from the top of the département's
    serials (the programme's numbers come from the bottom)."""
    codes = list(_OTHER)
    weights = [other.weight for other in _OTHER.values()]
    taken: dict[str, int] = {}
    group: list[FinessRecord] = []

    def others(department: str, count: int) -> Iterator[FinessRecord]:
        capacity = serial_capacity(department)
        for _ in range(count):
            used = taken.get(department, 0)
            taken[department] = used + 2
            code = rng.choices(codes, weights)[0]
            place = _upper_ascii(rng.choice(_PLACES if code != "355" else _COMMUNES))
            yield FinessRecord(
                where="",
                finess=make_finess(department, capacity - 1 - used),
                legal_entity_finess=make_finess(department, capacity - 2 - used),
                name=_OTHER_NAMES[code].format(place),
                department=department,
                category_code=code,
                category_label=_OTHER[code].label,
            )

    def flush() -> Iterator[FinessRecord]:
        yield from group
        wanted = share * len(group)
        count = int(wanted) + (rng.random() < wanted - int(wanted))
        yield from others(group[0].department, count)
        group.clear()

    for record in records:
        if group and record.legal_entity_finess != group[0].legal_entity_finess:
            yield from flush()
        group.append(record)
    if group:
        yield from flush()


def _structureet_rows(records: Iterable[FinessRecord], rng: random.Random) -> Iterator[list[str]]:
    """The 32 fields of each record, the address and administrative ones made up."""
    # Rows draw their address and dates from pools: a few random calls per row instead of
    # twenty keep 40 000 rows around a second, and real files repeat streets too.
    streets = [_street(rng) for _ in range(_POOL_SIZE)]
    dates = [_dates(rng) for _ in range(_POOL_SIZE)]
    department, localities, phone_prefix = "", [("", "")], ""
    legal_entity, siren, nic_index = "", "", 0
    nics: tuple[str, ...] = ()
    for record in records:
        if record.department != department:
            department = record.department
            localities = _localities(rng, department)
            phone_prefix = (
                _OVERSEAS_PHONE.get(department) or _PHONE_ZONE[region_of_department(department)]
            )
        if record.legal_entity_finess != legal_entity:
            # Establishments of one EJ share its SIREN, each with its own SIRET.
            legal_entity, siren = record.legal_entity_finess, _luhn_number(rng, "", 9)
            nics = _nics_by_checksum()[-luhn.checksum(siren + "00000") % 10]
            nic_index = rng.randrange(len(nics))
        nic_index += 1  # successive NICs: an EJ's SIRETs are distinct
        code = record.category_code
        mft: tuple[str, str]
        if code in _OTHER:
            other = _OTHER[code]
            aggregate, aggregate_label, ape, mft = (
                other.aggregate,
                other.aggregate_label,
                other.ape,
                other.tariff,
            )
        else:
            aggregate = _CATEGORY_AGGREGATE[code]
            aggregate_label = _AGGREGATES[aggregate]
            ape = _CATEGORY_APE.get(code, "")
            if code == "500":
                mft = _MFT_EHPAD
            elif code in _DEPARTMENT_FUNDED:
                mft = _MFT_DEPARTMENT
            else:
                mft = _MFT_UNKNOWN
        number, street_type, street, box = rng.choice(streets)
        commune_code, routing = rng.choice(localities)
        opened, authorised, updated = rng.choice(dates)
        # One draw decides which optional fields are filled, each at its own rate.
        draw = rng.random()
        yield [
            "structureet",
            record.finess,
            record.legal_entity_finess,
            record.name.upper()[:38],  # rs: the short, upper-case name
            record.name,  # rslongue
            "",  # complrs
            "",  # compldistrib
            number,
            street_type,
            street,
            "",  # compvoie
            box,
            commune_code,
            _FILE_DEPARTMENT_CODE.get(department, department),
            _FILE_DEPARTMENT_NAME[department],
            routing,
            phone_prefix + _digits(rng, 10 - len(phone_prefix)),
            phone_prefix + _digits(rng, 10 - len(phone_prefix)) if draw < 0.4 else "",  # fax
            code,
            record.category_label or "",
            aggregate,
            aggregate_label,
            siren + nics[nic_index % len(nics)] if draw < 0.8 else "",  # siret
            ape if draw > 0.3 else "",
            *mft,
            "",  # codesph: not a health establishment
            "",  # libsph
            opened,
            authorised,
            updated,
            "",  # numuai
        ]


_FIELD = {name: index for index, name in enumerate(STRUCTUREET_FIELDS)}
_GEOLOCATED = "2026-05-04"
_LAMBERT = "1,ATLASANTE,97,BAN,EPSG:2154 RGF93 / Lambert-93 (Métropole)"


def _reexposition_row(row: list[str], rng: random.Random) -> list[str]:
    """A `structureet` row as the réexposition CSV writes it: without the section column,
    with coordinates (made-up Lambert-93 ones, as for metropolitan France)."""
    easting = f"{rng.uniform(100_000, 1_200_000):.1f}"
    northing = f"{rng.uniform(6_050_000, 7_100_000):.1f}"
    return [*row[1:], easting, northing, _LAMBERT, _GEOLOCATED]


def _cog_commune(row: list[str]) -> str:
    """INSEE commune code of a row: département + `commune`, "97" + `commune` overseas."""
    department = FINESS_DEPARTMENT_CODES.get(row[_FIELD["departement"]], row[_FIELD["departement"]])
    return (department if len(department) == 2 else department[:2]) + row[_FIELD["commune"]]


def _ege(row: list[str], serial: int, closed: str | None) -> dict[str, object]:
    """One FINESS+ establishment (`ege`) from its `structureet` row; `closed` its closing date."""
    field = dict(zip(STRUCTUREET_FIELDS, row, strict=True))
    general: dict[str, object] = {
        "egeId": str(serial),
        "dateOuverture": field["dateouv"],
        "datePremiereAutorisation": field["dateautor"],
        # FINESS+ pads the short name to its old fixed width, as the real flow does.
        "nomEgeCourt": field["rs"][:32].ljust(32),
        "nomEgeLong": field["rslongue"],
        "numFinessEge": field["nofinesset"],
    }
    if field["siret"]:
        general["siret"] = field["siret"]
    if closed:
        general["dateFermeture"] = closed
    postcode, _, town = field["ligneacheminement"].partition(" ")
    address: dict[str, object] = {
        "usageAdresse": "03",
        "typeVoie": field["typvoie"].ljust(4),
        "libelleVoie": field["voie"],
        "cogCommune": _cog_commune(row),
        "ligneAcheminement": town,
        "codePostal": postcode,
    }
    if field["numvoie"]:
        address["numeroVoie"] = field["numvoie"]
    if field["lieuditbp"]:
        address["lieuDit"] = field["lieuditbp"]
    return {
        "informationsGeneralesEGE": general,
        "categorieentiteGeographiqueExercice": field["categetab"],
        "modefixationtarifaire": field["codemft"],
        "typeBudget": ["01"],
        "adresse": [address],
        "contact": [
            {"typeContact": {"roleContact": "01"}, "telecom": {"telephone": field["telephone"]}}
        ],
        "engagement": [],
        "evenement": [
            {
                "evenementId": str(2 * serial),
                "dateEnregistrement": f"{field['datemaj']} 00:00:00",
                "dateEvenement": field["dateouv"],
                "etatObjet1": "003",
                "identifiantObjet1": str(serial),
                "systemeMaitre": "01",
                "typeObjet1": "EG",
                "codeEvenement": "003",
            }
        ],
        "roleEge": [],
        "etatObjet": "I" if closed else "A",
        "dateDerniereMaj": f"{closed or field['datemaj']} 00:00:00",
    }


# Share of the synthetic FINESS+ establishments that are closed (etatObjet I, dateFermeture).
CLOSED_SHARE = 0.03


def _pmej(rows: list[list[str]], serial: int, rng: random.Random) -> dict[str, object]:
    first = dict(zip(STRUCTUREET_FIELDS, rows[0], strict=True))
    establishments = []
    for row in rows:
        serial += 1
        closed = None
        if rng.random() < CLOSED_SHARE:
            closed = (date(2024, 1, 1) + timedelta(days=rng.randrange(800))).isoformat()
        establishments.append(_ege(row, serial, closed))
    entity: dict[str, object] = {
        "informationsGeneralesPMEJ": {
            "pmSmsseId": str(serial),
            "dateCreation": first["dateautor"],
            "denominationPm": first["rs"],
            "numFinessPm": first["nofinessej"],
            "statutJuridique": "60",
        },
        "adresse": [{"usageAdresse": "02", "cogCommune": _cog_commune(rows[0])}],
        "contact": [],
        "engagement": [],
        "evenement": [],
        "ege": establishments,
        "etatObjet": "A",
        "dateDerniereMaj": f"{first['datemaj']} 00:00:00",
    }
    if first["siret"]:
        entity["informationsGeneralesPMEJ"]["siren"] = first["siret"][:9]  # type: ignore[index]
    return entity


def _write_finess_plus(
    path: str | os.PathLike[str], rows: Iterator[list[str]], rng: random.Random
) -> None:
    with open(path, "wb") as file:
        file.write(
            b'{\n  "schemaVersion" : "v1.0.0",\n  "generatedAt" : "2026-03-09T15:49:37.615611300Z",'
            b'\n  "gcc" : [ ],\n  "gco" : [ ],\n  "pmej" : ['
        )
        group: list[list[str]] = []
        serial, separator = 0, b"\n"

        def flush() -> None:
            nonlocal serial, separator
            entity = _pmej(group, serial, rng)
            serial += len(group) + 1
            file.write(separator + orjson.dumps(entity, option=orjson.OPT_INDENT_2))
            separator = b",\n"
            group.clear()

        for row in rows:
            if group and row[_FIELD["nofinessej"]] != group[0][_FIELD["nofinessej"]]:
                flush()
            group.append(row)
        if group:
            flush()
        file.write(b" ]\n}")


def write_synthetic_finess_file(
    path: str | os.PathLike[str],
    count: int,
    seed: int = 0,
    format: FinessFormat = FinessFormat.OFFICIAL,
    other_share: float = 0.0,
) -> None:
    """Write a synthetic FINESS file of `count` establishments of the programme (and about
    `other_share` times as many structures of other categories), byte-identical per seed."""
    records: Iterable[FinessRecord] = synthetic_records(count, seed)  # checks count first
    rng = random.Random(f"finess-synthetic-file:{seed}")
    if other_share:
        records = _with_other_structures(records, other_share, rng)
    rows = _structureet_rows(records, rng)
    if format is FinessFormat.FINESS_PLUS:
        _write_finess_plus(path, rows, rng)
        return
    official = format is FinessFormat.OFFICIAL
    with open(path, "w", encoding=ENCODING if official else "utf-8", newline="") as file:
        writer = csv.writer(file, delimiter=";", lineterminator="\n")
        if official:
            file.write(_METADATA_LINE + "\n")
            writer.writerows(rows)
        else:
            writer.writerow(REEXPOSITION_FIELDS)
            writer.writerows(_reexposition_row(row, rng) for row in rows)
