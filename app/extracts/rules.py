"""Validation of usage extracts (SPEC §3): pure rules over rows and what is already stored.

A row is parsed field by field (every error is reported, with its field), then checked
against the establishment's stored series: the first measure covers exactly 3 consecutive
months, every later one exactly 1 month after the first window ("sur le mois écoulé mesuré
à chaque fin de mois, avec une période de 3 mois pour la première mesure", annexe 2), and
only completed months (Europe/Paris) may be sent.

One module over 400 lines on purpose: the parsing and the series checks share the row and
the fast paths that ingestion speed rests on (one pass over a decoded batch); split, each
half would reach into the other's internals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec

from app.clock import Month
from app.extracts.models import COUNT_FIELDS, REQUIRED_COUNTS
from app.fields import FieldError
from app.ingestion.outcomes import Outcome
from app.referential.finess import InvalidFiness, check_finess
from app.referential.geography import DEPARTMENTS

JUMP_THRESHOLD = 0.5  # month-on-month change of accompanied_persons that is worth a look
_KNOWN = frozenset(("finess", "period_start", "period_end", *COUNT_FIELDS))
_OPTIONAL = frozenset(COUNT_FIELDS) - frozenset(REQUIRED_COUNTS)

MAX_COUNT = 2_000_000_000

# (field, must not exceed this field, code)
COHERENCE = (
    ("eligible_persons", "accompanied_persons", "exceeds_accompanied_persons"),
    ("dmp_fed_persons", "eligible_persons", "exceeds_eligible_persons"),
    ("active_files", "accompanied_persons", "exceeds_accompanied_persons"),
    ("active_files_with_care_project", "active_files", "exceeds_active_files"),
    ("active_files_with_agenda_event", "active_files", "exceeds_active_files"),
)


@dataclass(slots=True)
class Row:
    """One row of a batch once parsed; `counts` holds the nine count fields."""

    index: int
    finess: str | None
    start: Month | None
    end: Month | None
    counts: dict[str, int | None]
    raw_finess: Any = None
    raw_start: Any = None
    raw_end: Any = None
    first_window: bool = False
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[FieldError] = field(default_factory=list)


# Stored, Previous and Context are read-only by use but not frozen: a batch builds thousands
# of them, and a frozen dataclass costs about four times as much to build.


@dataclass(slots=True)
class Stored:
    """A period already stored for an establishment (its latest revision)."""

    start: Month
    end: Month
    revision: int
    withdrawn: bool
    locked: bool
    counts: tuple[int | None, ...]
    accompanied_persons: int | None


@dataclass(slots=True)
class Previous:
    """The latest active period stored before a row's: what the gap and jump warnings
    compare the row to."""

    start: Month
    end: Month
    accompanied_persons: int | None


@dataclass(slots=True)
class Context:
    """What the database says about one row: the establishment and its series around it."""

    known: bool  # in the referential
    covered: bool  # part of a project of the sender
    first_window: tuple[Month, Month] | None  # earliest active period
    current: Stored | None  # same establishment and period_start
    previous: Previous | None  # latest active period before this row


def parse_count(
    name: str, value: Any, errors: list[FieldError], text_cells: bool, required: bool = True
) -> int | None:
    """A count: a whole number >= 0 (in CSV, text holding one); problems go to `errors`."""
    if type(value) is int and 0 <= value <= MAX_COUNT:  # the common case, first
        return value
    if value is None or value == "":
        if required:
            errors.append(FieldError(name, "required", f"{name} is required"))
        return None
    if text_cells and isinstance(value, str):  # CSV cells are text; JSON counts are numbers
        text = value.strip()
        digits = text.removeprefix("-")
        if digits.isascii() and digits.isdigit():  # not "²" nor other scripts' digits
            value = int(text)
        else:
            errors.append(
                FieldError(name, "not_integer", f"{name} must be a whole number, got {value!r}")
            )
            return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(
            FieldError(name, "not_integer", f"{name} must be a whole number, got {value!r}")
        )
        return None
    if value < 0:
        errors.append(FieldError(name, "negative", f"{name} cannot be negative (got {value})"))
        return None
    if value > MAX_COUNT:
        errors.append(FieldError(name, "too_large", f"{name} is implausibly large ({value})"))
        return None
    return value


def parse_finess(value: Any, errors: list[FieldError]) -> str | None:
    """A row's `finess`: a FINESS ET number, its check digit right; problems go to
    `errors`."""
    if value is None or value == "":
        errors.append(FieldError("finess", "required", "finess is required"))
        return None
    if not isinstance(value, str):
        errors.append(FieldError("finess", "invalid_finess", "finess must be a string"))
        return None
    try:
        return check_finess(value)
    except InvalidFiness as exc:
        errors.append(FieldError("finess", "invalid_finess", str(exc)))
        return None


def parse_month(name: str, value: Any, errors: list[FieldError]) -> Month | None:
    """A month written YYYY-MM; problems go to `errors`."""
    if value is None or value == "":
        errors.append(FieldError(name, "required", f"{name} is required (YYYY-MM)"))
        return None
    try:
        month = Month.parse(value.strip() if isinstance(value, str) else value)
        if month.year < 1000:  # year 0 has no first day; nothing this early is a period here
            raise ValueError(month)
        return month
    except ValueError:
        errors.append(
            FieldError(
                name, "invalid_month", f"{name} must be a month written YYYY-MM, got {value!r}"
            )
        )
        return None


def parse_row(index: int, raw: Any, text_cells: bool = False) -> Row:
    """Type-check one row; every problem is reported with its field.

    `text_cells` is for CSV, whose cells are all text: "12" is then the number 12.
    """
    if not isinstance(raw, Mapping):
        row = Row(index, None, None, None, {})
        row.errors.append(FieldError("extract", "not_an_object", "each extract must be an object"))
        return row
    errors: list[FieldError] = []
    for name in raw:
        if name not in _KNOWN:
            errors.append(
                FieldError(str(name), "unknown_field", f"{name!r} is not a field of an extract")
            )
    finess = parse_finess(raw.get("finess"), errors)
    start = parse_month("period_start", raw.get("period_start"), errors)
    end = parse_month("period_end", raw.get("period_end"), errors)
    counts = {
        name: parse_count(name, raw.get(name), errors, text_cells, name not in _OPTIONAL)
        for name in COUNT_FIELDS
    }
    if start and end and end < start:
        errors.append(
            FieldError("period_end", "end_before_start", "period_end is before period_start")
        )
    if not any(e.field in COUNT_FIELDS for e in errors):
        for name, ceiling, code in COHERENCE:
            if counts[name] > counts[ceiling]:  # type: ignore[operator]
                errors.append(
                    FieldError(
                        name,
                        code,
                        f"{name} ({counts[name]}) cannot exceed {ceiling} ({counts[ceiling]})",
                    )
                )
    return Row(
        index,
        finess,
        start,
        end,
        counts,
        raw_finess=raw.get("finess"),
        raw_start=raw.get("period_start"),
        raw_end=raw.get("period_end"),
        errors=errors,
    )


# Most FINESS numbers arrive already normalised and valid: for those, the checks of
# check_finess come down to their format, the département and the Luhn key, done here on the
# text at once. Any other text (spaces, lower case, a mistake) goes through check_finess.
_METROPOLITAN = frozenset(code for code in DEPARTMENTS if len(code) == 2 and code.isdigit())
_CORSICA = ("2A", "2B")
# ASCII digit -> the Luhn step for a doubled position: twice the digit, its digits added.
_LUHN_DOUBLED = bytes.maketrans(
    b"0123456789", bytes((2 * d) // 10 + (2 * d) % 10 for d in range(10))
)


def is_plain_finess(text: str) -> bool:
    """True when `text` is a valid FINESS number already in its normalised form, that is
    when `check_finess(text) == text` (see app.referential.finess for the rules)."""
    if len(text) != 9 or not text.isascii():
        return False
    if not text.isdigit():
        return text[:2] in _CORSICA and text[2:].isdigit()  # Corsica: no published key
    prefix = text[:2]
    if prefix == "97":  # overseas: the territory in position 4
        if text[3] not in "1234":
            return False
    elif prefix == "98":  # Mayotte, not Wallis-et-Futuna
        if text[3] == "6":
            return False
    elif prefix not in _METROPOLITAN:
        return False
    digits = text.encode()
    # Positions 1, 3, 5, 7, 9 keep their value (ASCII "0" is 48), 2, 4, 6, 8 are doubled.
    return (sum(digits[0::2]) - 5 * 48 + sum(digits[1::2].translate(_LUHN_DOUBLED))) % 10 == 0


def parse_rows(raws: Sequence[Any], text_cells: bool = False) -> list[Row]:
    """`parse_row` over a whole batch, in one tight pass for the rows that are well formed.

    A row whose fields are all known, present and of the expected form is read at once;
    any other row goes through `parse_row`, which names every problem. Either way a row
    comes out exactly as `parse_row` would give it. The rows are the JSON objects of the
    batch, its CSV lines, or the rows of `decode_well_formed`.
    """
    months: dict[str, Month] = {}
    rows = []
    for index, raw in enumerate(raws):
        kind = type(raw)
        if kind is WellFormedExtract:
            row = _parse_decoded(index, raw, months)
            if row is None:
                raw = msgspec.structs.asdict(raw)
        elif kind is dict:
            row = _parse_well_formed(index, raw, text_cells, months)
        else:
            row = None
        rows.append(row if row is not None else parse_row(index, raw, text_cells))
    return rows


# --- A JSON batch whose rows are all well formed in type, decoded in one pass -------------

_Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)]


class WellFormedExtract(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A JSON extract with only known fields, the texts as texts and every count an integer
    in range (the optional ones may be absent or null). Its values may still be wrong: a
    FINESS key, a month, the coherence of the counts (`parse_rows` checks them)."""

    finess: str
    period_start: str
    period_end: str
    accompanied_persons: _Count
    eligible_persons: _Count
    mssante_messages_sent: _Count
    dmp_fed_persons: _Count
    active_files: _Count
    active_files_with_care_project: _Count
    active_files_with_agenda_event: _Count
    eprescriptions_imported: _Count | None = None
    eparcours_exchanges: _Count | None = None


