"""Labels for assets in the database: each asset's printable values and its signed tag, rendered through a
template of labels/ into PDF, PNG or ZPL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Literal

import msgspec
from litestar import Response
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.core.db import UnitOfWork
from app.core.errors import InvalidInput, NotFound
from app.factory.models import Module, Part
from app.logistics.models import Crate
from app.tags.labels import LabelData, LabelTemplate
from app.tags.payload import AI, Identifier
from app.tags.service import TagSetup

LabelFormat = Literal["pdf", "png", "zpl"]
MAX_LABELS = 5000  # one request; a bigger batch belongs to `afm labels print`
MODULE_TAG_TEMPLATE = "module-shipping"

_MEDIA = {"pdf": "application/pdf", "png": "image/png", "zpl": "application/vnd.zebra-zpl"}


def module_values(module: Module, setup: TagSetup) -> LabelData:
    identifier = setup.for_serial(module.serial)
    spec = module.spec
    return LabelData(
        qr=setup.tag(identifier).uri,
        values={
            "serial": module.serial,
            "spec": spec.code,
            "spec_name": spec.name,
            "gpu_model": spec.gpu_model,
            "gpu_count": str(spec.gpu_count),
            "weight_kg": f"{spec.weight_kg:,.0f}",
            "dimensions": f"{spec.length_mm:,} x {spec.width_mm:,} x {spec.height_mm:,} mm",
            "factory": f"{module.factory.name} ({module.factory.code})",
            "hri": identifier.hri,
            "uri": setup.tag(identifier).uri,
        },
    )


def part_values(part: Part, setup: TagSetup) -> LabelData:
    identifier = setup.for_serial(part.serial)
    uri = setup.tag(identifier).uri
    return LabelData(
        qr=uri,
        values={
            "serial": part.serial,
            "kind": part.kind.upper(),
            "part_number": part.part_number,
            "module": part.module.serial if part.module is not None else "",
            "hri": identifier.hri,
            "uri": uri,
        },
    )


def crate_values(crate: Crate, setup: TagSetup) -> LabelData:
    identifier = Identifier(AI.GRAI, crate.grai)
    uri = setup.tag(identifier).uri
    return LabelData(
        qr=uri,
        values={
            "serial": crate.serial,
            "asset_type": crate.asset_type,
            "description": crate.description,
            "hri": identifier.hri,
            "uri": uri,
        },
    )


async def label_data(
    uow: UnitOfWork, setup: TagSetup, template: LabelTemplate, serials: Sequence[str]
) -> list[LabelData]:
    """The labels for these serials, in the order asked; every unknown serial named at once."""
    if not serials:
        raise InvalidInput("no serials to print")
    if len(serials) > MAX_LABELS:
        raise InvalidInput(f"{len(serials):,} labels in one request; at most {MAX_LABELS:,} (use afm labels print)")
    wanted = list(dict.fromkeys(serials))
    found: dict[str, LabelData] = {}
    try:
        if template.asset == "module":
            rows = await uow.session.scalars(
                select(Module)
                .options(joinedload(Module.spec), joinedload(Module.factory))
                .where(Module.serial.in_(wanted))
            )
            found = {m.serial: module_values(m, setup) for m in rows}
        elif template.asset == "part":
            parts = await uow.session.scalars(
                select(Part).options(joinedload(Part.module)).where(Part.serial.in_(wanted))
            )
            found = {p.serial: part_values(p, setup) for p in parts}
        elif template.asset == "crate":
            crates = await uow.session.scalars(select(Crate).where(Crate.serial.in_(wanted)))
            found = {c.serial: crate_values(c, setup) for c in crates}
        else:
            raise InvalidInput("package labels are printed with their shipment's documents")
    except ValueError as exc:  # a serial that cannot be a GIAI (too long, characters GS1 does not allow)
        raise InvalidInput(str(exc)) from None
    missing = [s for s in wanted if s not in found]
    if missing:
        shown = ", ".join(missing[:20]) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
        raise NotFound(f"no {template.asset} with serial {shown}", missing=missing[:100])
    return [found[s] for s in serials]


def render(
    template: LabelTemplate,
    labels: Sequence[LabelData],
    fmt: LabelFormat,
    *,
    dpi: int = 300,
    progress: Callable[[int], None] | None = None,
) -> bytes:
    """The labels in one output file. PNG is one label per image, so one label at a time."""
    from app.documents import labels as renderer

    if fmt not in template.outputs:
        raise InvalidInput(f"template {template.name} prints {', '.join(template.outputs)}, not {fmt}")
    try:
        if fmt == "pdf":
            return renderer.render_pdf(template, labels, progress=progress)
        if fmt == "png":
            if len(labels) != 1:
                raise InvalidInput("a PNG holds one label: ask for one serial, or for a PDF")
            return renderer.render_png(template, labels[0], dpi=dpi)
        if dpi not in (203, 300):
            raise InvalidInput(f"ZPL is written for 203 or 300 dpi printers, not {dpi}")
        return renderer.render_zpl(template, labels, dpi=dpi).encode("utf-8")  # type: ignore[arg-type]
    except renderer.LabelError as exc:  # a value missing, or a QR text too long for the template's QR size
        raise InvalidInput(f"template {template.name}: {exc}") from None


def file_response(data: bytes, fmt: LabelFormat, name: str) -> Response[bytes]:
    extension = {"pdf": "pdf", "png": "png", "zpl": "zpl"}[fmt]
    return Response(
        data,
        media_type=_MEDIA[fmt],
        headers={"Content-Disposition": f'inline; filename="{name}.{extension}"'},
    )


async def module_tag(setup: TagSetup, module: Module, fmt: str, template: LabelTemplate) -> Response[bytes]:
    if fmt not in ("pdf", "png", "zpl"):
        raise InvalidInput(f"format is one of uri, json, png, pdf, zpl; not {fmt!r}")
    chosen = msgspec.convert(fmt, LabelFormat)
    output = await asyncio.to_thread(render, template, [module_values(module, setup)], chosen, dpi=300)
    return file_response(output, chosen, f"{module.serial}-tag")
