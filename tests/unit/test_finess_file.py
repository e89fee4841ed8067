"""Reading the official FINESS extraction, and writing synthetic ones that read back."""

import csv
from collections import Counter
from pathlib import Path

import pytest
from stdnum.fr import siret

from app.referential.categories import CATEGORIES, category_label
from app.referential.finess import department_of_finess, is_valid_finess
from app.referential.finess_file import (
    ENCODING,
    STRUCTUREET_FIELDS,
    FinessFileError,
    FinessRecord,
    iter_finess_file,
    synthetic_records,
    write_synthetic_finess_file,
)
from app.referential.geography import DEPARTMENTS, is_corsica_or_overseas, region_of_department

SAMPLE = Path(__file__).parent.parent / "data" / "finess_sample.csv"

EHPAD = "Etablissement d'hébergement pour personnes âgées dépendantes"


def test_the_sample_is_in_the_official_format():
    raw = SAMPLE.read_bytes()
    assert raw.startswith(b"finess;etalab;")
    assert "Érables".encode(ENCODING) in raw
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")


def test_reading_the_sample_gives_records_and_errors_by_line():
    items = list(iter_finess_file(SAMPLE))
    records = [item for item in items if isinstance(item, FinessRecord)]
    errors = [item for item in items if isinstance(item, FinessFileError)]

    assert records == [
        FinessRecord(2, "750482135", "750712184", "EHPAD Les Érables", "75", "500", EHPAD),
        FinessRecord(
            3, "010077311", "010077238", "Institut Médico-Éducatif Les Tilleuls", "01", "183",
            "Institut Médico-Educatif (I.M.E.)",
        ),
        # No long name: the short one, its padding cleaned.
        FinessRecord(
            4, "130401177", "130401094", "SSIAD DE MARSEILLE 13E", "13", "354",
            "Service de Soins Infirmiers A Domicile (S.S.I.A.D)",
        ),
        # Quotes inside a name come as a quoted CSV field.
        FinessRecord(
            5, "590128740", "590128666", 'ESAT "Les Ateliers du Nord"', "59", "246",
            "Etablissement et Service d'Aide par le Travail (E.S.A.T.)",
        ),
        FinessRecord(6, "970120549", "970120465", "EHPAD Les Alizés", "971", "500", EHPAD),
        FinessRecord(
            7, "970411872", "970411799", "SAA de Saint-Denis", "974", "460",
            "Service autonomie aide (SAA)",
        ),
        FinessRecord(
            8, "2A0000123", "2A0000115", "Maison d'accueil spécialisée Sainte-Dévote", "2A",
            "255", "Maison d'Accueil Spécialisée (M.A.S.)",
        ),
        FinessRecord(
            11, "980503114", "980503031", "CMPP de Mamoudzou", "976", "189",
            "Centre Médico-Psycho-Pédagogique (C.M.P.P.)",
        ),
        FinessRecord(
            12, "210045613", "210045530", "EAM Les Jardins d'Automne", "21", "448",
            "Etab.Acc.Médicalisé en tout ou partie personnes handicapées",
        ),
    ]  # fmt: skip

    assert [error.line for error in errors] == [9, 10, 13]
    bad_key, short_row, outside = (error.message for error in errors)
    assert bad_key.startswith("nofinesset: FINESS 690788121: the check digit")
    assert "nofinessej" not in bad_key
    assert short_row == "structureet row has 31 fields, expected 32"
    assert "Saint-Pierre-et-Miquelon" in outside
    assert "departement '9E' is not a département of the programme" in outside