assert WellFormedExtract.__struct_fields__[3:] == COUNT_FIELDS
assert WellFormedExtract.__struct_fields__[3 : 3 + len(REQUIRED_COUNTS)] == REQUIRED_COUNTS


class _WellFormedBatch(msgspec.Struct, forbid_unknown_fields=True):
    # Another member would be skipped unread, where reading the body as any JSON checks it.
    extracts: list[WellFormedExtract]


_DECODER = msgspec.json.Decoder(_WellFormedBatch)


def decode_well_formed(body: bytes) -> list[WellFormedExtract] | None:
    """The rows of a JSON batch `{"extracts": [...]}`, decoded and type-checked in one pass
    when every row is well formed in type; None otherwise. The batch is then read as any
    JSON, and each row is parsed on its own (`parse_row` names every problem)."""
    try:
        return _DECODER.decode(body).extracts
    except (msgspec.MsgspecError, ValueError, RecursionError):  # bad UTF-8: ValueError
        return None


def _parse_decoded(index: int, raw: WellFormedExtract, months: dict[str, Month]) -> Row | None:
    """The Row of a decoded row whose values are valid, else None (for `parse_row`)."""
    if not is_plain_finess(raw.finess):
        return None
    counts = dict(zip(COUNT_FIELDS, msgspec.structs.astuple(raw)[3:], strict=True))
    return _valid_row(index, raw.finess, raw.period_start, raw.period_end, counts, months)


