from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.db import Base, UTCDateTime, utcnow
from app.sites.models import Site


class Spec(Base):
    """A module model: what every module of this model is made of and weighs."""

    __tablename__ = "specs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    gpu_model: Mapped[str] = mapped_column(String(64))
    gpu_count: Mapped[int] = mapped_column(Integer)
    power_kw: Mapped[float] = mapped_column(Float)
    weight_kg: Mapped[float] = mapped_column(Float)
    length_mm: Mapped[int] = mapped_column(Integer)
    width_mm: Mapped[int] = mapped_column(Integer)
    height_mm: Mapped[int] = mapped_column(Integer)
    hs_code: Mapped[str] = mapped_column(String(12))
    export_class: Mapped[str] = mapped_column(String(16))
    battery_wh: Mapped[float] = mapped_column(Float, default=0.0)
    battery_un_number: Mapped[str] = mapped_column(String(8), default="")
    cooling: Mapped[str] = mapped_column(String(16))
    bom: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Factory(Base):
    __tablename__ = "factories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    city: Mapped[str] = mapped_column(String(100), default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    unlocode: Mapped[str] = mapped_column(String(5), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    stations: Mapped[list[Station]] = relationship(back_populates="factory", lazy="raise", order_by="Station.code")


class Station(Base):
    """A place on a factory floor where scans record work."""

    __tablename__ = "stations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    factory_id: Mapped[int] = mapped_column(ForeignKey("factories.id", ondelete="RESTRICT"), index=True)
    # The lifecycle transition a scan here takes when the scan names none ("" = just record the scan).
    scan_action: Mapped[str] = mapped_column(String(64), default="")

    factory: Mapped[Factory] = relationship(back_populates="stations", lazy="raise")


class Module(Base):
    """One AI Factory module. `state`, `version` and `head_hash` are a projection of its ledger."""

    __tablename__ = "modules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(32), unique=True)
    spec_id: Mapped[int] = mapped_column(ForeignKey("specs.id", ondelete="RESTRICT"), index=True)
    factory_id: Mapped[int] = mapped_column(ForeignKey("factories.id", ondelete="RESTRICT"), index=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"), index=True)
    state: Mapped[str] = mapped_column(String(32), index=True)
    hold_return_state: Mapped[str | None] = mapped_column(String(32))
    hold_reason: Mapped[str] = mapped_column(String(500), default="")
    # must stay in its country (a sovereign customer's): the redeployment planner keeps it there
    sovereign: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=0)
    head_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    spec: Mapped[Spec] = relationship(lazy="raise")
    factory: Mapped[Factory] = relationship(lazy="raise")
    site: Mapped[Site | None] = relationship(lazy="raise")


class Part(Base):
    """A serial-numbered component; installed in at most one module at a time."""

    __tablename__ = "parts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    part_number: Mapped[str] = mapped_column(String(64))
    manufacturer: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(200), default="")
    module_id: Mapped[int | None] = mapped_column(ForeignKey("modules.id", ondelete="RESTRICT"), index=True)
    position: Mapped[str] = mapped_column(String(32), default="")
    installed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    module: Mapped[Module | None] = relationship(lazy="raise")
