"""Append to and verify the ledger. Appends happen inside the caller's unit of work."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any, Protocol

import msgspec
from sqlalchemy import select

from app.core.db import UnitOfWork, utcnow
from app.core.ledger.domain import BrokenLink, EventRecord, chain_hash, verify_chain
from app.core.ledger.models import Event
from app.core.observability import current_request_id


class Chained(Protocol):
    """What the ledger needs of a module row: its id, serial and the head of its chain."""

    id: int
    serial: str
    version: int
    head_hash: str
    updated_at: dt.datetime


class VerifyResult(msgspec.Struct):
    ok: bool
    events_checked: int
    modules_checked: int
    first_broken: BrokenLink | None = None


async def append(
    uow: UnitOfWork,
    module: Chained,
    type: str,
    *,
    actor: str,
    role: str,
    payload: dict[str, Any] | None = None,
    place: str = "",
    at: dt.datetime | None = None,
) -> Event:
    """Append one event and advance the module's projection (version, head hash) in the same unit."""
    if not uow.writable:
        raise RuntimeError("ledger append outside a write unit of work")
    record = EventRecord(
        module=module.serial,
        seq=module.version + 1,
        type=type,
        actor=actor,
        role=role,
        at=at or utcnow(),
        place=place,
        request_id=current_request_id(),
        payload=msgspec.to_builtins(payload or {}),
    )
    digest = chain_hash(module.head_hash, record)
    event = Event(
        module_id=module.id,
        seq=record.seq,
        type=record.type,
        actor=record.actor,
        role=record.role,
        at=record.at,
        place=record.place,
        request_id=record.request_id,
        payload=record.payload,
        prev_hash=module.head_hash,
        hash=digest,
    )
    uow.session.add(event)
    module.version = record.seq
    module.head_hash = digest
    module.updated_at = record.at
    return event


def to_record(event: Event, serial: str) -> EventRecord:
    return EventRecord(
        module=serial,
        seq=event.seq,
        type=event.type,
        actor=event.actor,
        role=event.role,
        at=event.at,
        place=event.place,
        request_id=event.request_id,
        payload=event.payload,
    )


async def events_of(uow: UnitOfWork, module_id: int) -> list[Event]:
    rows = await uow.session.scalars(select(Event).where(Event.module_id == module_id).order_by(Event.seq))
    return list(rows)


async def _chains(uow: UnitOfWork, serial: str | None) -> AsyncIterator[tuple[str, list[Event]]]:
    from app.factory.models import Module

    query = select(Module.serial, Event).join(Module, Module.id == Event.module_id)
    if serial is not None:
        query = query.where(Module.serial == serial)
    query = query.order_by(Event.module_id, Event.seq).execution_options(yield_per=2000)
    current: str | None = None
    batch: list[Event] = []
    stream = await uow.session.stream(query)
    async for module_serial, event in stream:
        if module_serial != current and batch:
            yield current or "", batch
            batch = []
        current = module_serial
        batch.append(event)
        uow.session.expunge(event)
    if batch:
        yield current or "", batch


async def _heads(uow: UnitOfWork, serial: str | None) -> dict[str, tuple[int, str]]:
    from app.factory.models import Module

    query = select(Module.serial, Module.version, Module.head_hash)
    if serial is not None:
        query = query.where(Module.serial == serial)
    return {s: (v, h) for s, v, h in (await uow.session.execute(query)).all()}


async def verify(uow: UnitOfWork, serial: str | None = None) -> VerifyResult:
    """Recompute every chain (or one module's) and name the first broken event.

    Also checks each chain against its module's head (version and last hash), so that deleting the
    newest events of a chain is found too.
    """
    heads = await _heads(uow, serial)
    checked = 0
    modules = 0
    seen: set[str] = set()
    async for module_serial, events in _chains(uow, serial):
        modules += 1
        seen.add(module_serial)
        n, broken = verify_chain((to_record(e, module_serial), e.prev_hash, e.hash) for e in events)
        checked += n
        if broken is None and module_serial in heads:
            version, head_hash = heads[module_serial]
            last = events[-1]
            if (last.seq, last.hash) != (version, head_hash):
                broken = BrokenLink(
                    module_serial, last.seq, f"chain ends at seq {last.seq} but the module is at version {version}"
                )
        if broken is not None:
            return VerifyResult(ok=False, events_checked=checked, modules_checked=modules, first_broken=broken)
    for module_serial, (version, _) in sorted(heads.items()):
        if module_serial not in seen and version > 0:
            broken = BrokenLink(module_serial, 1, f"no events, but the module is at version {version}")
            return VerifyResult(ok=False, events_checked=checked, modules_checked=modules + 1, first_broken=broken)
    return VerifyResult(ok=True, events_checked=checked, modules_checked=modules)
