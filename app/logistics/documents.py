"""A shipment's shipping documents as pure document models: every value that will be printed, no I/O.

Four kinds share one model, `ShippingDocument`; app/documents/shipping.py renders each kind to a PDF:

- "manifest": legs, one line per module (serial, spec, HS, ECCN, package), totals;
- "packing-list": one line per package (SSCC, kind, contents, weights, dimensions), containers and seals;
- "commercial-invoice": line items with HS code, origin, ECCN and licence, totals per currency, and the
  15 CFR 758.6 destination control statement when a line is on the Commerce Control List;
- "dg-note": the IMO multimodal dangerous goods form (IMDG 5.4) for the lithium batteries in modules.

Parts of the model:

- `Party` — consignor, consignee, notify party;
- `ContainerLine` — ISO 6346 container number (checked, stored compact) and seal;
- `LegLine` — one planned leg of the shipment;
- `ModuleLine` — one module on the shipment: identity, customs (HS, origin, value), export control (ECCN,
  licence) and battery data. `net_kg`/`gross_kg` are for the whole line, `unit_value` is per unit;
- `PackageLine` — one logistic unit with its SSCC (AI 00, check digit checked), the serials it holds, its
  weights and outer dimensions in mm, and the container it is loaded in (if any);
- `ShippingDocument` — the document: kind, number, version, parties, terms, ports and the lines above.

Pure functions: `totals`, `line_total`, `packages_by_serial`, `subject_to_ear`, `needs_dcs`,
`needs_dg_note`, `dg_entry`, `dg_lines`. Constants: `DESTINATION_CONTROL_STATEMENT`, `DG_ENTRIES`,
`SHIPPERS_DECLARATION`, `PACKING_CERTIFICATE`, `HANDLING_MARKS`, `DOCUMENT_TITLES`.

Every Struct checks itself on construction; a bad value raises `ShippingDocumentError` (a ValueError)
naming the line and the rule. Naive datetimes are taken to be UTC, as the database stores them.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Literal

import iso3166
import msgspec

from app.logistics.domain import INCOTERMS_2020, ContainerNumberError, check_container_number
from app.tags.payload import check_digit

DocumentKind = Literal["manifest", "packing-list", "commercial-invoice", "dg-note"]
DOCUMENT_KINDS: tuple[DocumentKind, ...] = ("manifest", "packing-list", "commercial-invoice", "dg-note")
DOCUMENT_TITLES: dict[str, str] = {
    "manifest": "Shipment manifest",
    "packing-list": "Packing list",
    "commercial-invoice": "Commercial invoice",
    "dg-note": "Dangerous goods note",
}

# 15 CFR 758.6(a)(1), verbatim: printed on the commercial invoice for items on the Commerce Control List.
DESTINATION_CONTROL_STATEMENT = (
    "These items are controlled by the U.S. Government and authorized for export only to the country of "
    "ultimate destination for use by the ultimate consignee or end-user(s) herein identified. They may not be "
    "resold, transferred, or otherwise disposed of, to any other country or to any person other than the "
    "authorized ultimate consignee or end-user(s), either in their original form or after being incorporated "
    "into other items, without first obtaining approval from the U.S. government or as otherwise authorized "
    "by U.S. law and regulations."
)

# IMDG Code 5.4.1.6.1: the shipper's declaration on the dangerous goods transport document.
SHIPPERS_DECLARATION = (
    "I hereby declare that the contents of this consignment are fully and accurately described above by the "
    "proper shipping name, and are classified, packaged, marked and labelled/placarded, and are in all "
    "respects in proper condition for transport according to the applicable international and national "
    "governmental regulations."
)

# IMDG Code 5.4.2.1: the container/vehicle packing certificate, signed by whoever packed the container.
PACKING_CERTIFICATE = (
    "I hereby declare that the goods described above have been packed/loaded into the container/vehicle "
    "identified above in accordance with the applicable provisions of IMDG Code 5.4.2.1."
)

HANDLING_MARKS: tuple[str, ...] = (
    "This way up",
    "Handle with care",
    "Do not stack",
    "Tilt and shock indicators fitted: inspect on receipt and note any triggered indicator on the delivery receipt",
)

EAR99 = "EAR99"
# ECCN: digit (category), letter (product group A-E, or Y for 0Y521 items), three digits, optional
# lower-case paragraphs ("4A090.a", "5A002.a.1", "4A994.l"); or EAR99.
_ECCN = re.compile(r"^(?:EAR99|\d[A-EY]\d{3}(?:\.[a-z0-9]+)*)$")
_HS = re.compile(r"^\d{4}(?:\.?\d{2}){1,3}$")  # 6 to 10 digits, dots allowed: 847150, 8471.50, 8473.30.1180
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_UN = re.compile(r"^UN\d{4}$")


class ShippingDocumentError(ValueError):
    """A shipping document (or one of its lines) breaks a rule; the message names the line and the rule."""


# --- dangerous goods ------------------------------------------------------------------------------


class DgEntry(msgspec.Struct, frozen=True):
    """One entry of the IMDG Dangerous Goods List, as printed on the DG note."""

    un_number: str  # "UN3481"
    proper_shipping_name: str  # upper-case part only (IMDG 3.1.2.1.1: lower-case text is not part of it)
    hazard_class: str = "9"
    packing_group: str = ""  # lithium batteries have none; printed as "—"
    ems: str = "F-A, S-I"  # fire, spillage schedules for lithium batteries
    marine_pollutant: bool = False


DG_ENTRIES: dict[str, DgEntry] = {
    e.un_number: e
    for e in (
        DgEntry("UN3480", "LITHIUM ION BATTERIES"),
        DgEntry("UN3481", "LITHIUM ION BATTERIES CONTAINED IN EQUIPMENT"),
        DgEntry("UN3090", "LITHIUM METAL BATTERIES"),
        DgEntry("UN3091", "LITHIUM METAL BATTERIES CONTAINED IN EQUIPMENT"),
        # Container-scale battery systems (UN Model Regulations rev. 21); the lower-case chemistry stays in
        # the name so the reader knows which of the two the unit holds.
        DgEntry("UN3536", "LITHIUM BATTERIES INSTALLED IN CARGO TRANSPORT UNIT lithium ion batteries"),
    )
}


def dg_entry(un_number: str) -> DgEntry:
    """The Dangerous Goods List entry for a UN number ("UN3481"); an unknown number is refused."""
    entry = DG_ENTRIES.get(un_number.strip().upper().replace(" ", ""))
    if entry is None:
        raise ShippingDocumentError(
            f"{un_number!r} is not a UN number afm can declare; known: {', '.join(sorted(DG_ENTRIES))}"
        )
    return entry


# --- checks ---------------------------------------------------------------------------------------


def _fail(where: str, message: str) -> ShippingDocumentError:
    return ShippingDocumentError(f"{where}: {message}")


def _require(where: str, name: str, value: str) -> None:
    if not value.strip():
        raise _fail(where, f"{name} is empty")


def _country(where: str, name: str, code: str) -> None:
    if code not in iso3166.countries_by_alpha2:
        raise _fail(where, f"{name} {code!r} is not an ISO 3166-1 alpha-2 country code (e.g. US, TW, NL)")


def _mass(where: str, net: float, gross: float) -> None:
    for name, value in (("net weight", net), ("gross weight", gross)):
        if not math.isfinite(value) or value < 0:
            raise _fail(where, f"{name} {value} kg must be a finite number >= 0")
    if gross < net:
        raise _fail(where, f"gross weight {gross} kg is less than net weight {net} kg")


def _compact_container(where: str, number: str) -> str:
    try:
        return check_container_number(number)
    except ContainerNumberError as exc:
        raise _fail(where, str(exc)) from None


# --- the model ------------------------------------------------------------------------------------


class Party(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    address: tuple[str, ...]  # printed one line each, above the country
    country: str  # ISO 3166-1 alpha-2
    tax_id: str = ""  # EIN, VAT or EORI number
    contact: str = ""  # person, phone, e-mail

    def __post_init__(self) -> None:
        where = f"party {self.name!r}"
        _require(where, "name", self.name)
        _country(where, "country", self.country)


class ContainerLine(msgspec.Struct, frozen=True):
    number: str  # ISO 6346; stored compact ("CSQU3054383") whatever spacing it came with
    seal: str
    size_type: str = "45G1"  # ISO 6346 size and type code: 45G1 = 40 ft high-cube general purpose

    def __post_init__(self) -> None:
        compact = _compact_container("container", self.number)
        msgspec.structs.force_setattr(self, "number", compact)
        _require(f"container {compact}", "seal number", self.seal)


class LegLine(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    mode: str  # sea, road, rail, air
    carrier: str
    origin: str
    destination: str
    planned_departure: dt.datetime
    planned_arrival: dt.datetime

    def __post_init__(self) -> None:
        where = f"leg {self.seq}"
        _require(where, "mode", self.mode)
        _require(where, "origin", self.origin)
        _require(where, "destination", self.destination)
        if _as_utc(self.planned_arrival) < _as_utc(self.planned_departure):
            raise _fail(where, "planned arrival is before planned departure")


class ModuleLine(msgspec.Struct, frozen=True, kw_only=True):
    serial: str
    spec_code: str
    description: str
    giai: str  # GS1 GIAI element string ("8004…") or its Digital Link URI
    hs_code: str  # "847150", "8471.50", "8473.30.1180"
    eccn: str  # "4A090.a", "5A992.c", "EAR99"; "" only for an item not subject to the EAR
    licence: str  # licence number, licence exception (e.g. "LVS") or "NLR"
    country_of_origin: str  # ISO 3166-1 alpha-2
    unit_value: Decimal  # per unit; floats, ints and strings are taken via str() so 0.1 stays 0.1
    net_kg: float  # whole line
    gross_kg: float  # whole line
    quantity: int = 1
    currency: str = "USD"
    battery_un_number: str = ""  # "UN3481", "UN3536": lithium batteries in the module
    battery_wh: float = 0.0  # watt-hour rating of all batteries of one unit
    battery_kg: float = 0.0  # net mass of the lithium batteries of one unit (0: not recorded)

    def __post_init__(self) -> None:
        where = f"module {self.serial!r}"
        _require(where, "serial", self.serial)
        _require(where, "description", self.description)
        if not _HS.match(self.hs_code):
            raise _fail(where, f"HS code {self.hs_code!r} must be 6 to 10 digits (e.g. 847150 or 8471.50)")
        if self.eccn and not _ECCN.match(self.eccn):
            raise _fail(where, f"ECCN {self.eccn!r} is neither a CCL number (e.g. 4A090.a) nor EAR99")
        if self.eccn and not self.licence.strip():
            raise _fail(where, f"ECCN {self.eccn} needs a licence number, licence exception or NLR")
        _country(where, "country of origin", self.country_of_origin)
        if not _CURRENCY.match(self.currency):
            raise _fail(where, f"currency {self.currency!r} is not an ISO 4217 code (e.g. USD)")
        if not isinstance(self.unit_value, Decimal):
            try:
                msgspec.structs.force_setattr(self, "unit_value", Decimal(str(self.unit_value)))
            except InvalidOperation:
                raise _fail(where, f"unit value {self.unit_value!r} is not a number") from None
        if not self.unit_value.is_finite() or self.unit_value < 0:
            raise _fail(where, f"unit value {self.unit_value} must be a finite amount >= 0")
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int) or self.quantity < 1:
            raise _fail(where, f"quantity {self.quantity!r} must be a whole number >= 1")
        _mass(where, self.net_kg, self.gross_kg)
        if self.battery_un_number:
            if not _UN.match(self.battery_un_number):
                raise _fail(where, f"battery UN number {self.battery_un_number!r} must look like UN3481")
            dg_entry(self.battery_un_number)
        for name, value in (("battery rating", self.battery_wh), ("battery mass", self.battery_kg)):
            if not math.isfinite(value) or value < 0:
                raise _fail(where, f"{name} {value} must be a finite number >= 0")
            if value and not self.battery_un_number:
                raise _fail(where, f"{name} given without a battery UN number")


class PackageLine(msgspec.Struct, frozen=True, kw_only=True):
    number: int  # package / crate number on this shipment, from 1
    sscc: str  # 18 digits (AI 00), GS1 check digit last
    kind: str  # "40ft high-cube module", "crate", "skid"
    contents: tuple[str, ...]  # module serials (or other item ids) in the package
    net_kg: float
    gross_kg: float
    length_mm: int
    width_mm: int
    height_mm: int
    container: str = ""  # ISO 6346 number of the container it is loaded in; "" if not containerised

    def __post_init__(self) -> None:
        where = f"package {self.number}"
        if isinstance(self.number, bool) or not isinstance(self.number, int) or self.number < 1:
            raise _fail(where, "the package number must be a whole number >= 1")
        if len(self.sscc) != 18 or not self.sscc.isdigit():
            raise _fail(where, f"SSCC {self.sscc!r} must be exactly 18 digits (AI 00), got {len(self.sscc)} characters")
        if check_digit(self.sscc[:17]) != self.sscc[17]:
            raise _fail(
                where, f"SSCC {self.sscc} check digit is {self.sscc[17]}, GS1 gives {check_digit(self.sscc[:17])}"
            )
        _require(where, "kind", self.kind)
        _mass(where, self.net_kg, self.gross_kg)
        for name, value in (("length", self.length_mm), ("width", self.width_mm), ("height", self.height_mm)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise _fail(where, f"{name} {value!r} mm must be a whole number > 0")
        if self.container:
            msgspec.structs.force_setattr(self, "container", _compact_container(where, self.container))

    @property
    def volume_m3(self) -> float:
        return self.length_mm * self.width_mm * self.height_mm / 1e9


class ShippingDocument(msgspec.Struct, frozen=True, kw_only=True):
    kind: DocumentKind
    number: str  # document number, e.g. "MAN-2025-0042"
    version: int  # from 1; a reissue after a change bumps it
    issued_at: dt.datetime  # UTC
    shipment_ref: str
    shipment_url: str  # what the QR code on page 1 holds
    consignor: Party  # exporter / seller
    consignee: Party  # ultimate consignee
    notify: Party | None
    incoterm: str  # Incoterms 2020 rule, e.g. "FCA"
    incoterm_place: str  # the named place, e.g. "Taoyuan Assembly 2, Taoyuan, TW"
    origin: str
    destination: str
    port_of_loading: str
    port_of_discharge: str
    containers: tuple[ContainerLine, ...]
    legs: tuple[LegLine, ...]
    modules: tuple[ModuleLine, ...]
    packages: tuple[PackageLine, ...]
    invoice_currency: str = "USD"
    emergency_contact: str = ""  # 24 h phone for the DG note
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = f"{self.kind} {self.number!r}"
        if self.kind not in DOCUMENT_KINDS:
            raise _fail(where, f"kind must be one of {', '.join(DOCUMENT_KINDS)}")
        _require(where, "document number", self.number)
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise _fail(where, f"version {self.version!r} must be a whole number >= 1")
        _require(where, "shipment reference", self.shipment_ref)
        if not self.shipment_url.startswith(("https://", "http://")):
            raise _fail(where, f"shipment URL {self.shipment_url!r} must be an http(s) URL")
        if self.incoterm not in INCOTERMS_2020:
            raise _fail(where, f"{self.incoterm!r} is not an Incoterms 2020 rule ({', '.join(INCOTERMS_2020)})")
        _require(where, "Incoterms named place", self.incoterm_place)
        if not _CURRENCY.match(self.invoice_currency):
            raise _fail(where, f"invoice currency {self.invoice_currency!r} is not an ISO 4217 code")
        _unique(where, "module serial", (m.serial for m in self.modules))
        _unique(where, "package number", (str(p.number) for p in self.packages))
        _unique(where, "SSCC", (p.sscc for p in self.packages))
        _unique(where, "container", (c.number for c in self.containers))
        _unique(where, "leg", (str(leg.seq) for leg in self.legs))
        _unique(where, "packed serial", (s for p in self.packages for s in p.contents))
        known = {c.number for c in self.containers}
        for p in self.packages:
            if p.container and p.container not in known:
                raise _fail(where, f"package {p.number} is loaded in {p.container}, which is not a container listed")
        if self.kind in ("manifest", "commercial-invoice") and not self.modules:
            raise _fail(where, "lists no modules")
        if self.kind == "packing-list" and not self.packages:
            raise _fail(where, "lists no packages")
        if self.kind == "dg-note":
            if not needs_dg_note(self):
                raise _fail(where, "no module carries lithium batteries: there are no dangerous goods to declare")
            _require(where, "emergency contact", self.emergency_contact)
            packed = packages_by_serial(self)
            loose = [m.serial for m in self.modules if m.battery_un_number and m.serial not in packed]
            if loose:
                raise _fail(where, f"modules with batteries are in no package: {', '.join(loose)}")


def _unique(where: str, what: str, values: Iterable[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise _fail(where, f"{what} {value} appears twice")
        seen.add(value)


def _as_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


# --- derived values -------------------------------------------------------------------------------


class Totals(msgspec.Struct, frozen=True):
    packages: int
    quantity: int  # module units over all lines
    module_net_kg: float
    module_gross_kg: float
    package_net_kg: float
    package_gross_kg: float
    volume_m3: float
    values: tuple[tuple[str, Decimal], ...]  # (currency, invoice total), by currency code


def line_total(module: ModuleLine) -> Decimal:
    return module.unit_value * module.quantity


def totals(doc: ShippingDocument) -> Totals:
    """Sums over ALL lines (a renderer splits tables across pages; totals never come from one page)."""
    values: dict[str, Decimal] = {}
    for m in doc.modules:
        values[m.currency] = values.get(m.currency, Decimal(0)) + line_total(m)
    return Totals(
        packages=len(doc.packages),
        quantity=sum(m.quantity for m in doc.modules),
        module_net_kg=math.fsum(m.net_kg for m in doc.modules),
        module_gross_kg=math.fsum(m.gross_kg for m in doc.modules),
        package_net_kg=math.fsum(p.net_kg for p in doc.packages),
        package_gross_kg=math.fsum(p.gross_kg for p in doc.packages),
        volume_m3=math.fsum(p.volume_m3 for p in doc.packages),
        values=tuple(sorted(values.items())),
    )


def packages_by_serial(doc: ShippingDocument) -> dict[str, PackageLine]:
    """The package each packed serial is in (a serial is in at most one; the model checks that)."""
    return {serial: p for p in doc.packages for serial in p.contents}


def subject_to_ear(module: ModuleLine) -> bool:
    """True when the line needs the destination control statement: an ECCN other than EAR99.

    15 CFR 758.6(a): the DCS goes on the commercial invoice for items on the Commerce Control List, i.e.
    with an ECCN, except EAR99. (EAR99 items are also subject to the EAR; they just need no DCS.)"""
    eccn = module.eccn.strip().upper()
    return bool(eccn) and eccn != EAR99


def needs_dcs(doc: ShippingDocument) -> bool:
    return any(subject_to_ear(m) for m in doc.modules)


def needs_dg_note(doc: ShippingDocument) -> bool:
    """Any module with lithium batteries (a battery UN number) makes the shipment dangerous goods."""
    return any(m.battery_un_number for m in doc.modules)


class DgLine(msgspec.Struct, frozen=True):
    """One UN number of the DG note, summed over the modules that carry it."""

    entry: DgEntry
    modules: int  # module units
    serials: tuple[str, ...]
    package_kinds: tuple[tuple[str, int], ...]  # (kind, number of packages), by kind
    packages: tuple[int, ...]  # package numbers
    net_wh: float
    net_battery_kg: float
    gross_kg: float  # gross mass of the packages (a package holding two UN numbers counts in both)


def dg_lines(doc: ShippingDocument) -> tuple[DgLine, ...]:
    """Per distinct battery UN number, by UN number. A module in no package counts with its own gross mass
    as one package of kind "unpacked" (a DG note refuses such modules; other documents may show them)."""
    packed = packages_by_serial(doc)
    out: list[DgLine] = []
    for un in sorted({m.battery_un_number for m in doc.modules if m.battery_un_number}):
        lines = [m for m in doc.modules if m.battery_un_number == un]
        packages = sorted({packed[m.serial].number: packed[m.serial] for m in lines if m.serial in packed}.items())
        loose = [m for m in lines if m.serial not in packed]
        kinds: dict[str, int] = {}
        for _, p in packages:
            kinds[p.kind] = kinds.get(p.kind, 0) + 1
        if loose:
            kinds["unpacked"] = kinds.get("unpacked", 0) + len(loose)
        out.append(
            DgLine(
                entry=dg_entry(un),
                modules=sum(m.quantity for m in lines),
                serials=tuple(m.serial for m in lines),
                package_kinds=tuple(sorted(kinds.items())),
                packages=tuple(n for n, _ in packages),
                net_wh=math.fsum(m.battery_wh * m.quantity for m in lines),
                net_battery_kg=math.fsum(m.battery_kg * m.quantity for m in lines),
                gross_kg=math.fsum([*(p.gross_kg for _, p in packages), *(m.gross_kg for m in loose)]),
            )
        )
    return tuple(out)
