"""Synthetic FINESS files in the three formats, that read back as the records they were
written from."""

import csv
import json
from collections import Counter
from pathlib import Path

import pytest
from stdnum.fr import siret

from app.referential.categories import CATEGORIES, category_label
from app.referential.finess import department_of_finess, is_valid_finess
from app.referential.finess_file import (
    CLOSED_SHARE,
    ENCODING,
    synthetic_records,
    write_synthetic_finess_file,
)
from app.referential.finess_formats import (
    REEXPOSITION_FIELDS,
    FinessFormat,
    FinessRow,
    open_finess_file,
)
from app.referential.geography import DEPARTMENTS, is_corsica_or_overseas, region_of_department
from app.referential.selection import FinessRecord, Skipped, SkipReason, select

EHPAD = "Etablissement d'hébergement pour personnes âgées dépendantes"


def read_back(path: Path) -> list:
    with path.open("rb") as binary:
        finess_file = open_finess_file(binary)
        return [select(row) if isinstance(row, FinessRow) else row for row in finess_file.rows]


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

    read = read_back(path)
    assert read == list(synthetic_records(2_000, seed=7))
    assert len(read) == 2_000
    assert [record.where for record in read] == [f"line {n}" for n in range(2, 2_002)]
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
    assert read_back(path) == []
    assert len(list(synthetic_records(7, seed=5))) == 7
    with pytest.raises(ValueError):
        synthetic_records(-1)


def _same_establishment(record: FinessRecord) -> tuple:
    return (record.finess, record.legal_entity_finess, record.name, record.department,
            record.category_code, record.category_label)  # fmt: skip


@pytest.mark.parametrize("format", [FinessFormat.REEXPOSITION, FinessFormat.FINESS_PLUS])
def test_the_newer_formats_read_back_with_other_structures_skipped(tmp_path, format):
    path = tmp_path / "synthetic"
    write_synthetic_finess_file(path, 1_500, seed=4, format=format, other_share=1.0)
    read = read_back(path)
    records = [item for item in read if isinstance(item, FinessRecord)]
    assert [_same_establishment(r) for r in records] == [
        _same_establishment(r) for r in synthetic_records(1_500, seed=4)
    ]
    skips = Counter(item.key for item in read if isinstance(item, Skipped))
    assert {item.reason for item in read if isinstance(item, Skipped)} == {SkipReason.CATEGORY}
    assert set(skips) == {"620", "355", "128"}
    assert 1_200 < sum(skips.values()) < 1_800  # about one other structure per establishment
    closed = [r for r in records if r.closed_on]
    if format is FinessFormat.FINESS_PLUS:
        assert 0.5 * CLOSED_SHARE < len(closed) / len(records) < 2 * CLOSED_SHARE
    else:
        assert closed == []  # the CSV formats give no closing date


def test_the_reexposition_file_is_utf8_with_its_header(tmp_path):
    path = tmp_path / "finess_etablissements.csv"
    write_synthetic_finess_file(path, 300, seed=2, format=FinessFormat.REEXPOSITION)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == ";".join(REEXPOSITION_FIELDS)
    rows = list(csv.reader(lines[1:], delimiter=";"))
    assert len(rows) == 300 and all(len(row) == 35 for row in rows)


def test_the_finess_plus_file_names_are_padded_and_communes_overseas_are_insee(tmp_path):
    path = tmp_path / "structures.json"
    write_synthetic_finess_file(path, 500, seed=2, format=FinessFormat.FINESS_PLUS)
    document = json.loads(path.read_bytes())
    assert document["schemaVersion"] == "v1.0.0"
    establishments = [ege for pmej in document["pmej"] for ege in pmej["ege"]]
    assert len(establishments) == 500
    short_names = [ege["informationsGeneralesEGE"]["nomEgeCourt"] for ege in establishments]
    assert any(name != name.strip() for name in short_names)
    communes = {ege["adresse"][0]["cogCommune"] for ege in establishments}
    assert all(len(code) == 5 for code in communes)
    assert {code[:3] for code in communes} >= {"971", "972", "973", "974", "976"}
