"""Use cases against real databases: demo idempotency, concurrent writers, tamper detection."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select, text

from app import demo
from app.core.auth.domain import Principal
from app.core.db import Database
from app.core.definitions import load_lifecycle
from app.core.ledger import service as ledger
from app.factory import service
from app.factory.models import Module, Part
from app.factory.schemas import ModuleCreate

FLOOR = Principal(user_id=2, username="floor", roles=("floor",), via="api")


async def _count(db: Database, model: type) -> int:
    async with db.read() as uow:
        return int(await uow.session.scalar(select(func.count()).select_from(model)) or 0)


async def test_demo_load_is_idempotent(db: Database) -> None:
    modules, parts = await _count(db, Module), await _count(db, Part)
    assert modules == 60 and parts > 5000
    report = await demo.load(db)
    assert report == demo.LoadReport()  # nothing added the second time
    assert (await _count(db, Module), await _count(db, Part)) == (modules, parts)


async def test_concurrent_registrations_get_distinct_serials(db: Database) -> None:
    """Writers racing for the next serial are serialised (BEGIN IMMEDIATE / advisory lock)."""
    lifecycle = load_lifecycle()

    async def register() -> str:
        async with db.write() as uow:
            module = await service.register_module(uow, lifecycle, ModuleCreate(spec="L4-EDGE-20"), FLOOR)
        return module.serial

    async with db.read() as uow:
        before = (await ledger.verify(uow)).events_checked
    serials = await asyncio.gather(*(register() for _ in range(12)))
    assert len(set(serials)) == 12
    numbers = sorted(int(s.rsplit("-", 1)[1]) for s in serials)
    assert numbers == list(range(numbers[0], numbers[0] + 12))
    async with db.read() as uow:
        result = await ledger.verify(uow)
    assert result.ok and result.events_checked == before + 12


async def test_failed_use_case_rolls_back_everything(db: Database) -> None:
    lifecycle = load_lifecycle()
    before = await _count(db, Module)
    try:
        async with db.write() as uow:
            await service.register_module(uow, lifecycle, ModuleCreate(spec="L4-EDGE-20"), FLOOR)
            raise RuntimeError("power cut mid-request")
    except RuntimeError:
        pass
    assert await _count(db, Module) == before


async def test_verify_names_the_tampered_event(db: Database) -> None:
    async with db.read() as uow:
        serial = (await service.list_modules(uow, load_lifecycle(), state="in_service", limit=1)).items[0].serial
    # An intruder with database access: drop the append-only guard, then edit history.
    async with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            await conn.execute(text("ALTER TABLE events DISABLE TRIGGER events_append_only"))
        else:
            await conn.execute(text("DROP TRIGGER events_no_update"))
        await conn.execute(
            text(
                "UPDATE events SET actor = 'mallory' "
                "WHERE module_id = (SELECT id FROM modules WHERE serial = :s) AND seq = 1"
            ),
            {"s": serial},
        )
    async with db.read() as uow:
        result = await ledger.verify(uow)
        one = await ledger.verify(uow, serial)
    assert not result.ok and result.first_broken is not None
    assert (result.first_broken.module, result.first_broken.seq) == (serial, 1)
    assert not one.ok


async def test_verify_finds_deleted_newest_events(db: Database) -> None:
    async with db.read() as uow:
        serial = (await service.list_modules(uow, load_lifecycle(), state="in_transit", limit=1)).items[0].serial
    async with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            await conn.execute(text("ALTER TABLE events DISABLE TRIGGER events_append_only"))
        else:
            await conn.execute(text("DROP TRIGGER events_no_delete"))
        await conn.execute(
            text("DELETE FROM events WHERE module_id = (SELECT id FROM modules WHERE serial = :s)"), {"s": serial}
        )
    async with db.read() as uow:
        result = await ledger.verify(uow)
    assert not result.ok
    assert result.first_broken is not None
    assert result.first_broken.module == serial
    assert "no events" in result.first_broken.reason
