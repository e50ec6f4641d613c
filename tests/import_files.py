"""Realistic import files for the import tests and benchmark: a delivery of spare parts whose part numbers,
makers and descriptions come from the demo fleet's bills of materials (fixtures/demo/specs.toml) and whose
serials look like the demo's (13-digit NVIDIA GPU serials, a maker prefix elsewhere)."""

from __future__ import annotations

import csv
import hashlib
import io
import tomllib
from pathlib import Path
from typing import Any

from openpyxl import Workbook

SPECS = Path(__file__).resolve().parents[1] / "fixtures" / "demo" / "specs.toml"
PART_COLUMNS = ["serial", "kind", "part_number", "manufacturer", "description"]


def catalogue() -> list[dict[str, str]]:
    """Each (kind, part number) of the demo specs' bills of materials once, with its maker and description."""
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for spec in tomllib.loads(SPECS.read_text(encoding="utf-8"))["specs"]:
        for line in spec.get("bom", []):
            for number in line["part_numbers"]:
                seen.setdefault(
                    (line["kind"], number),
                    {
                        "kind": line["kind"],
                        "part_number": number,
                        "manufacturer": line["manufacturer"],
                        "description": line.get("description", ""),
                    },
                )
    return list(seen.values())


def part_serial(seed: str, kind: str, manufacturer: str, index: int) -> str:
    digest = hashlib.sha256(f"{seed}/{kind}/{index}".encode()).hexdigest()
    if kind == "gpu" and manufacturer.upper() == "NVIDIA":
        return "1" + str(int(digest[:16], 16))[:12].rjust(12, "0")
    prefix = "".join(ch for ch in manufacturer.upper() if ch.isalnum())[:3] or "PRT"
    return f"{prefix}{kind.upper()[:2]}{digest[:10].upper()}"


def parts_rows(n: int, *, seed: str = "delivery-2026-11") -> list[dict[str, Any]]:
    """n loose spare parts, GPUs weighted as a real delivery would be (most rows are GPUs and NICs)."""
    items = catalogue()
    weights = {"gpu": 8, "nic": 3, "ssd": 2}
    pool = [item for item in items for _ in range(weights.get(item["kind"], 1))]
    return [
        {
            **pool[i % len(pool)],
            "serial": part_serial(seed, pool[i % len(pool)]["kind"], pool[i % len(pool)]["manufacturer"], i),
        }
        for i in range(n)
    ]


def to_csv(rows: list[dict[str, Any]], columns: list[str] | None = None) -> bytes:
    columns = columns or PART_COLUMNS
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def to_xlsx(rows: list[dict[str, Any]], columns: list[str] | None = None, sheet: str = "parts") -> bytes:
    columns = columns or PART_COLUMNS
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = sheet
    ws.append(columns)
    for row in rows:
        ws.append([row.get(c) for c in columns])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
