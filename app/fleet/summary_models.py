"""Summary tables for the fleet dashboard at scale, derived from the ledger by app.fleet.summary.

Nothing here is a source of truth: every row can be rebuilt from `events` (and `checklist_runs`), which
is why they cascade away with their module. `fleet_summary_watermarks` says how far the rebuild has read.
Also the indexes the timeline and the rebuild lean on, declared here so that they live next to their
only reason to exist (they attach to the ledger's and the factory's tables).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow
from app.core.ledger.models import Event
from app.factory.models import Module


class StageVisit(Base):
    """One stay of a module in a lifecycle state (reports.stage_visits' rows): entered at one lifecycle
    event, left at its next one; a hold and its release back do not split it and their time is left out."""

    __tablename__ = "module_stage_visits"

    module_id: Mapped[int] = mapped_column(ForeignKey("modules.id", ondelete="CASCADE"), primary_key=True)
    visit: Mapped[int] = mapped_column(Integer, primary_key=True)  # 1, 2, … per module
    stage: Mapped[str] = mapped_column(String(32))
    entered_seq: Mapped[int] = mapped_column(Integer)
    entered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    left_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    hours: Mapped[float | None] = mapped_column(Float)  # None while the stay is open
    completed: Mapped[bool] = mapped_column(Boolean)


class Commissioning(Base):
    """One commissioning (reports.commissioning_durations' rows): an enter_service whose previous
    deliver/enter_service event is a deliver, with the site it happened at."""

    __tablename__ = "module_commissionings"

    module_id: Mapped[int] = mapped_column(ForeignKey("modules.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)  # the enter_service event's
    site: Mapped[str | None] = mapped_column(String(64))
    delivered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    in_service_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    days: Mapped[float] = mapped_column(Float)


class SummaryStat(Base):
    """Pre-aggregated distributions the dashboard shows: percentiles are not additive, so each key's are
    recomputed whenever a rebuild touches one of its rows (metric `stage_hours` by stage, over completed
    visits; `commissioning_days` by site)."""

    __tablename__ = "fleet_summary_stats"

    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
    median: Mapped[float] = mapped_column(Float)
    p90: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SummaryWatermark(Base):
    """The newest event id a rebuild has read (one row, name `events`)."""

    __tablename__ = "fleet_summary_watermarks"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


LIFECYCLE_EVENTS = "type LIKE 'lifecycle.%'"

# The rebuild reads a module's lifecycle events only (about 1 in 7 of its events): a partial index keeps
# that read to those rows.
Index(
    "ix_events_lifecycle",
    Event.module_id,
    Event.seq,
    postgresql_where=text(LIFECYCLE_EVENTS),
    sqlite_where=text(LIFECYCLE_EVENTS),
)
# The dashboard counts modules by (state, spec, factory, site): one index-only scan on PostgreSQL.
Index("ix_modules_fleet_groups", Module.state, Module.spec_id, Module.factory_id, Module.site_id)
