"""Reading the three FINESS formats from real published rows, and the programme's choice of
which structures are its establishments."""

from __future__ import annotations

import io
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from app.referential.categories import CATEGORIES, is_programme_category, load_categories
from app.referential.finess_formats import (
    REEXPOSITION_FIELDS,
    STRUCTUREET_FIELDS,
    FinessFileError,
    FinessFormat,
    FinessRow,
    InvalidFinessFile,
    open_finess_file,
)
from app.referential.geography import territory_of_commune
from app.referential.selection import FinessRecord, Skipped, SkipReason, select

DATA = Path(__file__).parent.parent / "data"
FINESS_PLUS = DATA / "finess-plus-structures-sample-20260309.json"
REEXPOSITION = DATA / "finess-reexposition-sample.csv"
OFFICIAL = DATA / "finess_sample.csv"
EHPAD = "Etablissement d'hébergement pour personnes âgées dépendantes"


def read(source: Path | bytes) -> tuple[FinessFormat, str, list]:
    binary = (
        source.open("rb") if isinstance(source, Path) else io.BufferedReader(io.BytesIO(source))
    )
    with binary:
        finess_file = open_finess_file(binary)
        items = [select(r) if isinstance(r, FinessRow) else r for r in finess_file.rows]
        return finess_file.format, finess_file.encoding, items


def kept(items: list) -> dict[str, FinessRecord]:
    return {item.finess: item for item in items if isinstance(item, FinessRecord)}


def skipped(items: list) -> Counter:
    return Counter((i.reason, i.key) for i in items if isinstance(i, Skipped))


# --- FINESS+ ---------------------------------------------------------------------------


def test_the_real_finess_plus_sample_keeps_the_13_social_and_medico_social_establishments():
    format, encoding, items = read(FINESS_PLUS)
    assert (format, encoding) == (FinessFormat.FINESS_PLUS, "utf-8")
    assert len(items) == 27
    records = kept(items)
    assert Counter(r.category_code for r in records.values()) == {
        "500": 6, "182": 3, "195": 1, "200": 1, "354": 1, "461": 1
    }  # fmt: skip
    # The 14 sanitary ones are skipped, counted by category (the two Wallis-et-Futuna
    # hospitals are category 355: skipped for their category first).
    assert skipped(items) == {
        (SkipReason.CATEGORY, code): n
        for code, n in {"108": 3, "109": 3, "355": 2, "122": 1, "141": 1, "146": 1,
                        "161": 1, "321": 1, "365": 1}.items()
    }  # fmt: skip
    assert not [i for i in items if isinstance(i, FinessFileError)]


def test_finess_plus_names_are_trimmed_and_the_department_comes_from_the_commune():
    records = kept(read(FINESS_PLUS)[2])
    ehpad = records["010780906"]
    assert ehpad == FinessRecord(
        where="pmej[16].ege[0]",
        finess="010780906",
        legal_entity_finess="010000339",
        name="EHPAD RÉSIDENCE FONTELUNE AMBERIEU-EN-BUGEY",
        department="01",
        category_code="500",
        category_label=EHPAD,  # the flow gives no label: the nomenclature's
        closed_on=None,
    )
    # Its legal entity (pmSmsseId 17) is inactive; the EHPAD and its SSIAD are not.
    assert records["010006401"].closed_on is None


def test_finess_plus_closed_establishments_keep_their_closing_date():
    records = kept(read(FINESS_PLUS)[2])
    closed = {f: r.closed_on for f, r in records.items() if r.closed_on}
    # A SESSAD closed in 1994 and a maison de retraite of the retired category 200.
    assert closed == {"010790061": date(1994, 9, 2), "010784528": date(2006, 9, 14)}


@pytest.mark.parametrize(
    ("commune", "department"),
    [("01053", "01"), ("2A004", "2A"), ("97411", "974"), ("97611", "976"),
     ("97801", "971"), ("97701", "971")],
)  # fmt: skip
def test_finess_plus_communes_give_the_department(commune, department):
    row = FinessRow("p", "010780906", "010000339", "EHPAD", territory_of_commune(commune),
                    commune, "500", None, None)  # fmt: skip
    assert select(row).department == department


@pytest.mark.parametrize("commune", ["98613", "97502", "98735", "98818"])
def test_finess_plus_rows_outside_the_territories_are_skipped(commune):
    row = FinessRow("p", "010780906", "010000339", "EHPAD", territory_of_commune(commune),
                    commune, "500", None, None)  # fmt: skip
    assert select(row) == Skipped(SkipReason.TERRITORY, commune[:3])


