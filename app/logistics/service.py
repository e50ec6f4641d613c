from __future__ import annotations

from sqlalchemy import func, select

from app.core.db import UnitOfWork
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.schemas import Page
from app.logistics.models import Crate
from app.logistics.schemas import CrateCreate, CrateRead
from app.tags.payload import AI, Identifier, grai


def crate_read(crate: Crate) -> CrateRead:
    return CrateRead(
        serial=crate.serial,
        asset_type=crate.asset_type,
        grai=Identifier(AI.GRAI, crate.grai).hri,
        description=crate.description,
        length_mm=crate.length_mm,
        width_mm=crate.width_mm,
        height_mm=crate.height_mm,
        tare_kg=crate.tare_kg,
        created_at=crate.created_at,
    )


async def list_crates(uow: UnitOfWork, *, limit: int, offset: int) -> Page[CrateRead]:
    total = await uow.session.scalar(select(func.count(Crate.id))) or 0
    rows = await uow.session.scalars(select(Crate).order_by(Crate.serial).limit(limit).offset(offset))
    return Page(items=[crate_read(c) for c in rows], total=total, limit=limit, offset=offset)


async def load_crate(uow: UnitOfWork, serial: str) -> Crate:
    crate = await uow.session.scalar(select(Crate).where(Crate.serial == serial))
    if crate is None:
        raise NotFound(f"no crate {serial!r}", serial=serial)
    return crate


async def register_crate(uow: UnitOfWork, company_prefix: str, data: CrateCreate) -> CrateRead:
    """A crate gets its GRAI from our company prefix, its asset type and its serial."""
    try:
        identifier = grai(company_prefix, data.asset_type.zfill(12 - len(company_prefix)), data.serial)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    if await uow.session.scalar(select(Crate.id).where(Crate.serial == data.serial)) is not None:
        raise Conflict(f"crate {data.serial} is already registered", serial=data.serial)
    crate = Crate(
        serial=data.serial,
        asset_type=data.asset_type.zfill(12 - len(company_prefix)),
        grai=identifier.value,
        description=data.description,
        length_mm=data.length_mm,
        width_mm=data.width_mm,
        height_mm=data.height_mm,
        tare_kg=data.tare_kg,
    )
    uow.session.add(crate)
    await uow.session.flush()
    return crate_read(crate)