def _parse_well_formed(
    index: int, raw: dict[str, Any], text_cells: bool, months: dict[str, Month]
) -> Row | None:
    """The Row of a well-formed row, or None for `parse_row` to report what is wrong."""
    if not raw.keys() <= _KNOWN:
        return None
    finess = raw.get("finess")
    if type(finess) is not str or not is_plain_finess(finess):
        return None
    counts = _well_formed_counts(raw, text_cells)
    if counts is None:
        return None
    return _valid_row(index, finess, raw.get("period_start"), raw.get("period_end"), counts, months)


def _valid_row(
    index: int,
    finess: str,
    raw_start: Any,
    raw_end: Any,
    counts: dict[str, int | None],
    months: dict[str, Month],
) -> Row | None:
    """The Row of a plain FINESS and valid counts when its period and the coherence of its
    counts hold too, else None (for `parse_row`)."""
    start = _known_month(raw_start, months)
    end = _known_month(raw_end, months)
    if start is None or end is None or end < start:
        return None
    for name, ceiling, _ in COHERENCE:
        if counts[name] > counts[ceiling]:  # type: ignore[operator]
            return None
    return Row(
        index, finess, start, end, counts, raw_finess=finess, raw_start=raw_start, raw_end=raw_end
    )


def _well_formed_counts(raw: dict[str, Any], text_cells: bool) -> dict[str, int | None] | None:
    """The nine counts of a row when each is a valid count (or an absent optional one)."""
    counts: dict[str, int | None] = {}
    for name in COUNT_FIELDS:
        value = raw.get(name)
        if type(value) is not int or not 0 <= value <= MAX_COUNT:
            if value is None or value == "":
                if name not in _OPTIONAL:
                    return None
                value = None
            elif not text_cells or (value := _count_in_text(value)) is None:
                return None
        counts[name] = value
    return counts


