from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

CrateSerial = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9][A-Z0-9-]{0,15}$", examples=["CR-000123"])]


class CrateCreate(msgspec.Struct, forbid_unknown_fields=True):
    serial: CrateSerial
    asset_type: Annotated[str, msgspec.Meta(pattern=r"^\d{1,6}$", description="GRAI asset type digits")]
    length_mm: Annotated[int, msgspec.Meta(gt=0, le=20_000)]
    width_mm: Annotated[int, msgspec.Meta(gt=0, le=5_000)]
    height_mm: Annotated[int, msgspec.Meta(gt=0, le=5_000)]
    tare_kg: Annotated[float, msgspec.Meta(gt=0, le=50_000)]
    description: Annotated[str, msgspec.Meta(max_length=200)] = ""


class CrateRead(msgspec.Struct):
    serial: str
    asset_type: str
    grai: str  # human-readable: (8003)…
    description: str
    length_mm: int
    width_mm: int
    height_mm: int
    tare_kg: float
    created_at: dt.datetime