def test_a_file_that_is_not_the_extraction_says_so(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("nofinesset;rs\n750712184;EHPAD\n", encoding="utf-8")
    assert list(iter_finess_file(path)) == [
        FinessFileError(
            1,
            "line 1 is not the metadata line of a FINESS extraction (finess;etalab;…): "
            "expected the official file, semicolon-separated and ISO-8859-1",
        )
    ]


def test_rows_without_name_or_category_are_refused(tmp_path):
    fields = dict.fromkeys(STRUCTUREET_FIELDS, "")
    fields.update(structureet="structureet", nofinesset="750712184", nofinessej="750712184")
    fields.update(departement="75")
    path = tmp_path / "finess.csv"
    path.write_text("finess;etalab;1;2024-01-31\n" + ";".join(fields.values()) + "\n", ENCODING)
    [error] = iter_finess_file(path)
    assert error == FinessFileError(
        2, "no name: rs and rslongue are both empty; categetab (category code) is empty"
    )


def test_category_labels_come_from_the_nomenclature():
    assert category_label("500") == EHPAD
    assert category_label("354") == "Service de Soins Infirmiers A Domicile (S.S.I.A.D)"
    assert category_label("209") == "Service autonomie aide et soins (SAAS)"
    assert category_label("460") == "Service autonomie aide (SAA)"
    assert category_label("183") == "Institut Médico-Educatif (I.M.E.)"
    assert category_label("999") is None
    # The file is ISO-8859-1: every label must be writable in it.
    for category in CATEGORIES.values():
        category.label.encode(ENCODING)


def test_synthetic_file_round_trips_with_valid_keys(tmp_path):
    path = tmp_path / "synthetic.csv"
    write_synthetic_finess_file(path, 2_000, seed=7)

    read = list(iter_finess_file(path))
    assert read == list(synthetic_records(2_000, seed=7))
    assert len(read) == 2_000
    assert [record.line for record in read] == list(range(2, 2_002))
    assert len({record.finess for record in read}) == 2_000
    for record in read:
        assert is_valid_finess(record.finess)
        assert is_valid_finess(record.legal_entity_finess)
        assert department_of_finess(record.finess) == record.department
        # Each EJ is registered in the département of its establishments.
        assert department_of_finess(record.legal_entity_finess) == record.department
        assert record.category_label == category_label(record.category_code)
        assert CATEGORIES[record.category_code].in_use


def test_synthetic_file_has_the_official_layout(tmp_path):
    path = tmp_path / "synthetic.csv"
    write_synthetic_finess_file(path, 1_000, seed=3)
    raw = path.read_bytes()
    assert raw.startswith(b"finess;etalab;")
    rows = list(csv.reader(path.open(encoding=ENCODING, newline=""), delimiter=";"))[1:]
    assert len(rows) == 1_000
    assert all(len(row) == 32 and row[0] == "structureet" for row in rows)
    # Names keep their accents, encoded in ISO-8859-1.
    assert any(any(c in row[4] for c in "ÉéèêâôÂ") for row in rows)
    # Overseas départements use FINESS's own codes, as the real file does.
    file_codes = {row[13] for row in rows}
    assert {"9A", "9B", "9C", "9D", "9F"} <= file_codes
    assert not file_codes & {"971", "972", "973", "974", "976"}
    sirets = [row[22] for row in rows if row[22]]
    assert sirets and all(siret.is_valid(number) for number in sirets)
    assert len(set(sirets)) == len(sirets)


def test_synthetic_spread_of_departments_categories_and_organisations():
    records = list(synthetic_records(40_000, seed=0))
    assert len(records) == 40_000

    by_department = Counter(record.department for record in records)
    assert set(by_department) == set(DEPARTMENTS)
    assert by_department.most_common(1)[0][0] == "59"  # Nord, the most populated
    assert by_department["48"] < by_department["33"] / 10  # Lozère vs Gironde

    by_category = Counter(record.category_code for record in records)
    assert by_category.most_common(1)[0][0] == "500"  # EHPAD first
    assert by_category["460"] > by_category["183"] > by_category["192"]

    sizes = Counter(record.legal_entity_finess for record in records).values()
    assert sum(size <= 5 for size in sizes) > 0.75 * len(sizes)
    assert any(10 <= size <= 40 for size in sizes)
    assert any(size >= 50 for size in sizes)
    assert max(sizes) <= 150
    # Organisations on both sides of the "petit organisme gestionnaire" thresholds.
    establishments = Counter(record.legal_entity_finess for record in records)
    department_of = {record.legal_entity_finess: record.department for record in records}

    def is_small(ej: str) -> bool:
        overseas = is_corsica_or_overseas(region_of_department(department_of[ej]))
        return establishments[ej] < (8 if overseas else 15)

    assert any(is_small(ej) for ej in establishments)
    assert not all(is_small(ej) for ej in establishments)


def test_every_department_is_present_from_1000_establishments():
    assert {record.department for record in synthetic_records(1_000)} == set(DEPARTMENTS)


def test_synthetic_files_are_deterministic_by_seed(tmp_path):
    first, again, other = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    write_synthetic_finess_file(first, 500, seed=1)
    write_synthetic_finess_file(again, 500, seed=1)
    write_synthetic_finess_file(other, 500, seed=2)
    assert first.read_bytes() == again.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_small_and_empty_synthetic_files(tmp_path):
    path = tmp_path / "empty.csv"
    write_synthetic_finess_file(path, 0)
    assert path.read_text(ENCODING).splitlines() == ["finess;etalab;1;2024-01-31"]
    assert list(iter_finess_file(path)) == []
    assert len(list(synthetic_records(7, seed=5))) == 7
    with pytest.raises(ValueError):
        synthetic_records(-1)
