"""Parsing a whole batch gives, row for row, what parsing each row on its own gives: the
same counts, the same months and every error with its field, code and message."""

import orjson
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.batches import parse_batch
from app.extracts.models import COUNT_FIELDS
from app.extracts.rules import (
    MAX_COUNT,
    decode_well_formed,
    is_plain_finess,
    parse_row,
    parse_rows,
)
from app.referential.finess import InvalidFiness, check_finess, make_finess
from app.referential.geography import DEPARTMENTS

VALID_FINESS = [
    make_finess(department, serial)
    for department in sorted(DEPARTMENTS)
    for serial in (0, 7, 4321, 99_999)
]

finess_texts = st.one_of(
    st.sampled_from(VALID_FINESS),
    # a valid number with one character changed: wrong key, letters, another département
    st.builds(
        lambda number, at, char: number[:at] + char + number[at + 1 :],
        st.sampled_from(VALID_FINESS),
        st.integers(0, 8),
        st.sampled_from("0123456789AB"),
    ),
    st.sampled_from(["97", "98", "2A", "2B", "20", "96", "00"]).flatmap(
        lambda prefix: st.text("0123456789", min_size=7, max_size=7).map(lambda t: prefix + t)
    ),
    st.text("0123456789AB .\u00a0", max_size=11),
)


def _reference(text: str) -> bool:
    try:
        return check_finess(text) == text
    except InvalidFiness:
        return False


@given(finess_texts)
@settings(max_examples=1000)
def test_plain_finess_is_exactly_a_number_check_finess_leaves_unchanged(text):
    assert is_plain_finess(text) == _reference(text)


def test_every_valid_number_of_every_department_is_plain():
    assert all(is_plain_finess(number) for number in VALID_FINESS)


VALID_MONTHS = ["2024-12", "2025-01", "2025-02", "2025-03", "2025-04"]
months = st.one_of(
    st.sampled_from(VALID_MONTHS),
    st.sampled_from(["0999-01", "2025-13", "2025-1", " 2025-03 ", "", "2025-03-01", "2025-00"]),
    st.none(),
    st.integers(),
)
cells = st.one_of(
    st.integers(-2, 120),
    st.sampled_from([MAX_COUNT, MAX_COUNT + 1, 3.5, 2.0, True, False, None, "", "12", "-3"]),
    st.sampled_from([" 7", "007", "1e3", "\u0663", [1], {"a": 1}]),
)


@st.composite
def raw_rows(draw):
    """Mostly well-formed rows (coherent counts), some with one or a few fields spoiled."""
    accompanied = draw(st.integers(0, 100))
    active = draw(st.integers(0, accompanied))
    eligible = draw(st.integers(0, accompanied))
    row = {
        "finess": draw(st.sampled_from(VALID_FINESS)),
        "period_start": draw(st.sampled_from(VALID_MONTHS[:3])),
        "period_end": draw(st.sampled_from(VALID_MONTHS[2:])),
        "accompanied_persons": accompanied,
        "eligible_persons": eligible,
        "mssante_messages_sent": draw(st.integers(0, 300)),
        "dmp_fed_persons": draw(st.integers(0, eligible)),
        "active_files": active,
        "active_files_with_care_project": draw(st.integers(0, active)),
        "active_files_with_agenda_event": draw(st.integers(0, active)),
        "eprescriptions_imported": draw(st.one_of(st.none(), st.just(""), st.integers(0, 9))),
        "eparcours_exchanges": draw(st.one_of(st.none(), st.integers(0, 9))),
    }
    for _ in range(draw(st.integers(0, 3)) if draw(st.booleans()) else 0):
        name = draw(st.sampled_from(list(row)))
        spoil = draw(st.integers(0, 9))
        if spoil == 0:
            del row[name]
        elif spoil == 1:
            row[draw(st.sampled_from(["active_file", "comment", None]))] = 1
        elif name == "finess":
            row[name] = draw(st.one_of(finess_texts, st.none(), st.integers()))
        elif name in ("period_start", "period_end"):
            row[name] = draw(months)
        else:
            row[name] = draw(cells)
    return row


def _as_text(row):
    return {
        name: value if value is None or isinstance(value, str) else str(value)
        for name, value in row.items()
    }


batches = st.lists(
    st.one_of(raw_rows(), raw_rows(), raw_rows(), st.sampled_from([None, [], "row"])), max_size=20
)


@given(batches)
@settings(max_examples=300)
def test_a_json_batch_parses_as_its_rows_one_by_one(raws):
    assert parse_rows(raws) == [parse_row(i, raw) for i, raw in enumerate(raws)]


@given(st.lists(raw_rows(), max_size=20))
@settings(max_examples=300)
def test_a_csv_batch_parses_as_its_rows_one_by_one(raws):
    cells = [_as_text(raw) for raw in raws]
    assert parse_rows(cells, text_cells=True) == [
        parse_row(i, raw, text_cells=True) for i, raw in enumerate(cells)
    ]


@given(st.lists(raw_rows(), max_size=20))
@settings(max_examples=300)
def test_a_json_body_decoded_at_once_parses_as_read_as_any_json(raws):
    """The one-pass decoder takes a body whose rows are all well formed in type, and its rows
    parse exactly as the same body read as any JSON; it gives up on any other body."""
    try:
        body = orjson.dumps({"extracts": raws}, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # an integer beyond 64 bits: not a body a client sends
        assume(False)
    plain = parse_batch(body, "application/json")
    decoded = decode_well_formed(body)
    if decoded is None:
        assert not all(_well_formed_in_type(raw) for raw in plain)
    else:
        assert all(_well_formed_in_type(raw) for raw in plain)
        assert parse_rows(decoded) == parse_rows(plain)


TEXTS = ("finess", "period_start", "period_end")
REQUIRED = COUNT_FIELDS[:7]


def _well_formed_in_type(raw: dict) -> bool:
    """Known fields only, the texts as texts, the required counts present, every count an
    integer in range or, for an optional one, null."""
    return (
        set(raw) <= {*TEXTS, *COUNT_FIELDS}
        and all(type(raw.get(name)) is str for name in TEXTS)
        and all(name in raw for name in REQUIRED)
        and all(
            (type(value) is int and 0 <= value <= MAX_COUNT)
            or (value is None and name not in REQUIRED)
            for name, value in raw.items()
            if name in COUNT_FIELDS
        )
    )


def test_decoding_gives_up_on_bodies_any_json_reading_refuses_or_reads_otherwise():
    for body in (
        b'{"extracts": [{"finess": "\\ud800"}]}',
        b"\xef\xbb\xbf{}",
        b'{"extracts": null}',
        b'{"note": "\xff", "extracts": []}',  # any other member is read as JSON too
        b'{"note": 1e400, "extracts": []}',
        b'{"note": ' + b"[" * 1100 + b"]" * 1100 + b', "extracts": []}',
        b'{"extracts": [' + b"[" * 1100 + b"]" * 1100 + b"]}",
        b"[]",
        b'{"extracts": [{"finess": "750712184", "period_start": "2025-01", '
        b'"period_end": "2025-03", "accompanied_persons": 1.0}]}',
    ):
        assert decode_well_formed(body) is None, body
