"""Read the FINESS files operators download, in any of their three formats, as a stream.

- **official**: the etalab extraction ("FINESS Extraction du Fichier des établissements"), no
  header, a metadata line `finess;etalab;…`, then `structureet` rows of 32 fields and rows of
  other kinds (`geolocalisation`…) that are skipped. ISO-8859-1 in older files, UTF-8 in 2026.
- **reexposition**: the header-row CSV that succeeded it (`finess_etablissements.csv`): the 31
  `structureet` fields without the section column, then `coordxet;coordyet;sourcecoordet;
  datemaj_geoloc`; UTF-8.
- **finess-plus**: the ANS FINESS+ "Structures" JSON flow, schema v1: legal entities `pmej[]`,
  each with its establishments `ege[]`.

The format is recognised from the content, never from the file name; the CSV encoding too
(a BOM, else a strict UTF-8 attempt, else Windows-1252 / ISO-8859-1). Both CSV formats follow
RFC 4180 quoting with `;`. Rows come one at a time and memory does not grow with the file.
A file that cannot be read as a whole (another kind of file, a wrong column count, truncated
JSON) raises `InvalidFinessFile` naming the line or JSON path; a row whose content is wrong
comes as a `FinessFileError` and the reading goes on.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import IO, Any

import ijson

from app.referential.geography import territory_from_finess_file, territory_of_commune

STRUCTUREET_FIELDS = (
    "structureet", "nofinesset", "nofinessej", "rs", "rslongue", "complrs", "compldistrib",
    "numvoie", "typvoie", "voie", "compvoie", "lieuditbp", "commune", "departement",
    "libdepartement", "ligneacheminement", "telephone", "telecopie", "categetab",
    "libcategetab", "categagretab", "libcategagretab", "siret", "codeape", "codemft",
    "libmft", "codesph", "libsph", "dateouv", "dateautor", "datemaj", "numuai",
)  # fmt: skip
REEXPOSITION_FIELDS = (
    *STRUCTUREET_FIELDS[1:],
    "coordxet", "coordyet", "sourcecoordet", "datemaj_geoloc",
)  # fmt: skip
OFFICIAL_ENCODING = "iso-8859-1"
_HEAD_BYTES = 65_536
_SCHEMA_VERSION = re.compile(rb'"schemaVersion"\s*:\s*"v?1[.\d]*"')
_CLOSING_STATE = "I"  # FINESS+ etatObjet: A actif, I inactif


class FinessFormat(StrEnum):
    OFFICIAL = "official"
    REEXPOSITION = "reexposition"
    FINESS_PLUS = "finess-plus"


@dataclass(frozen=True, slots=True)
class FinessRow:
    """One structure as the file describes it, before the programme's rules.

    `where` locates it ("line 12", "pmej[3].ege[1]"); `territory` is the INSEE code of its
    département or overseas territory ("974", "986"), None when the file's code is not one;
    `raw_territory` is what the file wrote.
    """

    where: str
    finess: str
    legal_entity_finess: str
    name: str
    territory: str | None
    raw_territory: str
    category_code: str
    category_label: str | None
    closed_on: date | None


@dataclass(frozen=True, slots=True)
class FinessFileError:
    """A row that cannot be used, and why; the rest of the file is read."""

    where: str
    message: str


class InvalidFinessFile(ValueError):
    """A file that cannot be imported at all: `where` (a line, a JSON path) and why."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


class UnreadableFinessFile(InvalidFinessFile):
    """A file that is not even well-formed (malformed JSON), as opposed to a readable file of
    another kind."""


class FinessFile:
    """An open FINESS file: its format, its rows (or row errors) in order, and its encoding
    (known for sure once the rows are read: "ascii" when no line needed more)."""

    def __init__(
        self,
        format: FinessFormat,
        rows: Iterator[FinessRow | FinessFileError],
        lines: _DecodedLines | None = None,
    ) -> None:
        self.format = format
        self.rows = rows
        self._lines = lines

    @property
    def encoding(self) -> str:
        return self._lines.encoding if self._lines else "utf-8"


def clean(text: str) -> str:
    """Without padding nor doubled inner spaces ("CMPP  DE LYON  " -> "CMPP DE LYON")."""
    return " ".join(text.split())