def _count_in_text(value: Any) -> int | None:
    """A CSV cell of plain ASCII digits as its count, else None (then parse_count says why)."""
    if type(value) is str and value.isdigit() and value.isascii():
        number = int(value)
        if number <= MAX_COUNT:
            return number
    return None


def _known_month(value: Any, months: dict[str, Month]) -> Month | None:
    """The month a valid YYYY-MM text names (remembered for the batch), else None."""
    if type(value) is not str:
        return None
    month = months.get(value)
    if month is None:
        errors: list[FieldError] = []
        month = parse_month("period", value, errors)
        if month is None:
            return None
        months[value] = month
    return month


def counts_tuple(counts: Mapping[str, int | None]) -> tuple[int | None, ...]:
    return tuple(map(counts.get, COUNT_FIELDS))


@dataclass(frozen=True, slots=True)
class Windows:
    """Window lengths of the campaign: 3 months for the first measure, then 1."""

    first: int = 3
    later: int = 1


def check_against_series(
    rows: Sequence[Row],
    contexts: Mapping[int, Context],
    current: Month,
    windows: Windows = Windows(),
) -> None:
    """Apply the rules that depend on the stored series, in period order per establishment.

    Rows of the same batch count as stored once accepted, so a batch may carry an
    establishment's first window and the months after it.
    """
    # Most establishments have a single row in a batch: only those with several get a
    # list of their rows and a check for duplicates.
    single: dict[str, Row] = {}
    several: dict[str, list[Row]] = {}
    starts: dict[str, dict[Month, int]] = {}
    for row in rows:
        if row.errors or row.finess is None or row.start is None:
            continue
        other = single.setdefault(row.finess, row)
        if other is row:
            continue
        seen = starts.get(row.finess)
        if seen is None:
            seen = starts[row.finess] = {other.start: other.index}  # type: ignore[dict-item]
            several[row.finess] = [other]
        index = seen.setdefault(row.start, row.index)
        if index != row.index:
            row.errors.append(
                FieldError(
                    "period_start",
                    "duplicate_in_batch",
                    f"the same establishment and period are already at index {index}",
                )
            )
            continue
        several[row.finess].append(row)

    for finess, row in single.items():
        if finess not in several:
            _check_series((row,), contexts, current, windows)
    for series in several.values():
        series.sort(key=lambda r: r.start)  # type: ignore[arg-type,return-value]
        _check_series(series, contexts, current, windows)


def _check_series(
    series: Sequence[Row], contexts: Mapping[int, Context], current: Month, windows: Windows
) -> None:
    """One establishment's rows of the batch, in period order."""
    first: tuple[Month, Month] | None = None
    last_accepted: Row | None = None
    for row in series:
        ctx = contexts[row.index]
        if first is None:
            first = ctx.first_window
        _check_one(row, ctx, first, current, windows)
        if row.errors:
            continue
        if first is None:
            first = (row.start, row.end)  # type: ignore[assignment]
        row.first_window = (row.start, row.end) == first
        _warn(row, ctx, last_accepted)
        last_accepted = row


