"""Report tables as CSV and XLSX downloads, safe to open in a spreadsheet.

Formula injection (OWASP "CSV Injection", ASVS 5 1.2.10, CWE-1236): a text cell that starts with = + - @,
a tab, CR, LF or NUL is prefixed with a single quote, so Excel, LibreOffice and Google Sheets show it as
text instead of evaluating it (=HYPERLINK(...) in a site name or a failure reason is data, not code).
Numbers stay numbers: only text is escaped, so -5 in a numeric column is written as the number -5. Both
formats escape, header names included; the XLSX also stores every text cell as a string, never a formula.

CSV: UTF-8 with a byte-order mark, comma-separated, CRLF line ends (RFC 4180), text fields quoted. The
BOM is what makes Excel read the file as UTF-8 when it is double-clicked; without it Excel assumes the
system's ANSI code page and "São Paulo", "°C" or "→" come out garbled. Other readers skip it (pandas with
encoding="utf-8-sig", LibreOffice, Python's csv with the same codec).

Times: tz-aware values are converted to UTC and written without a zone (Excel has no time zones): real
Excel dates in the XLSX, "YYYY-MM-DD HH:MM:SS" in the CSV, which Excel also reads as dates. All times
in the reports are UTC.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

CSV_MEDIA_TYPE: Final = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMULA_TRIGGERS: Final = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")
CSV_DATE_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
XLSX_DATETIME_FORMAT: Final = "yyyy-mm-dd hh:mm:ss"
XLSX_DATE_FORMAT: Final = "yyyy-mm-dd"
XLSX_MAX_TEXT: Final = 32_767  # Excel's limit per cell; a longer cell makes the whole file "corrupt"
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def escape_formula(value: Any) -> Any:
    """Text that a spreadsheet would evaluate, prefixed with a single quote; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def _plain(value: Any) -> Any:
    """A cell of an object column as a value a spreadsheet cell can hold: containers as JSON text,
    tz-aware times as naive UTC."""
    if isinstance(value, (list, tuple, dict, set)):
        return json.dumps(sorted(value) if isinstance(value, set) else value, ensure_ascii=False, default=str)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return pd.Timestamp(value).tz_convert("UTC").tz_localize(None)
    return value


def prepare(df: pd.DataFrame) -> pd.DataFrame:
    """A copy ready to write: tz-aware times as naive UTC, containers as JSON, and every text cell and
    header passed through escape_formula. The index is dropped (report tables carry no meaning there)."""
    out = df.reset_index(drop=True).copy()
    out.columns = [escape_formula(str(c)) for c in out.columns]
    for i in range(out.shape[1]):
        col = out.iloc[:, i]
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            out.isetitem(i, col.dt.tz_convert("UTC").dt.tz_localize(None))
        elif pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_datetime64_dtype(col.dtype):
            continue  # numbers, booleans and naive times are never text
        else:  # object, str or categorical: text, possibly mixed with numbers (which stay numbers)
            out.isetitem(i, col.astype(object).map(lambda v: escape_formula(_plain(v))))
    return out


def to_csv(df: pd.DataFrame) -> bytes:
    """The table as CSV bytes (UTF-8 with BOM, CRLF, text quoted, formulas escaped; see the module doc)."""
    text = prepare(df).to_csv(
        index=False,
        quoting=csv.QUOTE_NONNUMERIC,  # text quoted (OWASP's advice too), numbers bare so they stay numbers
        lineterminator="\r\n",
        date_format=CSV_DATE_FORMAT,
    )
    return ("\ufeff" + text).encode("utf-8")


def sheet_title(name: str, taken: set[str]) -> str:
    """An Excel sheet name from a table name: no []:*?/\\, no edge apostrophes, at most 31 characters,
    unique in the workbook (case-insensitively, as Excel compares)."""
    base = _SHEET_FORBIDDEN.sub("_", name).strip("'")[:31] or "Sheet"
    title, n = base, 1
    while title.lower() in taken:
        n += 1
        suffix = f" ({n})"
        title = base[: 31 - len(suffix)] + suffix
    taken.add(title.lower())
    return title


def _cell(value: Any) -> Any:
    """A Python value openpyxl writes as the right cell type; None for an empty cell."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN is "no value"; Excel cannot store an infinity
    if isinstance(value, str):  # escaped again: stripping "\x01=..." would uncover the formula
        return escape_formula(ILLEGAL_CHARACTERS_RE.sub("", value))[:XLSX_MAX_TEXT]
    if isinstance(value, (bool, int, float, dt.datetime, dt.date, dt.time)):
        return value
    return str(value)


def _width(values: list[Any]) -> float:
    """A column width in characters: its longest shown value, clamped to 8..60."""
    longest = 0
    for v in values:
        if isinstance(v, dt.datetime):
            n = 19
        elif isinstance(v, float):
            n = len(f"{v:g}")
        else:
            n = max((len(line) for line in str(v).splitlines()), default=0) if v is not None else 0
        longest = max(longest, n)
    return float(min(max(longest + 2, 8), 60))


def to_xlsx(tables: Mapping[str, pd.DataFrame]) -> bytes:
    """One sheet per table (named after it): a bold, frozen header row with a filter, column widths
    fitted to the content, real Excel dates, and formulas escaped as in to_csv."""
    wb = Workbook()
    wb.remove(wb.active)
    wb.properties.creator = "afm"
    taken: set[str] = set()
    bold = Font(bold=True)
    for name, table in tables.items():
        ws = wb.create_sheet(sheet_title(name, taken))
        data = prepare(table)
        header = [_cell(c) for c in data.columns]
        columns: list[list[Any]] = [[h] for h in header]
        for c, value in enumerate(header, start=1):
            cell = ws.cell(row=1, column=c, value=value)
            cell.font = bold
            cell.alignment = Alignment(vertical="top")
        for r, row in enumerate(data.itertuples(index=False, name=None), start=2):
            for c, raw in enumerate(row, start=1):
                value = _cell(raw)
                cell = ws.cell(row=r, column=c, value=value)
                if cell.data_type == "f":  # never a formula (escape_formula already prevents it)
                    cell.data_type = "s"
                if isinstance(value, dt.datetime):
                    cell.number_format = XLSX_DATETIME_FORMAT
                elif isinstance(value, dt.date):
                    cell.number_format = XLSX_DATE_FORMAT
                columns[c - 1].append(value)
        for c, values in enumerate(columns, start=1):
            ws.column_dimensions[get_column_letter(c)].width = _width(values)
        if header:
            ws.freeze_panes = "A2"
            ws.auto_filter.ref = ws.dimensions
    if not wb.worksheets:
        wb.create_sheet("Sheet")  # a workbook needs one sheet to open
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