def open_finess_file(binary: io.BufferedReader) -> FinessFile:
    """Recognise the format of a binary stream positioned at its start, and read it lazily.

    `binary` must offer `peek` (an `io.BufferedReader`, as `open(path, "rb")` gives).
    """
    head = binary.peek(_HEAD_BYTES)[:_HEAD_BYTES]
    start = head.removeprefix(codecs.BOM_UTF8).lstrip()
    if start.startswith(b"{"):
        if not _SCHEMA_VERSION.search(head):
            _check_json_head(head, whole=len(head) < _HEAD_BYTES)
            raise InvalidFinessFile(
                "$",
                "a JSON file that is not the FINESS+ structures flow: no schemaVersion v1 at "
                "its start",
            )
        return FinessFile(FinessFormat.FINESS_PLUS, _finess_plus_rows(binary))
    if start.startswith(b"PK\x03\x04"):
        raise InvalidFinessFile("line 1", "a ZIP archive, not a FINESS file: unzip it first")
    lines = _DecodedLines(binary)
    first = next(lines, "")
    if "\x00" in first:
        raise InvalidFinessFile("line 1", "a binary file, not a FINESS file")
    kind = first.split(";", 1)[0].strip().lstrip("\ufeff")
    if kind in ("finess", "structureet"):
        return FinessFile(FinessFormat.OFFICIAL, _official_rows(first, lines), lines)
    if kind == "nofinesset":
        return FinessFile(FinessFormat.REEXPOSITION, _reexposition_rows(first, lines), lines)
    raise InvalidFinessFile(
        "line 1",
        "not a FINESS file: expected the official extraction (first line finess;etalab;…), "
        "the réexposition CSV (header nofinesset;nofinessej;…) or the FINESS+ JSON flow",
    )


def _check_json_head(head: bytes, whole: bool) -> None:
    """UnreadableFinessFile if the start of a JSON file (all of it when `whole`) is not
    well-formed JSON."""
    try:
        for _ in ijson.parse(io.BytesIO(head)):
            pass
    except ijson.JSONError as exc:
        reason = str(exc).splitlines()[0]
        if whole or "premature EOF" not in reason:
            raise UnreadableFinessFile("$", f"not well-formed JSON: {reason}") from None


class _DecodedLines:
    """Lines of a CSV file as text: UTF-8 (with or without BOM) when every line is valid
    UTF-8, otherwise Windows-1252 with ISO-8859-1 for the five bytes it leaves undefined.

    Decided at the first line holding a non-ASCII byte: a valid UTF-8 sequence there makes the
    file UTF-8, and a later line that is not valid UTF-8 is an error (a file mixing encodings).
    """

    def __init__(self, binary: IO[bytes]) -> None:
        self._binary = binary
        self.encoding = "ascii"
        self.line = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        raw = self._binary.readline()
        if not raw:
            raise StopIteration
        self.line += 1
        if self.line == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
            self.encoding = "utf-8"
        if raw.isascii():
            return raw.decode("ascii")
        if self.encoding == "windows-1252":
            return raw.decode("cp1252", "latin1_fallback")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if self.encoding == "utf-8":
                raise InvalidFinessFile(
                    f"line {self.line}",
                    f"not valid UTF-8 (byte {exc.start + 1} of the line) while the lines "
                    "before it are: a file mixing encodings",
                ) from None
            self.encoding = "windows-1252"
            return raw.decode("cp1252", "latin1_fallback")
        self.encoding = "utf-8"
        return text


def _latin1_fallback(exc: UnicodeError) -> tuple[str, int]:
    # The five bytes Windows-1252 leaves undefined read as ISO-8859-1 does.
    assert isinstance(exc, UnicodeDecodeError)
    return exc.object[exc.start : exc.end].decode("latin-1"), exc.end


codecs.register_error("latin1_fallback", _latin1_fallback)


def _csv_rows(first: str, lines: _DecodedLines) -> Iterator[tuple[int, list[str]]]:
    """(line where the row starts, fields) of every non-empty CSV row, line 1 included."""

    def all_lines() -> Iterator[str]:
        yield first
        yield from lines

    reader = csv.reader(all_lines(), delimiter=";", quotechar='"', strict=True)
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InvalidFinessFile(f"line {start}", f"not readable as CSV: {exc}") from None
        if row and any(field.strip() for field in row):
            yield start, row
        # line_num counts physical lines, so it stays right after a multi-line field.
        start = reader.line_num + 1


def _date(value: str, where: str, field: str) -> date | FinessFileError | None:
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return FinessFileError(where, f"{field} {value!r} is not a date (YYYY-MM-DD)")


def _structureet_row(where: str, field: dict[str, str]) -> FinessRow:
    raw_territory = field["departement"].strip()
    return FinessRow(
        where=where,
        finess=field["nofinesset"],
        legal_entity_finess=field["nofinessej"],
        name=clean(field["rslongue"]) or clean(field["rs"]),
        territory=territory_from_finess_file(raw_territory),
        raw_territory=raw_territory,
        category_code=field["categetab"].strip(),
        category_label=clean(field["libcategetab"]) or None,
        closed_on=None,  # the CSV formats list open structures and give no closing date
    )


