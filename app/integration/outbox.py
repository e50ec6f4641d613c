"""Reading the outbox: events in the order the dispatcher positioned them, as they go on the wire."""

from __future__ import annotations

from sqlalchemy import func, select

from app.core.db import UnitOfWork
from app.core.ledger.models import Event, OutboxEntry
from app.integration.webhooks import WireEvent, event_id


class StreamFilter:
    """Which events a reader wants: a module, a shipment, an area (all when empty)."""

    def __init__(self, module: str = "", shipment: str = "", area: str = "") -> None:
        self.module = module
        self.shipment = shipment
        self.area = area


async def read_after(
    uow: UnitOfWork, position: int, *, limit: int = 200, where: StreamFilter | None = None
) -> list[WireEvent]:
    """Positioned events after `position`, oldest first."""
    query = (
        select(OutboxEntry.position, OutboxEntry.module, OutboxEntry.area, Event)
        .join(Event, Event.id == OutboxEntry.event_id)
        .where(OutboxEntry.position > position)
        .order_by(OutboxEntry.position)
        .limit(limit)
    )
    if where is not None:
        if where.module:
            query = query.where(OutboxEntry.module == where.module)
        if where.shipment:
            query = query.where(OutboxEntry.shipment == where.shipment)
        if where.area:
            query = query.where(OutboxEntry.area == where.area)
    rows = (await uow.session.execute(query)).all()
    return [wire(position_, module, area, event) for position_, module, area, event in rows]


def wire(position: int, module: str, area: str, event: Event) -> WireEvent:
    return WireEvent(
        id=event_id(module, event.seq),
        position=position,
        type=event.type,
        area=area,
        module=module,
        seq=event.seq,
        at=event.at,
        actor=event.actor,
        role=event.role,
        place=event.place,
        payload=dict(event.payload),
        hash=event.hash,
    )


async def head(uow: UnitOfWork) -> int:
    """The newest position handed out (0 before the first)."""
    return int(await uow.session.scalar(select(func.coalesce(func.max(OutboxEntry.position), 0))) or 0)
