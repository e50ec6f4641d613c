"""Exports of sites, specs, modules and parts in exactly the columns their import reads, so an export
imports back as all "unchanged". The writer is the fleet reports' (app.fleet.exports: UTF-8 CSV with a
BOM, XLSX with real numbers, formula-like text escaped); text is passed through imports.escape first, so
even text that starts with a quote comes back as it was."""

from __future__ import annotations

from typing import Any

import msgspec
import pandas as pd

from app.core.db import UnitOfWork
from app.fleet.exports import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, to_csv, to_xlsx
from app.integration import imports
from app.integration.import_service import current_rows

__all__ = ["CSV_MEDIA_TYPE", "XLSX_MEDIA_TYPE", "export", "frame", "render"]


def _cell(name: str, value: Any) -> Any:
    if name == "bom":
        return msgspec.json.encode(value).decode()  # one cell of JSON: the lines, in order
    if isinstance(value, str):
        return imports.escape(value)
    return value


def frame(table: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    columns = imports.export_columns(table)
    data = {name: [_cell(name, row.get(name)) for row in rows] for name in columns}
    df = pd.DataFrame(data, columns=columns)
    for col in imports.COLUMNS[table]:
        if col.kind == "int":
            df[col.name] = df[col.name].astype("int64")
        elif col.kind == "float":
            df[col.name] = df[col.name].astype("float64")
        else:
            df[col.name] = df[col.name].astype(object)
    return df


async def export(uow: UnitOfWork, table: str, company_prefix: str) -> pd.DataFrame:
    return frame(table, list((await current_rows(uow, table, None, company_prefix)).values()))


def render(table: str, df: pd.DataFrame, fmt: str) -> bytes:
    """CSV or XLSX bytes; the XLSX's one sheet is named after the table (its import reads that sheet)."""
    return to_csv(df) if fmt == "csv" else to_xlsx({table: df})
