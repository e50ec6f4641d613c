from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime


class Scan(Base):
    """One accepted scan of a genuine tag: what was read, by whom, where, when scanned and when received.

    The read side of scanning ("where was this crate last seen"); for modules and installed parts the
    same fact is also an event in the module's ledger (`module_id`, `event_seq`). Refused scans are
    not kept here (nothing changes on bad input); they go to the security log."""

    __tablename__ = "scans"
    __table_args__ = (Index("ix_scans_asset", "asset_kind", "asset", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(512))
    ai: Mapped[str] = mapped_column(String(4))
    identifier: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(8))
    asset_kind: Mapped[str] = mapped_column(String(16))
    asset: Mapped[str] = mapped_column(String(64))
    module_id: Mapped[int | None] = mapped_column(ForeignKey("modules.id", ondelete="RESTRICT"), index=True)
    event_seq: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(64), default="")
    station: Mapped[str] = mapped_column(String(32), default="")
    site: Mapped[str] = mapped_column(String(32), default="")
    actor: Mapped[str] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(8))
    scanned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    photo_sha256: Mapped[str] = mapped_column(String(64), default="")
