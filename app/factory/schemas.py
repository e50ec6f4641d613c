from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec

Serial = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9][A-Z0-9-]{3,31}$", examples=["AFM-26-000123"])]
Code = Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9][A-Z0-9-]{1,31}$")]


class BomLine(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    kind: Literal["gpu", "cpu", "nic", "dpu", "switch", "psu", "battery", "cdu", "pdu", "bmc", "ssd"]
    quantity: Annotated[int, msgspec.Meta(ge=1, le=10_000)]
    manufacturer: str
    part_numbers: Annotated[list[str], msgspec.Meta(min_length=1)]
    description: str = ""


class SpecRead(msgspec.Struct):
    code: str
    name: str
    gpu_model: str
    gpu_count: int
    power_kw: float
    weight_kg: float
    length_mm: int
    width_mm: int
    height_mm: int
    hs_code: str
    export_class: str
    battery_wh: float
    battery_un_number: str
    cooling: str
    bom: list[BomLine]


class SpecCreate(msgspec.Struct, forbid_unknown_fields=True):
    code: Code
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    gpu_model: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    gpu_count: Annotated[int, msgspec.Meta(ge=0, le=10_000)]
    power_kw: Annotated[float, msgspec.Meta(gt=0, le=100_000)]
    weight_kg: Annotated[float, msgspec.Meta(gt=0, le=200_000)]
    length_mm: Annotated[int, msgspec.Meta(gt=0, le=20_000)]
    width_mm: Annotated[int, msgspec.Meta(gt=0, le=5_000)]
    height_mm: Annotated[int, msgspec.Meta(gt=0, le=5_000)]
    hs_code: Annotated[str, msgspec.Meta(pattern=r"^\d{4}(\.?\d{2}){1,3}$")]
    export_class: Annotated[str, msgspec.Meta(pattern=r"^(EAR99|\d[A-E]\d{3}(\.[a-z0-9.]+)?)$")]
    cooling: Literal["liquid", "air", "hybrid"]
    battery_wh: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    battery_un_number: Annotated[str, msgspec.Meta(pattern=r"^(UN\d{4})?$")] = ""
    bom: list[BomLine] = []


class StationRead(msgspec.Struct):
    code: str
    name: str
    kind: str
    factory: str
    scan_action: str = ""  # the lifecycle transition a scan here takes ("" = record only)


class FactoryRead(msgspec.Struct):
    code: str
    name: str
    country: str
    city: str
    lat: float
    lon: float
    unlocode: str
    stations: list[StationRead]


class Location(msgspec.Struct):
    """Where a module is: at a factory, at a site, or in transit to a site."""

    kind: Literal["factory", "site", "transit"]
    code: str
    name: str
    country: str


class ModuleRead(msgspec.Struct):
    serial: str
    spec: str
    state: str
    state_label: str
    version: int
    location: Location
    factory: str
    site: str | None
    hold_reason: str
    created_at: dt.datetime
    updated_at: dt.datetime


class ModuleCreate(msgspec.Struct, forbid_unknown_fields=True):
    spec: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    serial: Serial | None = None
    factory: Annotated[str, msgspec.Meta(min_length=1, max_length=16)] | None = None


class PartRead(msgspec.Struct):
    serial: str
    kind: str
    part_number: str
    manufacturer: str
    description: str
    module: str | None
    position: str
    installed_at: dt.datetime | None


class EventRead(msgspec.Struct):
    seq: int
    type: str
    actor: str
    role: str
    at: dt.datetime
    place: str
    request_id: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


PartSerial = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{2,63}$")]


class PartInstall(msgspec.Struct, forbid_unknown_fields=True):
    """Install a serial-numbered part into a module (scan the module, then the part)."""

    serial: PartSerial
    kind: Annotated[str, msgspec.Meta(min_length=2, max_length=16)]
    part_number: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    manufacturer: Annotated[str, msgspec.Meta(max_length=64)] = ""
    position: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    station: Annotated[str, msgspec.Meta(max_length=32)] | None = None


class PartRemove(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=3, max_length=500)]
    station: Annotated[str, msgspec.Meta(max_length=32)] | None = None


class PartReplace(msgspec.Struct, forbid_unknown_fields=True):
    new: PartInstall
    reason: Annotated[str, msgspec.Meta(min_length=3, max_length=500)]
