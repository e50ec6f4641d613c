from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.db import Base, CanonicalJSON, UTCDateTime, utcnow


class Event(Base):
    """An append-only ledger entry. No code path updates or deletes one."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("module_id", "seq", name="uq_events_module_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    module_id: Mapped[int] = mapped_column(ForeignKey("modules.id", ondelete="RESTRICT"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    place: Mapped[str] = mapped_column(String(64), default="")
    request_id: Mapped[str] = mapped_column(String(64), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(CanonicalJSON(), default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class OutboxEntry(Base):
    """The transactional outbox: one row per event, written in the event's own transaction, so that
    what is told to the outside world (webhooks, the event stream, NATS) is exactly what was
    committed. app.integration.dispatcher gives each row its `position` and delivers it."""

    __tablename__ = "outbox"
    __table_args__ = (
        # The dispatcher's "what is new" read: rows not yet given a position, oldest first.
        Index(
            "ix_outbox_unpositioned",
            "id",
            postgresql_where=text("position IS NULL"),
            sqlite_where=text("position IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), unique=True)
    module: Mapped[str] = mapped_column(String(64))
    area: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(64))
    shipment: Mapped[str] = mapped_column(String(64), default="", index=True)
    site_id: Mapped[int | None] = mapped_column(Integer)  # where the module was: subscriptions filter by site
    position: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    event: Mapped[Event] = relationship(lazy="raise")
