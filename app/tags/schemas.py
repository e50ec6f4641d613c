from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec

from app.factory.schemas import Code

ScanCode = Annotated[str, msgspec.Meta(min_length=1, max_length=1024, description="The text exactly as scanned")]


class ScanIn(msgspec.Struct, forbid_unknown_fields=True):
    code: ScanCode
    station: Code | None = None
    site: Code | None = None
    action: Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,63}$")] | None = None
    scanned_at: dt.datetime | None = None  # when the scanner read it (offline scans arrive later)
    payload: dict[str, Any] = {}  # fields the action's transition needs (e.g. a reason)


class BatchItem(ScanIn, forbid_unknown_fields=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None  # the device's key for this scan


class BatchIn(msgspec.Struct, forbid_unknown_fields=True):
    scans: Annotated[list[BatchItem], msgspec.Meta(min_length=1, max_length=1000)]


class AssetRead(msgspec.Struct):
    kind: Literal["module", "part", "crate", "package"]
    identifier: str  # human-readable GS1 form, e.g. (8004)0614141AFM-24-000101
    serial: str
    description: str
    state: str | None = None  # modules: lifecycle state after the scan
    state_label: str | None = None
    module: str | None = None  # parts: the module they are installed in


class EventRef(msgspec.Struct):
    module: str
    seq: int


class ScanRead(msgspec.Struct):
    id: int | None  # the scan record of an asset without a ledger (crates, loose parts) …
    event: EventRef | None  # … or the event in the module's ledger that records it
    asset: AssetRead
    recorded: list[str]  # ledger events appended, in order
    message: str  # one sentence for the person holding the scanner
    transition: str | None
    from_state: str | None
    to_state: str | None
    station: str | None
    site: str | None
    via: str
    scanned_at: dt.datetime
    received_at: dt.datetime
    key_id: str
    photo_sha256: str | None = None


class BatchResult(msgspec.Struct):
    index: int
    id: str | None
    status: int
    scan: ScanRead | None = None
    problem: dict[str, Any] | None = None


class BatchRead(msgspec.Struct):
    applied: int
    refused: int
    results: list[BatchResult]


class TagRead(msgspec.Struct):
    uri: str
    identifier: str
    element_string: str
    key_id: str


class LabelRequest(msgspec.Struct, forbid_unknown_fields=True):
    template: str
    serials: Annotated[list[str], msgspec.Meta(min_length=1, max_length=5000)]
    format: Literal["pdf", "png", "zpl"] = "pdf"
    dpi: Literal[203, 300] = 300  # PNG resolution, or the ZPL printer's


class SheetRead(msgspec.Struct):
    page_width_mm: float
    page_height_mm: float
    columns: int
    rows: int


class TemplateRead(msgspec.Struct):
    name: str
    description: str
    asset: str
    width_mm: float
    height_mm: float
    outputs: list[str]
    fields: list[str]  # the asset values it prints
    sheet: SheetRead | None = None


def template_read(template: Any) -> TemplateRead:
    sheet = template.sheet
    return TemplateRead(
        name=template.name,
        description=template.description,
        asset=template.asset,
        width_mm=template.width_mm,
        height_mm=template.height_mm,
        outputs=list(template.outputs),
        fields=list(template.value_keys),
        sheet=SheetRead(sheet.page_width_mm, sheet.page_height_mm, sheet.columns, sheet.rows) if sheet else None,
    )
