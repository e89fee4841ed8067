"""FINESS number rules of SPEC §2: normalisation, format, département, Luhn key."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.referential.finess import (
    InvalidFiness,
    check_finess,
    department_of_finess,
    is_valid_finess,
    make_finess,
    normalise_finess,
    serial_capacity,
)
from app.referential.geography import DEPARTMENTS


def test_the_spec_example_is_valid():
    assert check_finess("750712184") == "750712184"
    assert is_valid_finess("750712184")
    assert department_of_finess("750712184") == "75"


@pytest.mark.parametrize(
    "typed",
    ["75 071 218 4", "75.071.218.4", " 750712184 ", "75\u00a0071\u00a0218\u00a04"],
)
def test_spaces_and_dots_are_normalised_away(typed):
    assert normalise_finess(typed) == "750712184"
    assert check_finess(typed) == "750712184"


def test_a_wrong_check_digit_is_refused_with_the_reason():
    with pytest.raises(InvalidFiness) as caught:
        check_finess("750712185")
    assert caught.value.code == "check_digit"
    assert "check digit" in str(caught.value)
    assert "750712185" in str(caught.value)
    assert not is_valid_finess("750712185")


@pytest.mark.parametrize(
    ("raw", "code", "words"),
    [
        ("75071218", "length", "8 characters"),
        ("7507121840", "length", "10 characters"),
        ("", "length", "0 characters"),
        ("75071218X", "characters", "nine digits"),
        ("7507121\u06634", "characters", "nine digits"),  # an Arabic-Indic digit
        ("2C0000123", "characters", "2A/2B"),
        ("000000000", "department", "'00'"),
        ("200000000", "department", "'20'"),
        ("960000001", "department", "'96'"),
    ],
)
def test_malformed_numbers_say_what_is_wrong(raw, code, words):
    with pytest.raises(InvalidFiness) as caught:
        check_finess(raw)
    assert caught.value.code == code
    assert words in str(caught.value)


def test_a_number_that_lost_its_leading_zero_gets_a_hint():
    with pytest.raises(InvalidFiness, match="leading 0"):
        check_finess("10000024")


def test_non_text_is_refused_not_crashed():
    assert not is_valid_finess(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("finess", "department"),
    [
        # Real numbers from the public extraction: the territory is in position 4.
        ("970100400", "971"),  # Guadeloupe
        ("970210126", "972"),  # Martinique
        ("970300026", "973"),  # Guyane
        ("970400024", "974"),  # La Réunion
        ("980501506", "976"),  # Mayotte starts with 98
        ("010000024", "01"),
    ],
)
def test_overseas_numbers_map_to_their_insee_department(finess, department):
    assert check_finess(finess) == finess
    assert department_of_finess(finess) == department


@pytest.mark.parametrize(
    ("finess", "territory"),
    [("970500427", "Saint-Pierre-et-Miquelon"), ("980600027", "Wallis-et-Futuna")],
)
def test_territories_outside_the_programme_are_refused(finess, territory):
    with pytest.raises(InvalidFiness) as caught:
        check_finess(finess)
    assert caught.value.code == "department"
    assert territory in str(caught.value)


def test_corsican_numbers_get_the_format_check_only():
    # How the key treats letters is not published: any last digit passes.
    for key in "0123456789":
        assert check_finess(f"2A000012{key}") == f"2A000012{key}"
    assert check_finess("2b 000 123 4") == "2B0001234"
    assert department_of_finess("2B0001234") == "2B"
    assert not is_valid_finess("2A00001X3")


def test_made_numbers_are_valid_and_in_their_department():
    for department in DEPARTMENTS:
        capacity = serial_capacity(department)
        for serial in (0, 1, 4_321, capacity // 10 - 1, capacity - 1):
            number = make_finess(department, serial)
            assert check_finess(number) == number
            assert department_of_finess(number) == department


def test_made_numbers_look_like_real_ones():
    assert make_finess("75", 71218) == "750712184"
    assert make_finess("974", 2) == "970400024"
    assert make_finess("976", 150) == "980501506"


def test_distinct_serials_give_distinct_numbers():
    numbers = {make_finess("974", serial) for serial in range(serial_capacity("974"))}
    assert len(numbers) == serial_capacity("974") == 100_000


def test_make_finess_refuses_what_it_cannot_build():
    with pytest.raises(ValueError):
        make_finess("75", serial_capacity("75"))
    with pytest.raises(ValueError):
        make_finess("75", -1)
    with pytest.raises(ValueError):
        make_finess("975", 1)


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_fast_luhn_agrees_with_stdnum(number):
    from stdnum import luhn

    from app.referential.finess import luhn_valid

    assert luhn_valid(number) == luhn.is_valid(number)
