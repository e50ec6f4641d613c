"""A large realistic shipment's lines, shared by the document tests and the manifest benchmark: rack
modules with batteries, packed a few to a crate, five crates to a container."""

from __future__ import annotations

import math
from decimal import Decimal

from app.logistics.documents import ContainerLine, ModuleLine, PackageLine
from app.tags.payload import sscc

PREFIX = "0614141"


def rack_modules(count: int) -> tuple[ModuleLine, ...]:
    return tuple(
        ModuleLine(
            serial=f"AFM-25-{n:06d}",
            spec_code="AIF-RACK-4",
            description="AI Factory rack module, 4× GB200 NVL4 trays, liquid-cooled",
            giai=f"{PREFIX}AFM-25-{n:06d}",
            hs_code="8471.50",
            eccn="4A090.a",
            licence="D1234567",
            country_of_origin="TW",
            unit_value=Decimal("812500.00"),
            net_kg=1300.0 + (n % 7) * 10.5,
            gross_kg=1385.0 + (n % 7) * 10.5,
            battery_un_number="UN3481",
            battery_wh=1440.0,
            battery_kg=9.6,
        )
        for n in range(count)
    )


def crates(
    modules: tuple[ModuleLine, ...], count: int, containers: tuple[ContainerLine, ...]
) -> tuple[PackageLine, ...]:
    per = len(modules) // count
    return tuple(
        PackageLine(
            number=p + 1,
            sscc=sscc(PREFIX, 10_000 + p).value,
            kind="crate",
            contents=tuple(m.serial for m in modules[per * p : per * (p + 1)]),
            net_kg=math.fsum(m.net_kg for m in modules[per * p : per * (p + 1)]),
            gross_kg=math.fsum(m.gross_kg for m in modules[per * p : per * (p + 1)]) + 120.0,
            length_mm=2400,
            width_mm=1200,
            height_mm=2200,
            container=containers[p // 5].number,
        )
        for p in range(count)
    )