def _check_one(
    row: Row, ctx: Context, first: tuple[Month, Month] | None, current: Month, windows: Windows
) -> None:
    start, end = row.start, row.end
    assert start is not None and end is not None
    if not ctx.known:
        row.errors.append(
            FieldError("finess", "unknown_finess", f"{row.finess} is not in the FINESS referential")
        )
        return
    if not ctx.covered:
        row.errors.append(
            FieldError(
                "finess",
                "not_covered",
                f"{row.finess} is not an establishment of a project of this vendor",
            )
        )
        return
    if end >= current:
        row.errors.append(
            FieldError(
                "period_end",
                "period_not_completed",
                f"{end} is not a completed month yet (months complete at their end, Europe/Paris)",
            )
        )
    length = end - start + 1
    if first is None or (start, end) == first:
        if length != windows.first:
            row.errors.append(
                FieldError(
                    "period_end",
                    "window_length",
                    f"the first measure of an establishment covers exactly {windows.first} "
                    f"consecutive months; {start} to {end} is {length}",
                )
            )
    elif start <= first[1]:
        row.errors.append(
            FieldError(
                "period_start",
                "before_first_window",
                f"{start} precedes the end of the first window ({first[0]} to {first[1]})",
            )
        )
    elif length != windows.later:
        row.errors.append(
            FieldError(
                "period_end",
                "window_length",
                f"after the first window every measure covers exactly {windows.later} month(s); "
                f"{start} to {end} is {length}",
            )
        )
    if ctx.current is not None and ctx.current.locked:
        row.errors.append(
            FieldError(
                "period_start",
                "period_locked",
                f"{start} to {end} is frozen by a balance-payment decision and cannot be revised",
            )
        )


def _warn(row: Row, ctx: Context, batch_previous: Row | None) -> None:
    accompanied = row.counts["accompanied_persons"]
    if accompanied == 0:
        row.warnings.append(
            FieldError(
                "accompanied_persons",
                "zero_accompanied_persons",
                "no person accompanied over the period: no rate can be computed",
            )
        )
    previous_end: Month | None = None
    previous_accompanied: int | None = None
    stored = ctx.previous
    if (
        batch_previous is not None
        and batch_previous.start is not None
        and (stored is None or batch_previous.start > stored.start)
    ):
        previous_end, previous_accompanied = (
            batch_previous.end,
            batch_previous.counts["accompanied_persons"],
        )
    elif stored is not None:
        previous_end, previous_accompanied = stored.end, stored.accompanied_persons
    if previous_end is None:
        return
    assert row.start is not None
    missing = row.start - previous_end - 1
    if missing > 0:
        row.warnings.append(
            FieldError(
                "period_start",
                "gap",
                f"no extract received for the {missing} month(s) between {previous_end} "
                f"and {row.start}",
            )
        )
    if previous_accompanied and accompanied is not None:
        change = abs(accompanied - previous_accompanied) / previous_accompanied
        if change > JUMP_THRESHOLD:
            row.warnings.append(
                FieldError(
                    "accompanied_persons",
                    "accompanied_persons_jump",
                    f"accompanied_persons changed by {change:.0%} since {previous_end} "
                    f"({previous_accompanied} to {accompanied})",
                )
            )


# Enum members read once: reading one from its class costs ten times a global's lookup, and
# this runs for every row.
_CREATED_FIRST = (Outcome.CREATED, 1)
_UNCHANGED, _REVISED = Outcome.UNCHANGED, Outcome.REVISED


def outcome(row: Row, ctx: Context) -> tuple[Outcome, int]:
    """Predicted outcome and revision of a valid row: created, revised or unchanged."""
    stored = ctx.current
    if stored is None:
        return _CREATED_FIRST
    if not stored.withdrawn and stored.counts == counts_tuple(row.counts):
        return _UNCHANGED, stored.revision
    return _REVISED, stored.revision + 1
