from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.db import Base, CanonicalJSON, UTCDateTime, utcnow
from app.factory.models import Module


class BurnInRun(Base):
    """One burn-in of one module: telemetry summaries, DCGM results and Xid lines, then a verdict."""

    __tablename__ = "burn_in_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    module_id: Mapped[int] = mapped_column(ForeignKey("modules.id", ondelete="RESTRICT"), index=True)
    station: Mapped[str] = mapped_column(String(32), default="")
    started_by: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | finished
    verdict: Mapped[str | None] = mapped_column(String(8))  # pass | fail
    rules_version: Mapped[str] = mapped_column(String(32), default="")
    telemetry_uploads: Mapped[int] = mapped_column(Integer, default=0)
    telemetry_rows: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[dict[str, Any] | None] = mapped_column(CanonicalJSON())  # TelemetrySummary, merged
    dcgm: Mapped[dict[str, Any] | None] = mapped_column(CanonicalJSON())  # DcgmResult
    xids: Mapped[list[Any]] = mapped_column(CanonicalJSON(), default=list)  # [XidEvent]
    result: Mapped[dict[str, Any] | None] = mapped_column(CanonicalJSON())  # RunVerdict

    module: Mapped[Module] = relationship(lazy="raise")