def _official_rows(first: str, lines: _DecodedLines) -> Iterator[FinessRow | FinessFileError]:
    expected = len(STRUCTUREET_FIELDS)
    for line, row in _csv_rows(first, lines):
        if row[0] != "structureet":
            continue  # the metadata line, geolocalisation rows…
        if len(row) != expected:
            raise InvalidFinessFile(
                f"line {line}", f"structureet row has {len(row)} fields, expected {expected}"
            )
        yield _structureet_row(f"line {line}", dict(zip(STRUCTUREET_FIELDS, row, strict=True)))


def _reexposition_rows(first: str, lines: _DecodedLines) -> Iterator[FinessRow | FinessFileError]:
    header = [name.strip().lower() for name in first.lstrip("\ufeff").rstrip("\r\n").split(";")]
    if tuple(header) != REEXPOSITION_FIELDS:
        missing = [name for name in REEXPOSITION_FIELDS if name not in header]
        detail = f"missing {', '.join(missing)}" if missing else "columns in another order"
        raise InvalidFinessFile(
            "line 1",
            f"the header is not the réexposition one ({len(REEXPOSITION_FIELDS)} columns "
            f"nofinesset;nofinessej;…;datemaj_geoloc): {detail}",
        )
    expected = len(REEXPOSITION_FIELDS)
    rows = _csv_rows(first, lines)
    next(rows)  # the header
    for line, row in rows:
        if len(row) != expected:
            raise InvalidFinessFile(f"line {line}", f"{len(row)} fields, expected {expected}")
        yield _structureet_row(f"line {line}", dict(zip(REEXPOSITION_FIELDS, row, strict=True)))


# --- FINESS+ ---------------------------------------------------------------------------


def _text(mapping: Any, key: str) -> str:
    value = mapping.get(key) if isinstance(mapping, dict) else None
    return value if isinstance(value, str) else ""


def _site_address(ege: dict[str, Any]) -> dict[str, Any]:
    """The establishment's own address (usage "03"), else its first one."""
    addresses = [a for a in ege.get("adresse") or () if isinstance(a, dict)]
    for address in addresses:
        if _text(address, "usageAdresse") == "03":
            return address
    return addresses[0] if addresses else {}


def _ege_row(where: str, legal_entity: str, ege: Any) -> FinessRow | FinessFileError:
    if not isinstance(ege, dict):
        return FinessFileError(where, "an establishment must be a JSON object")
    general = ege.get("informationsGeneralesEGE")
    if not isinstance(general, dict):
        return FinessFileError(where, "informationsGeneralesEGE is missing")
    closed_on = _date(_text(general, "dateFermeture"), where, "dateFermeture")
    if isinstance(closed_on, FinessFileError):
        return closed_on
    if closed_on is None and _text(ege, "etatObjet").strip() == _CLOSING_STATE:
        # Inactive without a closing date: closed at its last update at the latest.
        closed_on = _date(_text(ege, "dateDerniereMaj"), where, "dateDerniereMaj")
        if isinstance(closed_on, FinessFileError):
            return closed_on
    commune = _text(_site_address(ege), "cogCommune").strip()
    return FinessRow(
        where=where,
        finess=_text(general, "numFinessEge"),
        legal_entity_finess=legal_entity,
        name=clean(_text(general, "nomEgeLong")) or clean(_text(general, "nomEgeCourt")),
        territory=territory_of_commune(commune),
        raw_territory=commune,
        category_code=_text(ege, "categorieentiteGeographiqueExercice").strip(),
        category_label=None,  # the flow gives codes only
        closed_on=closed_on,
    )


def _finess_plus_rows(binary: IO[bytes]) -> Iterator[FinessRow | FinessFileError]:
    index = -1
    try:
        for index, entity in enumerate(ijson.items(binary, "pmej.item")):
            where = f"pmej[{index}]"
            if not isinstance(entity, dict):
                yield FinessFileError(where, "a legal entity must be a JSON object")
                continue
            legal_entity = _text(entity.get("informationsGeneralesPMEJ"), "numFinessPm")
            establishments = entity.get("ege") or []
            if not isinstance(establishments, list):
                yield FinessFileError(f"{where}.ege", "ege must be a list")
                continue
            for position, ege in enumerate(establishments):
                yield _ege_row(f"{where}.ege[{position}]", legal_entity, ege)
    except ijson.JSONError as exc:
        after = f"after pmej[{index}]" if index >= 0 else "before the first pmej"
        raise InvalidFinessFile(
            f"pmej[{index + 1}]",
            f"the JSON is truncated or malformed {after}: {exc}",
        ) from None
