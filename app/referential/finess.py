"""FINESS numbers (SPEC §2): normalise, check the format and Luhn key, read the département.

A FINESS number, géographique (ET) or juridique (EJ), has nine characters:

- positions 1–2: the département ("75"), "2A"/"2B" for Corsica; overseas ones start
  with "97" and carry the territory in position 4 (9701… Guadeloupe, 9702… Martinique,
  9703… Guyane, 9704… La Réunion), Mayotte's start with "98" (9805…);
- positions 3–8: a serial;
- position 9: a Luhn key over the nine digits.

Corsican numbers hold letters and how their key treats them is not published, so they
get the format check only.
"""

import re

from stdnum import luhn

from app.referential.geography import DEPARTMENTS

FINESS_LENGTH = 9

_FORMAT = re.compile(r"(?:[0-9]{2}|2[AB])[0-9]{7}")  # ASCII digits only
_CORSICA = ("2A", "2B")
# Position 4 of a number starting with 97 -> INSEE code of the overseas département.
_OVERSEAS_97 = {"1": "971", "2": "972", "3": "973", "4": "974"}
_REMOVED_WHEN_NORMALISING = str.maketrans("", "", ".")


class InvalidFiness(ValueError):
    """A FINESS number that cannot be used; `str(exc)` says why in a sentence for the sender.

    `code` is a stable reason for programs: "length", "characters", "department" or
    "check_digit".
    """

    def __init__(self, number: str, code: str, message: str) -> None:
        super().__init__(message)
        self.number = number
        self.code = code


def normalise_finess(raw: str) -> str:
    """Remove the spaces and dots people type or paste ("75 071 218 4"), and upper-case."""
    # split() also drops the non-breaking spaces of French number formatting.
    return "".join(raw.split()).translate(_REMOVED_WHEN_NORMALISING).upper()


def _department(number: str) -> str:
    """INSEE code of the département of a well-formed number, or InvalidFiness."""
    prefix = number[:2]
    if prefix in _CORSICA:
        return prefix
    if prefix == "97":
        territory = number[3]
        if territory in _OVERSEAS_97:
            return _OVERSEAS_97[territory]
        if territory == "5":
            raise InvalidFiness(
                number,
                "department",
                f"FINESS {number} is in Saint-Pierre-et-Miquelon (9705…), "
                "which is not a département of the programme",
            )
        raise InvalidFiness(
            number,
            "department",
            f"FINESS {number}: numbers starting with 97 need the overseas territory in "
            f"position 4 (1 Guadeloupe, 2 Martinique, 3 Guyane, 4 La Réunion), not {territory}",
        )
    if prefix == "98":
        # Mayotte's numbers start 9805; 9806 is Wallis-et-Futuna, also listed in FINESS.
        if number[3] == "6":
            raise InvalidFiness(
                number,
                "department",
                f"FINESS {number} is in Wallis-et-Futuna (9806…), "
                "which is not a département of the programme",
            )
        return "976"
    if prefix in DEPARTMENTS:
        return prefix
    raise InvalidFiness(
        number,
        "department",
        f"FINESS {number}: {prefix!r} in positions 1–2 is not a département code",
    )


_DOUBLED = tuple((2 * d) // 10 + (2 * d) % 10 for d in range(10))


def luhn_valid(number: str) -> bool:
    """The Luhn check of a string of digits, as `stdnum.luhn.is_valid` (which a test holds
    it to) but about four times faster: every row of every batch goes through it."""
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = ord(char) - 48
        total += _DOUBLED[digit] if position % 2 else digit
    return total % 10 == 0


def _parse(raw: str) -> tuple[str, str]:
    """(normalised number, INSEE département) of a valid FINESS number, or InvalidFiness."""
    if not isinstance(raw, str):
        raise InvalidFiness(str(raw), "characters", "a FINESS number must be given as text")
    number = normalise_finess(raw)
    if len(number) != FINESS_LENGTH:
        hint = ""
        if len(number) == FINESS_LENGTH - 1 and number.isdigit():
            # Spreadsheets turn 010002129 into 10002129.
            hint = " (a leading 0 lost by a spreadsheet?)"
        raise InvalidFiness(
            number,
            "length",
            f"FINESS {number!r} has {len(number)} characters, a FINESS number has "
            f"{FINESS_LENGTH}{hint}",
        )
    if not _FORMAT.fullmatch(number):
        raise InvalidFiness(
            number,
            "characters",
            f"FINESS {number!r} must be nine digits, or 2A/2B followed by seven digits for Corsica",
        )
    department = _department(number)
    if department not in _CORSICA and not luhn_valid(number):
        raise InvalidFiness(
            number,
            "check_digit",
            f"FINESS {number}: the check digit (9th character) does not match the first "
            "eight, the number is probably mistyped",
        )
    return number, department


def check_finess(raw: str) -> str:
    """The normalised FINESS number, or InvalidFiness saying what is wrong with it."""
    return _parse(raw)[0]


def is_valid_finess(raw: str) -> bool:
    try:
        _parse(raw)
    except InvalidFiness:
        return False
    return True


def department_of_finess(finess: str) -> str:
    """INSEE code of the département of a FINESS number ("970400024" -> "974")."""
    return _parse(finess)[1]


def serial_capacity(department: str) -> int:
    """How many distinct numbers `make_finess` can build for a département.

    Serials below a tenth of it keep a 0 in position 3, as almost all real numbers have.
    """
    if department not in DEPARTMENTS:
        raise ValueError(f"{department!r} is not a département of the programme")
    # Overseas numbers spend position 4 on the territory: one serial digit fewer.
    return 100_000 if len(department) == 3 else 1_000_000


def make_finess(department: str, serial: int) -> str:
    """A valid FINESS number for a département (INSEE code) and a serial in [0, capacity).

    Used by the synthetic generator; distinct serials give distinct numbers.
    """
    capacity = serial_capacity(department)
    if not 0 <= serial < capacity:
        raise ValueError(f"serial must be in [0, {capacity}) for département {department}")
    if department in _CORSICA:
        # The key of 2A/2B numbers is not published: any digit passes the format check.
        return f"{department}{serial:06d}{luhn.calc_check_digit(f'20{serial:06d}')}"
    if len(department) == 3:
        high, low = divmod(serial, 10_000)
        territory = "5" if department == "976" else department[2]
        body = f"{'98' if department == '976' else '97'}{high}{territory}{low:04d}"
    else:
        body = f"{department}{serial:06d}"
    return body + luhn.calc_check_digit(body)
