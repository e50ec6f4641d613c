"""Append to and verify the ledger. Appends happen inside the caller's unit of work."""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

import msgspec
from sqlalchemy import String, Text, select, type_coerce

from app.core.db import UnitOfWork, utcnow
from app.core.ledger.domain import BrokenLink, ChainWalker, EventRecord, chain_hash
from app.core.ledger.models import Event, OutboxEntry
from app.core.observability import current_request_id


class Chained(Protocol):
    """What the ledger needs of a module row: its id, serial and the head of its chain."""

    id: int
    serial: str
    version: int
    head_hash: str
    updated_at: dt.datetime


VERIFY_BATCH = 5000


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
    # The outbox row rides in the same transaction: the outside world hears of exactly what committed.
    uow.session.add(
        OutboxEntry(
            event=event,
            module=module.serial,
            area=record.type.partition(".")[0],
            type=record.type,
            shipment=str(record.payload.get("shipment") or "")[:64] if isinstance(record.payload, dict) else "",
            site_id=getattr(module, "site_id", None),
        )
    )
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


async def _heads(uow: UnitOfWork, serial: str | None) -> dict[str, tuple[int, str]]:
    from app.factory.models import Module

    query = select(Module.serial, Module.version, Module.head_hash)
    if serial is not None:
        query = query.where(Module.serial == serial)
    return {s: (v, h) for s, v, h in (await uow.session.execute(query)).all()}


async def verify(uow: UnitOfWork, serial: str | None = None) -> VerifyResult:
    """Recompute every chain (or one module's) and name the first broken event.

    Streams plain rows (no ORM objects) and hashes the payload's stored canonical bytes directly.
    Also checks each chain against its module's head (version and last hash), so that deleting the
    newest events of a chain is found too.
    """
    from app.factory.models import Module

    heads = await _heads(uow, serial)
    # SQLite keeps times as UTC text: read it raw instead of building a datetime per event.
    at_column = type_coerce(Event.at, String) if uow.session.bind.dialect.name == "sqlite" else Event.at
    query = (
        select(
            Module.serial,
            Event.seq,
            Event.type,
            Event.actor,
            Event.role,
            at_column,
            Event.place,
            Event.request_id,
            type_coerce(Event.payload, Text),
            Event.prev_hash,
            Event.hash,
        )
        .join(Module, Module.id == Event.module_id)
        .order_by(Event.module_id, Event.seq)
        .execution_options(yield_per=VERIFY_BATCH)
    )
    if serial is not None:
        query = query.where(Module.serial == serial)
    walker = ChainWalker()
    seen: set[str] = set()
    connection = await uow.session.connection()
    stream = await connection.stream(query)  # Core rows: no ORM identity map for a million events
    feed = walker.feed
    async for rows in stream.partitions():
        for module, seq, type_, actor, role, at, place, request_id, payload, prev_hash, digest in rows:
            if module != walker.module:
                if walker.last is not None and (broken := _head_mismatch(walker.last, heads)) is not None:
                    return _failed(walker, broken)
                seen.add(module)
            broken = feed(module, seq, type_, actor, role, at, place, request_id, payload.encode(), prev_hash, digest)
            if broken is not None:
                return _failed(walker, broken)
    if walker.last is not None and (broken := _head_mismatch(walker.last, heads)) is not None:
        return _failed(walker, broken)
    for module_serial, (version, _) in sorted(heads.items()):
        if module_serial not in seen and version > 0:
            broken = BrokenLink(module_serial, 1, f"no events, but the module is at version {version}")
            return VerifyResult(False, walker.checked, walker.modules + 1, broken)
    return VerifyResult(ok=True, events_checked=walker.checked, modules_checked=walker.modules)


def _head_mismatch(last: tuple[str, int, str], heads: dict[str, tuple[int, str]]) -> BrokenLink | None:
    module_serial, seq, digest = last
    version, head_hash = heads.get(module_serial, (seq, digest))
    if (seq, digest) != (version, head_hash):
        return BrokenLink(module_serial, seq, f"chain ends at seq {seq} but the module is at version {version}")
    return None


def _failed(walker: ChainWalker, broken: BrokenLink) -> VerifyResult:
    return VerifyResult(ok=False, events_checked=walker.checked, modules_checked=walker.modules, first_broken=broken)
