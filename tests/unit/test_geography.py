"""Regions of annexe 1 and their départements."""

import pytest

from app.referential.geography import (
    DEPARTMENTS,
    FINESS_DEPARTMENT_CODES,
    REGIONS,
    department_from_finess_file,
    departments_of_region,
    is_corsica_or_overseas,
    region_of_department,
)


def test_annexe_1_has_18_regions_and_101_departments():
    assert len(REGIONS) == 18
    assert len(DEPARTMENTS) == 101
    assert set(REGIONS) == {
        "11", "24", "27", "28", "32", "44", "52", "53", "75", "76", "84", "93", "94",
        "01", "02", "03", "04", "06",
    }  # fmt: skip
    assert REGIONS["11"].name == "Île-de-France"
    assert REGIONS["93"].name == "Provence-Alpes-Côte d'Azur"


def test_every_region_has_departments_and_every_department_a_region():
    assert {d.region_code for d in DEPARTMENTS.values()} == set(REGIONS)
    assert sum(len(departments_of_region(code)) for code in REGIONS) == 101


@pytest.mark.parametrize(
    ("region", "count"),
    [("84", 12), ("76", 13), ("75", 12), ("11", 8), ("94", 2), ("44", 10), ("01", 1)],
)
def test_region_sizes(region, count):
    assert len(departments_of_region(region)) == count


def test_department_codes_and_names():
    assert "20" not in DEPARTMENTS
    assert DEPARTMENTS["2A"].name == "Corse-du-Sud"
    assert DEPARTMENTS["2B"].name == "Haute-Corse"
    assert DEPARTMENTS["21"].name == "Côte-d'Or"
    assert DEPARTMENTS["974"].name == "La Réunion"
    assert "975" not in DEPARTMENTS  # Saint-Pierre-et-Miquelon is not in the programme
    assert region_of_department("69") == "84"
    assert region_of_department("2A") == "94"
    assert region_of_department("976") == "06"


def test_corsica_and_overseas():
    assert {code for code in REGIONS if is_corsica_or_overseas(code)} == {
        "94", "01", "02", "03", "04", "06",
    }  # fmt: skip
    assert not is_corsica_or_overseas("11")
    with pytest.raises(KeyError):
        is_corsica_or_overseas("99")


@pytest.mark.parametrize(
    ("raw", "insee"),
    [
        ("9A", "971"),
        ("9B", "972"),
        ("9C", "973"),
        ("9D", "974"),
        ("9F", "976"),
        ("974", "974"),
        ("1", "01"),
        ("01", "01"),
        ("2a", "2A"),
        (" 75 ", "75"),
    ],
)
def test_finess_file_department_codes(raw, insee):
    assert department_from_finess_file(raw) == insee


@pytest.mark.parametrize("raw", ["9E", "9J", "20", "00", "96", "975", ""])
def test_finess_file_codes_outside_the_programme(raw):
    assert department_from_finess_file(raw) is None


def test_finess_overseas_codes_all_point_to_programme_departments():
    assert set(FINESS_DEPARTMENT_CODES.values()) == {"971", "972", "973", "974", "976"}
