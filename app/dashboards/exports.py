"""CSV and XLSX renderings of any list of rows (nested objects flattened to dotted columns)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

CSV_MEDIA = "text/csv; charset=utf-8"
XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def flatten(row: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{name}.")
        else:
            flat[name] = value
    return flat


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return list(columns)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return value


def to_csv(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """UTF-8 with a byte order mark (so spreadsheet software reads the accents), comma
    separated, decimal point, one header line."""
    flat = [flatten(r) for r in rows]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    columns = _columns(flat)
    writer.writerow(columns)
    for row in flat:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(rows: Iterable[Mapping[str, Any]], title: str) -> bytes:
    flat = [flatten(r) for r in rows]
    columns = _columns(flat)
    book = Workbook(write_only=False)
    sheet = book.active
    sheet.title = title[:31]
    sheet.append(columns)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in flat:
        values = []
        for column in columns:
            value = row.get(column)
            if isinstance(value, list):
                value = "; ".join(str(v) for v in value)
            values.append(value)
        sheet.append(values)
    for index, column in enumerate(columns, start=1):
        # openpyxl writes a Decimal as its exact digits; show money with two decimals.
        if any(
            isinstance(r.get(column), Decimal) and r[column].as_tuple().exponent == -2 for r in flat
        ):
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = "#,##0.00"
        if any(isinstance(r.get(column), date) for r in flat):
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = "yyyy-mm-dd"
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