def test_truncated_finess_plus_stops_with_the_path():
    raw = FINESS_PLUS.read_bytes()
    cut = raw[: raw.index(b'"numFinessEge" : "010780906"')]
    with pytest.raises(InvalidFinessFile) as caught:
        read(cut)
    assert caught.value.where == "pmej[16]"
    assert "truncated or malformed after pmej[15]" in caught.value.message


def test_a_json_file_of_another_kind_is_refused():
    with pytest.raises(InvalidFinessFile, match="not the FINESS\\+ structures flow"):
        read(b'{"extracts": [{"finess": "750712184"}]}')


# --- Réexposition CSV ------------------------------------------------------------------


def test_the_real_reexposition_sample_keeps_only_the_ehpad():
    format, encoding, items = read(REEXPOSITION)
    assert (format, encoding) == (FinessFormat.REEXPOSITION, "utf-8")
    assert len(items) == 17
    assert list(kept(items).values()) == [
        FinessRecord("line 5", "010002228", "920030152", "EHPAD L'AMBARROISE AMBERIEU", "01",
                     "500", EHPAD)
    ]  # fmt: skip
    # Hospitals, pharmacies, a clinic, the PJJ service: skipped by category, including the
    # Saint-Pierre-et-Miquelon and Wallis-et-Futuna hospitals (category 355).
    assert skipped(items) == {
        (SkipReason.CATEGORY, "355"): 5, (SkipReason.CATEGORY, "620"): 6,
        (SkipReason.CATEGORY, "106"): 1, (SkipReason.CATEGORY, "292"): 1,
        (SkipReason.CATEGORY, "128"): 1, (SkipReason.CATEGORY, "242"): 1,
        (SkipReason.CATEGORY, "101"): 1,
    }  # fmt: skip


def reexposition(*rows: list[str], encoding: str = "utf-8", bom: bool = False) -> bytes:
    lines = [";".join(REEXPOSITION_FIELDS), *(";".join(row) for row in rows)]
    text = "\n".join(lines) + "\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)


def a_row(**values: str) -> list[str]:
    row = dict.fromkeys(REEXPOSITION_FIELDS, "")
    row.update(nofinesset="010002228", nofinessej="920030152", rs="EHPAD", departement="01",
               categetab="500", commune="004")  # fmt: skip
    row.update(values)
    return list(row.values())


@pytest.mark.parametrize(
    ("encoding", "bom", "expected"),
    [("utf-8", False, "utf-8"), ("utf-8", True, "utf-8"), ("cp1252", False, "windows-1252"),
     ("iso-8859-1", False, "windows-1252")],
)  # fmt: skip
def test_the_encoding_is_recognised(encoding, bom, expected):
    raw = reexposition(a_row(rslongue="Résidence Les Érables"), encoding=encoding, bom=bom)
    format, found, items = read(raw)
    assert format is FinessFormat.REEXPOSITION and found == expected
    assert items[0].name == "Résidence Les Érables"


def test_a_file_mixing_encodings_is_refused_at_its_line():
    raw = reexposition(a_row(rslongue="Résidence"))
    raw += ";".join(a_row(nofinesset="750482135", rslongue="Érables")).encode("cp1252") + b"\n"
    with pytest.raises(InvalidFinessFile) as caught:
        read(raw)
    assert caught.value.where == "line 3" and "mixing encodings" in caught.value.message


def test_rfc_4180_quotes_make_one_field():
    raw = reexposition(a_row(rslongue='"IME ""LE PETIT PRINCE"""', categetab="183"))
    [record] = read(raw)[2]
    assert record.name == 'IME "LE PETIT PRINCE"'


def test_a_wrong_column_count_stops_with_the_line():
    raw = reexposition(a_row(), a_row()[:-2])
    with pytest.raises(InvalidFinessFile) as caught:
        read(raw)
    assert (caught.value.where, caught.value.message) == ("line 3", "33 fields, expected 35")


def test_a_header_that_is_not_the_reexposition_one_is_refused():
    header = ";".join(REEXPOSITION_FIELDS[:-1]).encode() + b"\n"
    with pytest.raises(InvalidFinessFile, match="missing datemaj_geoloc"):
        read(header)


