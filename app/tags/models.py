from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime


class Scan(Base):
    """An accepted scan of an asset that has no ledger of its own (a crate, a part not in a module): what
    was read, by whom, where, when scanned and when received. A scan of a module or of a part installed in
    one is an event in that module's ledger instead: each fact is recorded once. Refused scans are not
    kept (nothing changes on bad input); they go to the security log."""

    __tablename__ = "scans"
    __table_args__ = (Index("ix_scans_asset", "asset_kind", "asset", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(512))
    ai: Mapped[str] = mapped_column(String(4))
    identifier: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(8))
    asset_kind: Mapped[str] = mapped_column(String(16))
    asset: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), default="")
    station: Mapped[str] = mapped_column(String(32), default="")
    site: Mapped[str] = mapped_column(String(32), default="")
    actor: Mapped[str] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(8))
    scanned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    photo_sha256: Mapped[str] = mapped_column(String(64), default="")
