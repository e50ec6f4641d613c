from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from app.routes.schemas import PlaceIn

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


# --- shipments ---------------------------------------------------------------------------------------

Text100 = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Country = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]
Serial = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Code = Annotated[str, msgspec.Meta(max_length=2000, description="a tag as scanned, or a serial typed by hand")]


class PartyIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    address: Annotated[list[Annotated[str, msgspec.Meta(max_length=200)]], msgspec.Meta(max_length=6)]
    country: Country
    tax_id: Annotated[str, msgspec.Meta(max_length=40)] = ""
    contact: Annotated[str, msgspec.Meta(max_length=200)] = ""


class ContainerIn(msgspec.Struct, forbid_unknown_fields=True):
    number: Annotated[str, msgspec.Meta(min_length=11, max_length=16, examples=["CSQU3054383"])]
    seal: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    modules: list[Serial] = []  # the modules in it (a containerised module is its own container)
    size_type: Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Z]{4}$")] = "45G1"


class ShipmentCreate(msgspec.Struct, forbid_unknown_fields=True):
    origin: PlaceIn  # a PLACE as in POST /api/v1/routes/plan: "factory:CODE", "NLRTM", a point
    destination: Annotated[str, msgspec.Meta(pattern=r"^site:[A-Za-z0-9-]+$")]
    modules: Annotated[list[Serial], msgspec.Meta(min_length=1, max_length=500)]
    planned_departure: dt.datetime
    incoterm: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]
    incoterm_place: Text100
    consignor: PartyIn
    consignee: PartyIn
    values: dict[str, Annotated[float, msgspec.Meta(ge=0)]]  # declared customs value per module, by spec code
    crates: list[Serial] = []
    containers: list[ContainerIn] = []
    notify: PartyIn | None = None
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] = "USD"
    criterion: Literal["distance", "time", "cost", "co2"] = "time"
    route: Annotated[int, msgspec.Meta(ge=0, le=4)] = 0  # which of the planner's alternatives
    modes: list[Literal["road", "rail", "sea", "air"]] | None = None
    avoid_countries: list[Country] = []
    avoid_passages: list[str] = []
    carriers: list[Annotated[str, msgspec.Meta(max_length=100)]] = []  # per leg, in order


class PackIn(msgspec.Struct, forbid_unknown_fields=True):
    modules: list[Serial] | None = None  # default: every module of the shipment not yet packed


class LegEventIn(msgspec.Struct, forbid_unknown_fields=True):
    at: dt.datetime | None = None  # default: now


class SealCheck(msgspec.Struct, forbid_unknown_fields=True):
    container: Annotated[str, msgspec.Meta(min_length=11, max_length=16)]
    seal: Annotated[str, msgspec.Meta(max_length=32)]


class HandoffIn(msgspec.Struct, forbid_unknown_fields=True):
    codes: Annotated[list[Code], msgspec.Meta(min_length=1, max_length=500)]  # the receiving party's scans
    kind: Literal["pickup", "handover", "delivery"]
    party: Text100  # the person receiving
    organisation: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    place: Text100
    seals: list[SealCheck] = []
    leg: Annotated[int, msgspec.Meta(ge=1)] | None = None  # the leg that starts (pickup, handover)
    at: dt.datetime | None = None
    note: Annotated[str, msgspec.Meta(max_length=500)] = ""


class DocumentIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["manifest", "packing-list", "commercial-invoice", "dg-note"]


class LegRead(msgspec.Struct):
    seq: int
    mode: str
    carrier: str
    origin: str
    origin_name: str
    destination: str
    destination_name: str
    distance_km: float
    planned_departure: dt.datetime
    planned_arrival: dt.datetime
    actual_departure: dt.datetime | None
    actual_arrival: dt.datetime | None
    expected_departure: dt.datetime
    expected_arrival: dt.datetime
    late_hours: float


class ContainerRead(msgspec.Struct):
    number: str
    seal: str
    size_type: str


class PackageRead(msgspec.Struct):
    number: int
    sscc: str  # (00) + 18 digits
    kind: str
    contents: list[str]
    container: str
    net_kg: float
    gross_kg: float
    length_mm: int
    width_mm: int
    height_mm: int


class HandoffRead(msgspec.Struct):
    seq: int
    kind: str
    party: str
    organisation: str
    place: str
    at: dt.datetime
    recorded_by: str
    leg: int | None
    modules: list[str]
    seals: list[dict[str, object]]
    seal_ok: bool
    note: str


class DocumentRead(msgspec.Struct):
    kind: str
    number: str
    version: int
    sha256: str
    issued_at: dt.datetime
    issued_by: str
    url: str


class ShipmentRead(msgspec.Struct):
    id: str  # the shipment's reference, e.g. SHP-2026-000001
    status: str
    origin: dict[str, str]
    destination: dict[str, str]
    incoterm: str
    incoterm_place: str
    consignor: dict[str, object]
    consignee: dict[str, object]
    notify: dict[str, object] | None
    currency: str
    modules: list[dict[str, str]]  # serial, spec, state
    legs: list[LegRead]
    containers: list[ContainerRead]
    packages: list[PackageRead]
    handoffs: list[HandoffRead]
    documents: list[DocumentRead]
    planned_arrival: dt.datetime
    eta: dt.datetime
    late_hours: float
    flags: list[str]
    route: dict[str, object]


class ShipmentSummary(msgspec.Struct):
    id: str
    status: str
    origin: str
    destination: str
    modules: int
    planned_arrival: dt.datetime
    eta: dt.datetime
    late_hours: float
    flags: list[str]


class LicenceIn(msgspec.Struct, forbid_unknown_fields=True):
    number: Annotated[str, msgspec.Meta(min_length=3, max_length=40)]
    eccn: Annotated[str, msgspec.Meta(pattern=r"^[0-9][A-E][0-9]{3}(\.[a-z0-9.]+)?$", examples=["4A090"])]
    countries: Annotated[list[Country], msgspec.Meta(min_length=1)]
    consignee: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    valid_until: dt.date
    note: Annotated[str, msgspec.Meta(max_length=500)] = ""


class LicenceRead(msgspec.Struct):
    number: str
    eccn: str
    countries: list[str]
    consignee: str
    valid_until: dt.date
    note: str
    recorded_by: str
    created_at: dt.datetime