@pytest.mark.parametrize(
    ("code", "outcome"),
    [("9A", "971"), ("9B", "972"), ("9C", "973"), ("9D", "974"), ("9F", "976"),
     ("9E", Skipped(SkipReason.TERRITORY, "975")), ("9J", Skipped(SkipReason.TERRITORY, "986"))],
)  # fmt: skip
def test_finess_overseas_codes_map_to_insee_or_are_outside(code, outcome):
    numbers = {"9A": "970120549", "9B": "970200028", "9C": "970300026", "9D": "970411872",
               "9F": "980503114", "9E": "970500039", "9J": "980600027"}  # fmt: skip
    [item] = read(reexposition(a_row(departement=code, nofinesset=numbers[code])))[2]
    assert (item.department if isinstance(item, FinessRecord) else item) == outcome


def test_rows_with_a_bad_number_or_no_name_are_refused_and_reading_goes_on():
    raw = reexposition(a_row(nofinesset="690788121"), a_row(rs=""), a_row(nofinesset="750482135"))
    first, second, third = read(raw)[2]
    assert first.where == "line 2" and "check digit" in first.message
    assert second == FinessFileError("line 3", "no name")
    assert third.finess == "750482135"


# --- Official extraction ---------------------------------------------------------------


def test_the_official_sample_in_iso_8859_1():
    format, encoding, items = read(OFFICIAL)
    assert (format, encoding) == (FinessFormat.OFFICIAL, "windows-1252")
    records = kept(items)
    assert records["750482135"].name == "EHPAD Les Érables"
    assert records["590128740"].name == 'ESAT "Les Ateliers du Nord"'
    assert records["980503114"].department == "976"
    assert records["2A0000123"].department == "2A"
    assert skipped(items) == {(SkipReason.TERRITORY, "975"): 1}
    [bad_key] = [i for i in items if isinstance(i, FinessFileError)]
    assert bad_key.where == "line 9" and "690788121" in bad_key.message


def test_a_utf8_official_extraction_keeps_its_accents():
    row = dict.fromkeys(STRUCTUREET_FIELDS, "")
    row.update(structureet="structureet", nofinesset="010077311", nofinessej="010077238",
               rslongue="Centre Médico-Psycho-Pédagogique", departement="01", categetab="189",
               libcategetab="Centre Médico-Psycho-Pédagogique (C.M.P.P.)")  # fmt: skip
    raw = ("finess;etalab;111;2026-01-31\n" + ";".join(row.values()) + "\n").encode()
    _, encoding, [record] = read(raw)
    assert encoding == "utf-8"
    assert record.category_label == "Centre Médico-Psycho-Pédagogique (C.M.P.P.)"


def test_a_short_structureet_row_stops_the_file():
    raw = OFFICIAL.read_bytes() + b"structureet;750482135;750712184;TRONQUEE;;\n"
    with pytest.raises(InvalidFinessFile) as caught:
        read(raw)
    assert caught.value.where == "line 15"  # after the two geolocalisation rows
    assert caught.value.message == "structureet row has 6 fields, expected 32"


@pytest.mark.parametrize(
    ("raw", "message"),
    [(b"PK\x03\x04\x14\x00", "ZIP archive"), (b"finess,period_start\n750712184,2025-01\n",
      "not a FINESS file"), (b"", "not a FINESS file")],
)  # fmt: skip
def test_files_of_another_kind_are_refused(raw, message):
    with pytest.raises(InvalidFinessFile, match=message):
        read(raw)


# --- The list of categories ------------------------------------------------------------


def test_the_programme_categories_are_data_with_their_source():
    text = (Path(__file__).parents[2] / "app/referential/essms_categories.csv").read_text()
    assert text.startswith("# ") and "L. 312-1" in text.split("\ncode;")[0]
    assert is_programme_category("500") and is_programme_category(" 182 ")
    for sanitary in ("355", "101", "620", "611", "108"):
        assert not is_programme_category(sanitary)
    assert load_categories() == CATEGORIES


def test_a_malformed_category_file_names_its_row(tmp_path):
    path = tmp_path / "categories.csv"
    path.write_text(
        "# source\ncode;abbreviation;audience;home_care;weight;in_use;label\n"
        "500;EHPAD;PA;0;1;1;EHPAD\n501;X;XX;0;1;1;Y\n"
    )
    with pytest.raises(ValueError, match="data row 3"):
        load_categories(path)


def test_an_establishment_without_a_place_is_refused_with_its_path():
    row = FinessRow("pmej[2].ege[0]", "010780906", "010000339", "EHPAD", None, "", "500",
                    None, None)  # fmt: skip
    assert select(row) == FinessFileError("pmej[2].ege[0]", "no département or commune code")
    row = FinessRow("line 4", "010780906", "010000339", "EHPAD", None, "XX", "500", None, None)
    assert select(row) == FinessFileError(
        "line 4", "département or commune 'XX' is not one of France's"
    )
